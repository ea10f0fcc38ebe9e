"""numpy, an optional extra: imported on first use, with an ImportError that names the extra to install.

Every module of pybpfmap reaches numpy through here. ``sys.modules`` holds a module from the moment its import
starts, so a thread that took numpy from there while another thread was still importing it would see it half
made (``AttributeError: partially initialized module 'numpy'``). The import statement instead waits on the
module's import lock until the other thread's import is complete, so numpy is only ever taken through it.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["loaded_numpy", "numpy"]


def numpy() -> Any:
    """The numpy module, fully imported, or ImportError telling how to get it."""
    try:
        import numpy as np
    except ImportError as exc:
        raise ImportError(
            "this method returns numpy arrays, and numpy is not installed: pip install 'pybpfmap[numpy]'"
        ) from exc
    return np


def loaded_numpy() -> Any:
    """numpy when something in the process imported it (so arguments may be numpy arrays), else None; never
    imports it for nothing, and never returns it half imported."""
    if sys.modules.get("numpy") is None:  # not imported, or blocked (None)
        return None
    return numpy()
