"""``pybpfmap.prometheus``, the documented path of :mod:`pybpfmap.export.prometheus`: importing one gives the other
module itself (sys.modules maps this name to it), so patches and attributes are shared."""

import sys
from typing import TYPE_CHECKING

from .export import prometheus as _module

if TYPE_CHECKING:  # what type checkers see under this name
    from .export.prometheus import *  # noqa: F403

sys.modules[__name__] = _module
