"""numpy, an optional extra: imported on first use, with an ImportError that names the extra to install."""

from __future__ import annotations

from typing import Any

__all__ = ["numpy"]


def numpy() -> Any:
    """The numpy module, or ImportError telling how to get it."""
    try:
        import numpy as np
    except ImportError as exc:
        raise ImportError(
            "this method returns numpy arrays, and numpy is not installed: pip install 'pybpfmap[numpy]'"
        ) from exc
    return np
