"""What the map core asks of BTF: typed codecs for a map opened with BTF, and ``bpf_spin_lock`` values
(read under the lock)."""

from __future__ import annotations

import ctypes
import errno
import threading
import warnings
from typing import Any, ClassVar

from .._internal import bindings as b
from .._internal.elements import MISSING, RAISE, Elements
from ..codec import Codec, IntCodec
from ..errors import RESOURCE_ERRNOS, Operation, error_from_errno
from .layout import BTFCodec, int_name
from .types import BTF, INT_BOOL, INT_CHAR, BTFType

__all__ = ["LockedElements", "SpinLock", "codecs_for_map", "type_of_codec", "with_spin_lock"]

# LockedElements is the element hot path under a spin lock: it calls lib itself, as Elements does.
_lib = b.lib


_INT_NAMES = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i8": "b", "i16": "h", "i32": "i", "i64": "q"}


def _plain_int_name(r: BTFType) -> str | None:
    """The IntCodec name of a plain 1/2/4/8-byte int type, whose maps keep the integer fast path."""
    if r.kind == "int" and r.size in (1, 2, 4, 8) and r.int_bits == 8 * r.size and not r.int_offset:
        if r.encoding & (INT_BOOL | INT_CHAR):
            return None
        return int_name(r.size, r.signed)
    return None


def _codec_for(btf: BTF, type_id: int, role: str) -> Codec[Any]:
    t = btf.type(type_id)
    codec: Codec[Any]
    name = _plain_int_name(t.resolved())
    if name is not None:
        codec = IntCodec(name)
        codec.btf_type = t  # type: ignore[attr-defined]  # read by type_of_codec
    else:
        codec = BTFCodec(btf, t)
    codec.role = role
    return codec


def codecs_for_map(info: Any, default_key: Any = None) -> tuple[Any, Any]:
    """The key and value codecs from a map's BTF (a :class:`~pybpfmap.MapInfo`), or ``(None, None)``.

    A kind with a fixed key codec (``default_key``, arrays' ``"u32"``) keeps it; plain int types become
    :class:`~pybpfmap.IntCodec` (so such maps keep the integer fast path) that remember their BTF type. A map
    whose BTF cannot be read or laid out opens with bytes, with a warning saying why.
    """
    if not info.btf_id or not info.btf_value_type_id:
        return None, None
    try:
        btf = _kernel_btf(info.btf_id)
        value = _codec_for(btf, info.btf_value_type_id, "value")
        key: Any = _codec_for(btf, info.btf_key_type_id, "key") if info.btf_key_type_id else None
        if default_key is not None and not (isinstance(key, IntCodec) and key.name == default_key):
            key = default_key  # the kind's own key codec wins (array indices)
        if (isinstance(key, Codec) and key.size != info.key_size) or value.size != info.value_size:
            raise ValueError("the BTF types' sizes differ from the map's key and value sizes")
        return key, value
    except OSError as exc:
        if exc.errno in RESOURCE_ERRNOS:
            # Out of fds or memory is no reason to hand out bytes where the caller expects typed values.
            detail = f"cannot read its BTF ({exc}); pass btf=False for bytes"
            target = f"map {info.name!r} (id {info.id})"
            raise error_from_errno(exc.errno or errno.ENOMEM, Operation.OPEN, target, detail) from exc
        warnings.warn(f"map {info.name!r} (id {info.id}): BTF not used, values are bytes: {exc}", stacklevel=4)
        return None, None
    except (ValueError, KeyError) as exc:
        warnings.warn(f"map {info.name!r} (id {info.id}): BTF not used, values are bytes: {exc}", stacklevel=4)
        return None, None


# BTF objects read from the kernel, by id: maps of one program share one BTF, so its classes are made once.
_kernel_btfs: dict[int, BTF] = {}
_kernel_btfs_lock = threading.Lock()


def _kernel_btf(btf_id: int) -> BTF:
    with _kernel_btfs_lock:
        btf = _kernel_btfs.get(btf_id)
        if btf is None:
            if len(_kernel_btfs) >= 64:  # ids are not reused soon, but bound the cache anyway
                _kernel_btfs.clear()
            btf = _kernel_btfs[btf_id] = BTF.from_kernel(btf_id)
        return btf


def type_of_codec(codec: Codec[Any]) -> BTFType | None:
    """The BTF type a codec decodes by (a per-CPU codec's element's), or None."""
    codec = getattr(codec, "element", codec)
    if isinstance(codec, BTFCodec):
        return codec.type
    return getattr(codec, "btf_type", None)


class SpinLock(ctypes.Structure):
    """``struct bpf_spin_lock`` as a ctypes field: a map whose value Structure holds one carries BTF naming it,
    so ``UpdateFlags.LOCK`` works and lookups copy the value under the lock."""

    _fields_: ClassVar[list[tuple[str, Any]]] = [("val", ctypes.c_uint32)]
    #: The name the BTF generated for this Structure gives it; the kernel looks for exactly this one.
    _btf_name_: ClassVar[str] = "bpf_spin_lock"


def _has_spin_lock(codec: Codec[Any]) -> bool:
    t = type_of_codec(codec)
    if t is not None:
        r = t.resolved()
        return r.kind == "struct" and any(
            m.type.resolved().kind == "struct" and m.type.resolved().name == "bpf_spin_lock" for m in r.members
        )
    ctype = getattr(codec, "ctype", None)
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):
        return any(isinstance(f[1], type) and issubclass(f[1], SpinLock) for f in ctype._fields_)
    return False


class LockedElements(Elements):
    """Element access for maps whose values hold a ``bpf_spin_lock``: lookups pass ``BPF_F_LOCK``, so the
    kernel copies the value while holding the lock and a reader never sees half an update."""

    __slots__ = ()

    def find_raw(self, raw_key: bytes, default: Any = MISSING, key: Any = MISSING) -> Any:
        """Look the raw key up (as the unlocked element access does), under the value's lock."""
        fd = self.live_fd()
        s = self._scratch
        rc = _lib.bpf_map_lookup_elem_flags(fd, raw_key, s.cdata, _lib.BPF_F_LOCK)
        if rc == 0:
            return self.value.decode(s.view)
        if -rc == errno.ENOENT and default is not RAISE:
            return default
        self.fail(rc, Operation.LOOKUP, key)


def with_spin_lock(elements: Elements) -> Elements:
    """``elements`` itself, or a :class:`LockedElements` on the same fd when the values hold a spin lock."""
    if type(elements) is Elements and _has_spin_lock(elements.value):
        return LockedElements(elements.fd, elements.key, elements.value, elements.target)
    return elements
