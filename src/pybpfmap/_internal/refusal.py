"""The one way a map kind refuses what its kernel map cannot do.

A kernel map type offers user space some of four abilities with its elements (:class:`~pybpfmap.enums.Ability`:
read, write and delete by key, and list), a fact kept on the type (:attr:`MapType.abilities`).
:data:`METHOD_NEEDS` says which of them each element method of :class:`~pybpfmap.Map` uses. For every kind
(a Map subclass that names its ``map_type``), :func:`install` replaces each inherited method that needs an
ability the type lacks by one that raises TypeError with the kind's ``_why()`` (what it offers instead),
before any syscall; ValueError comes first when the map is closed, as for every call.

A kind's own way of doing what the generic method cannot (a queue's ``pop``, a bloom filter's ``in``, the
emptying ``clear`` of a write-only array) is marked with :func:`own` and stays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

from ..enums import Ability

__all__ = ["METHOD_NEEDS", "install", "own", "refuse", "words"]

F = TypeVar("F", bound=Callable[..., Any])

_R, _W, _D, _L = Ability.READ, Ability.WRITE, Ability.DELETE, Ability.LIST

#: Every element method of Map (the public ones, and ``_iter_items`` and ``_iter_values`` that the views walk)
#: and the abilities it uses. tests/test_refusals.py checks that every public method of Map that reaches
#: elements is listed.
METHOD_NEEDS: Mapping[str, Ability] = {
    "__getitem__": _R,
    "__contains__": _R,
    "get": _R,
    "get_many": _R,
    "__setitem__": _W,
    "set": _W,
    "update": _W,
    "update_batch": _W,
    "setdefault": _R | _W,
    "__delitem__": _D,
    "delete_batch": _D,
    "pop": _R | _D,
    "__iter__": _L,
    "__len__": _L,
    "keys": _L,
    "_iter_items": _L | _R,
    "_iter_values": _L | _R,
    "items": _L | _R,
    "values": _L | _R,
    "snapshot": _L | _R,
    "snapshot_arrays": _L | _R,
    "snapshot_bytes": _L | _R,
    "iter_batches": _L | _R,
    "clear": _L | _D,
    "popitem": _L | _R | _D,
    "drain": _L | _R | _D,
    "drain_arrays": _L | _R | _D,
}


def words(abilities: Ability) -> str:
    """The abilities as verbs for messages: ``"read, list"``."""
    return ", ".join(a.name.lower() for a in (_R, _W, _D, _L) if a in abilities and a.name)


def own(method: F) -> F:
    """Mark ``method`` as the kind's own way of doing what the generic one cannot: :func:`install` keeps it."""
    method._own = True  # type: ignore[attr-defined]
    return method


def refuse(m: Any) -> NoReturn:
    """TypeError with the kind's ``_why()``; ValueError first if the map is closed."""
    m._elements.live_fd()
    raise TypeError(m._why())


def _refusal(name: str, lacking: Ability) -> Callable[..., NoReturn]:
    def refused(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        refuse(self)

    refused.__name__ = refused.__qualname__ = name
    refused.__doc__ = f"Refused with TypeError: this kind of map cannot {words(lacking)} (see the class documentation)."
    return refused


def install(cls: Any) -> None:
    """Give the kind ``cls`` a refusal for each element method that needs what its ``map_type`` lacks, unless
    the method is the kind's :func:`own`."""
    lacking = Ability.ALL & ~cls.map_type.abilities
    if not lacking:
        return
    for name, needs in METHOD_NEEDS.items():
        if needs & lacking and not getattr(getattr(cls, name), "_own", False):
            setattr(cls, name, _refusal(name, needs & lacking))
