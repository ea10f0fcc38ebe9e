"""numpy, an optional extra: imported on first use, with an ImportError that names the extra to install.

Every module of pybpfmap reaches numpy through here. ``sys.modules`` holds a module from the moment its import
starts, so a thread that looked there while another thread was still importing numpy would see it half made
(``AttributeError: partially initialized module 'numpy'``); the import statement instead waits on the module's
import lock until it is complete, and the finished module is then kept here.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

__all__ = ["loaded_numpy", "numpy"]

_lock = threading.Lock()
_module: Any = None


def numpy() -> Any:
    """The numpy module, fully imported, or ImportError telling how to get it."""
    global _module
    if _module is None:
        with _lock:
            if _module is None:
                try:
                    import numpy as np
                except ImportError as exc:
                    raise ImportError(
                        "this method returns numpy arrays, and numpy is not installed: pip install 'pybpfmap[numpy]'"
                    ) from exc
                _module = np
    return _module


def loaded_numpy() -> Any:
    """numpy when something in the process imported it (so arguments may be numpy arrays), else None; never
    imports it for nothing, and never returns it half imported."""
    if _module is None and "numpy" not in sys.modules:
        return None
    return numpy()
