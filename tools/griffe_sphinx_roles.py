"""A griffe extension for the API reference: the docstrings' Sphinx roles (``:class:`~pybpfmap.Map```) become
mkdocstrings cross-references, so a reference to a pybpfmap name that is not documented fails the strict build.

Names outside pybpfmap (the standard library's) have no page here and are shown as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")


class SphinxRoles(griffe.Extension):
    """Rewrite each object's docstring when griffe has loaded it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Replace the roles of ``obj``'s docstring by cross-references."""
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(lambda m: _reference(obj, m.group(1) == "~", m.group(2)),
                                            obj.docstring.value)


# Modules documented under another path: pybpfmap.prometheus and pybpfmap.otel put the export package's modules
# in sys.modules under their own names, which a static reading of the source cannot see.
_MODULE_ALIASES = {"pybpfmap.prometheus": "pybpfmap.export.prometheus", "pybpfmap.otel": "pybpfmap.export.otel"}


def _reference(obj: griffe.Object, short: bool, target: str) -> str:
    explicit = re.fullmatch(r"(.+?)\s*<([^>]+)>", target)  # Sphinx's "text <target>"
    text, target = (explicit.group(1), explicit.group(2)) if explicit else (None, target)
    target = target.removesuffix("()")
    for alias, module in _MODULE_ALIASES.items():
        if target == alias or target.startswith(alias + "."):
            target = module + target[len(alias):]
    head, _, rest = target.partition(".")
    if head == "pybpfmap":
        path = target
    else:
        try:
            path = obj.resolve(head) + ("." + rest if rest else "")
        except griffe.NameResolutionError:
            return f"`{target}`"
    if not path.startswith("pybpfmap"):
        return f"`{target}`"
    if text is None:
        text = path.rsplit(".", 1)[-1] if short else target
    return f"[`{text}`][{path}]"
