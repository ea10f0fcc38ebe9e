"""BTF, the kernel's type information: read it, decode map keys and values by it, render them as bpftool does.

* :class:`BTF` is one type graph, loaded through libbpf from the kernel (:meth:`BTF.from_kernel`,
  :meth:`BTF.from_map`) or from a file (:meth:`BTF.from_file`: an ELF object or raw BTF such as
  ``/sys/kernel/btf/vmlinux``). Types are read into :class:`BTFType` objects on first use, once per BTF.
* :class:`BTFCodec` is a :class:`~pybpfmap.codec.Codec` for any type a key or value can hold. A layout is
  compiled once into a single :class:`struct.Struct` plus a generated function that builds the Python value
  from the unpacked items, so decoding an entry costs one ``unpack_from`` and one call, not a walk per field.
* :func:`bpftool_json` renders raw bytes the way ``bpftool map dump -j`` prints its ``formatted`` member
  (:func:`bpftool_json_all` many values at once).
* :func:`numpy_dtype` gives a numpy structured dtype with the BTF field names.

Values decode as: ints -> int, bool -> bool, enums -> members of an :class:`enum.IntEnum` made from the BTF
names (a plain int when no name matches), floats -> float, pointers -> int, structs and unions -> immutable,
hashable instances of a class made once per BTF type (:class:`BTFStruct`), arrays -> tuples, ``char[N]`` ->
str up to the first NUL (UTF-8 with ``surrogateescape``), bitfields -> int. typedef, const, volatile,
restrict and type_tag are transparent. Bitfields are laid out as on little-endian machines (x86, arm64).

The package is split by concern: ``types`` (the type graph), ``values`` (the classes values decode to),
``layout`` (the layout compiler and :class:`BTFCodec`), ``render`` (bpftool's JSON, numpy dtypes), ``generate``
(BTF built for maps created from typed codecs) and ``maps`` (what the map core asks of BTF).
"""

from .generate import GeneratedBTF, btf_for
from .layout import MAX_FIELDS as MAX_FIELDS  # documented bounds, outside __all__ as before
from .layout import BTFCodec
from .maps import LockedElements, SpinLock, codecs_for_map, type_of_codec, with_spin_lock
from .render import bpftool_json, bpftool_json_all, numpy_dtype
from .types import BTF, BTFMember, BTFType
from .types import MAX_VALUE_SIZE as MAX_VALUE_SIZE
from .values import BTFStruct

__all__ = [
    "BTF",
    "BTFCodec",
    "BTFMember",
    "BTFStruct",
    "BTFType",
    "GeneratedBTF",
    "LockedElements",
    "SpinLock",
    "bpftool_json",
    "bpftool_json_all",
    "btf_for",
    "codecs_for_map",
    "numpy_dtype",
    "type_of_codec",
    "with_spin_lock",
]
