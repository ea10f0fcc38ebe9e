"""BTF, the kernel's type information: read it, decode map keys and values by it, render them as bpftool does.

* :class:`BTF` is one type graph, loaded through libbpf from the kernel (:meth:`BTF.from_kernel`,
  :meth:`BTF.from_map`) or from a file (:meth:`BTF.from_file`: an ELF object or raw BTF such as
  ``/sys/kernel/btf/vmlinux``). Types are read into :class:`BTFType` objects on first use, once per BTF.
* :class:`BTFCodec` is a :class:`~pybpfmap.codec.Codec` for any type a key or value can hold. A layout is
  compiled once into a single :class:`struct.Struct` plus a generated function that builds the Python value
  from the unpacked items, so decoding an entry costs one ``unpack_from`` and one call, not a walk per field.
* :func:`bpftool_json` renders raw bytes the way ``bpftool map dump -j`` prints its ``formatted`` member.
* :func:`numpy_dtype` gives a numpy structured dtype with the BTF field names.

Values decode as: ints -> int, bool -> bool, enums -> members of an :class:`enum.IntEnum` made from the BTF
names (a plain int when no name matches), floats -> float, pointers -> int, structs and unions -> immutable,
hashable instances of a class made once per BTF type (:class:`BTFStruct`), arrays -> tuples, ``char[N]`` ->
str up to the first NUL (UTF-8 with ``surrogateescape``), bitfields -> int. typedef, const, volatile,
restrict and type_tag are transparent. Bitfields are laid out as on little-endian machines (x86, arm64).
"""

from __future__ import annotations

import ctypes
import enum
import errno
import operator
import os
import struct
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, TypeVar

from . import _bindings as b
from ._elements import MISSING, Elements
from .codec import Buffer, Codec, IntCodec
from .errors import BTFError, error_from_errno

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
    "btf_for",
    "codecs_for_map",
    "numpy_dtype",
    "type_of_codec",
    "with_spin_lock",
]

_ffi = b.ffi
_lib = b.lib

# BTF kinds and int encodings (include/uapi/linux/btf.h): part of the kernel ABI.
_KINDS = (
    "unknown", "int", "ptr", "array", "struct", "union", "enum", "fwd", "typedef", "volatile", "const",
    "restrict", "func", "func_proto", "var", "datasec", "float", "decl_tag", "type_tag", "enum64",
)  # fmt: skip
_INT_SIGNED = 1
_INT_CHAR = 2
_INT_BOOL = 4
T = TypeVar("T")
# Kinds that only qualify or rename another type: a value of one is a value of the type it refers to.
_TRANSPARENT = frozenset({"typedef", "volatile", "const", "restrict", "type_tag"})
# Bounds on BTF from outside: the largest value pybpfmap lays out (the kernel refuses map values past
# KMALLOC_MAX_SIZE, 4 MiB on x86-64: 32 MiB leaves room for any architecture), and the most fields one
# layout (or one rendering) may have.
MAX_VALUE_SIZE = 1 << 25
MAX_FIELDS = 1 << 16
_MAX_RENDERED = 1 << 20
# Modifiers that bpftool skips (but not typedefs) when it decides whether an array holds characters.
_MODIFIERS = frozenset({"volatile", "const", "restrict", "type_tag"})
_LITTLE = sys.byteorder == "little"


class BTFMember:
    """A member of a struct or union: its name (empty when anonymous), type, and position in bits."""

    __slots__ = ("_btf", "bit_offset", "bitfield_size", "name", "type_id")

    def __init__(self, btf: BTF, name: str, type_id: int, bit_offset: int, bitfield_size: int) -> None:
        self._btf = btf
        self.name = name
        self.type_id = type_id
        self.bit_offset = bit_offset
        self.bitfield_size = bitfield_size

    @property
    def type(self) -> BTFType:
        """The member's type."""
        return self._btf.type(self.type_id)

    def __repr__(self) -> str:
        bits = f", bitfield_size={self.bitfield_size}" if self.bitfield_size else ""
        return f"BTFMember({self.name!r}, {self.type.c_name()!r}, bit_offset={self.bit_offset}{bits})"


class BTFType:
    """One type of a :class:`BTF`: ``.name``, ``.kind`` (``"int"``, ``"struct"``, ...), ``.size`` in bytes.

    ``str()`` is the C declaration (the full definition for structs, unions, enums and typedefs).
    """

    __slots__ = (
        "_btf",
        "_size",
        "array",
        "encoding",
        "enumerators",
        "id",
        "int_bits",
        "int_offset",
        "kflag",
        "kind",
        "linkage",
        "members",
        "name",
        "params",
        "ref",
        "secinfos",
    )  # fmt: skip

    def __init__(self, btf: BTF, type_id: int) -> None:
        self._btf = btf
        self.id = type_id
        self.members: tuple[BTFMember, ...] = ()
        self.enumerators: tuple[tuple[str, int], ...] = ()
        self.params: tuple[tuple[str, int], ...] = ()
        self.secinfos: tuple[tuple[int, int, int], ...] = ()
        self.array: tuple[int, int, int] | None = None
        self.int_bits = self.int_offset = self.encoding = self.linkage = 0
        self.ref = 0
        self._size: int | None = None
        if type_id == 0:
            self.kind, self.name, self.kflag = "void", "void", False
            self._size = 0
            return
        ptr = btf._ptr
        t = _lib.btf__type_by_id(ptr, type_id)
        if t == b.NULL:
            raise KeyError(f"BTF has no type id {type_id}")
        info = t.info
        kind_no = (info >> 24) & 0x1F
        self.kind = _KINDS[kind_no] if kind_no < len(_KINDS) else f"kind {kind_no}"
        self.kflag = bool(info >> 31)
        vlen = info & 0xFFFF
        self.name = btf._string(t.name_off)
        kind = self.kind
        body = t + 1  # the kind-specific records follow the common header
        if kind in ("int", "struct", "union", "enum", "enum64", "float", "datasec"):
            self._size = t.size
        else:
            self.ref = t.type
        if kind == "int":
            word = _ffi.cast("__u32 *", body)[0]
            self.encoding = (word >> 24) & 0x0F
            self.int_offset = (word >> 16) & 0xFF
            self.int_bits = word & 0xFF
        elif kind in ("struct", "union"):
            records = _ffi.cast("struct btf_member *", body)
            members = []
            for i in range(vlen):
                m = records[i]
                offset, bits = (m.offset & 0xFFFFFF, m.offset >> 24) if self.kflag else (m.offset, 0)
                members.append(BTFMember(btf, btf._string(m.name_off), m.type, offset, bits))
            self.members = tuple(members)
        elif kind == "enum":
            records32 = _ffi.cast("struct btf_enum *", body)
            mask = -1 if self.kflag else 0xFFFFFFFF  # kflag: the enum is signed
            self.enumerators = tuple(
                (btf._string(records32[i].name_off), records32[i].val & mask if not self.kflag else records32[i].val)
                for i in range(vlen)
            )
        elif kind == "enum64":
            records64 = _ffi.cast("struct btf_enum64 *", body)
            values = []
            for i in range(vlen):
                value = records64[i].val_lo32 | (records64[i].val_hi32 << 32)
                if self.kflag and value >= 1 << 63:
                    value -= 1 << 64
                values.append((btf._string(records64[i].name_off), value))
            self.enumerators = tuple(values)
        elif kind == "array":
            a = _ffi.cast("struct btf_array *", body)[0]
            self.array = (a.type, a.index_type, a.nelems)
            self.ref = a.type
        elif kind == "func_proto":
            p = _ffi.cast("struct btf_param *", body)
            self.params = tuple((btf._string(p[i].name_off), p[i].type) for i in range(vlen))
        elif kind == "var":
            self.linkage = _ffi.cast("struct btf_var *", body)[0].linkage
        elif kind == "datasec":
            s = _ffi.cast("struct btf_var_secinfo *", body)
            self.secinfos = tuple((s[i].type, s[i].offset, s[i].size) for i in range(vlen))
            # A section's variables, seen as the members of a struct: a data map's value decodes like one.
            variables = [(btf.type(var_id), offset) for var_id, offset, _ in self.secinfos]
            self.members = tuple(
                BTFMember(btf, var.name, var.ref, 8 * offset, 0) for var, offset in variables if var.kind == "var"
            )

    # -- navigation ---------------------------------------------------------------------------------------------

    @property
    def btf(self) -> BTF:
        """The BTF this type belongs to."""
        return self._btf

    @property
    def type(self) -> BTFType | None:
        """The type this one refers to (pointers, typedefs, modifiers, variables, functions, array elements)."""
        if self.kind in ("int", "struct", "union", "enum", "enum64", "float", "datasec", "void", "fwd"):
            return None
        return self._btf.type(self.ref)

    def resolved(self) -> BTFType:
        """This type with typedefs and modifiers stripped: what its values really are (BTFError when the chain
        of typedefs and modifiers loops)."""
        return _strip(self, _TRANSPARENT)

    @property
    def size(self) -> int:
        """The size of a value of this type in bytes (0 for void, functions and forward declarations)."""
        if self._size is None:
            self._size = -1  # being computed: met again below, the type contains itself
            try:
                self._size = self._computed_size()
            except BaseException:
                self._size = None
                raise
        elif self._size < 0:
            raise BTFError(f"{self._btf.source} type {self.id}: its size depends on itself", self.id)
        if self._size > MAX_VALUE_SIZE:
            raise BTFError(
                f"{self._btf.source} type {self.id}: {self._size} bytes, more than the {MAX_VALUE_SIZE} pybpfmap "
                "lays out",
                self.id,
            )
        return self._size

    def _computed_size(self) -> int:
        kind = self.kind
        if kind == "ptr":
            return 8
        if kind == "array" and self.array is not None:
            size = _strip(self._btf.type(self.array[0]), _TRANSPARENT).size * self.array[2]
        elif kind in _TRANSPARENT or kind == "var":
            size = _strip(self._btf.type(self.ref), _TRANSPARENT).size
        else:
            return 0
        return size

    @property
    def signed(self) -> bool:
        """Whether an int or enum of this type is signed."""
        if self.kind == "int":
            return bool(self.encoding & _INT_SIGNED)
        return self.kind in ("enum", "enum64") and self.kflag

    # -- C declarations -----------------------------------------------------------------------------------------

    def c_name(self, declarator: str = "") -> str:
        """How C names this type in a declaration of ``declarator`` (``"char comm[16]"``, ``"struct k *p"``)."""
        return _untrusted(self, lambda: self._c_name(declarator))

    def _c_name(self, declarator: str = "") -> str:
        kind = self.kind
        space = f" {declarator}" if declarator else ""
        if kind in ("struct", "union", "enum", "enum64", "fwd"):
            if kind == "fwd":
                tag = "union" if self.kflag else "struct"
            else:
                tag = "enum" if kind.startswith("enum") else kind
            if not self.name:
                return self._definition(1) + space
            return f"{tag} {self.name}{space}"
        if kind in ("int", "float", "typedef", "void"):
            return f"{self.name}{space}"
        target = self._btf.type(self.ref)
        if kind == "ptr":
            inner = f"*{declarator}"
            if target.kind in ("array", "func_proto"):
                inner = f"(*{declarator})"
            return target._c_name(inner)
        if kind in ("const", "volatile", "restrict"):
            if target.kind == "ptr":
                return target._c_name(f"{kind} {declarator}".strip())
            return f"{kind} {target._c_name(declarator)}"
        if kind == "array" and self.array is not None:
            return target._c_name(f"{declarator}[{self.array[2]}]")
        if kind == "func_proto":
            params = ", ".join(self._btf.type(t)._c_name(n) for n, t in self.params) or "void"
            return target._c_name(f"{declarator}({params})")
        if kind in ("var", "func", "type_tag", "decl_tag"):
            return target._c_name(declarator)
        return f"{kind}{space}"

    def _definition(self, depth: int = 1) -> str:
        kind = self.kind
        name = f" {self.name}" if self.name else ""
        pad = "\t" * depth
        if kind in ("struct", "union"):
            lines = []
            for m in self.members:
                mt = m.type
                if not mt.name and mt.kind in ("struct", "union"):
                    decl = mt._definition(depth + 1) + (f" {m.name}" if m.name else "")
                else:
                    decl = mt._c_name(m.name)
                lines.append(f"{pad}{decl}{f' : {m.bitfield_size}' if m.bitfield_size else ''};")
            body = "\n".join(lines)
            return f"{kind}{name} {{\n{body}\n{chr(9) * (depth - 1)}}}" if lines else f"{kind}{name} {{}}"
        if kind in ("enum", "enum64"):
            body = ",\n".join(f"{pad}{n} = {v}" for n, v in self.enumerators)
            return f"enum{name} {{\n{body}\n{chr(9) * (depth - 1)}}}"
        return self._c_name()

    def __str__(self) -> str:
        return _untrusted(self, self._declaration)

    def _declaration(self) -> str:
        if self.kind in ("struct", "union", "enum", "enum64"):
            return self._definition()
        if self.kind == "typedef":
            return f"typedef {self._btf.type(self.ref).c_name(self.name)}"
        return self.c_name()

    def __repr__(self) -> str:
        return f"<BTFType {self.id} {self.kind} {self.name!r} size={self.size}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BTFType):
            return NotImplemented
        return self._btf is other._btf and self.id == other.id

    def __hash__(self) -> int:
        return hash((id(self._btf), self.id))


class BTF:
    """A BTF type graph loaded by libbpf. Iterating yields every :class:`BTFType` in id order.

    Get one with :meth:`from_kernel`, :meth:`from_file` or :meth:`from_map`; look types up with
    :meth:`type` by id or name (``"task_struct"``, ``"struct task_struct"``).
    """

    def __init__(self, ptr: Any, *, owner: Any = None, source: str = "BTF") -> None:
        """Wrap a ``struct btf *``. Without ``owner`` the BTF is freed with this object; with one, ``owner``
        (a libbpf object that frees it) is kept alive instead."""
        self._ptr = ptr if owner is not None else _ffi.gc(ptr, _lib.btf__free)
        self._owner = owner
        self.source = source
        self._types: dict[int, BTFType] = {}
        self._strings: dict[int, str] = {}
        self._compiled: dict[tuple[int, int, int], _Compiled] = {}
        self._classes: dict[int, type[BTFStruct]] = {}
        self._enums: dict[int, type[enum.IntEnum] | None] = {}

    @classmethod
    def from_kernel(cls, btf_id: int) -> BTF:
        """The BTF object the kernel holds under ``btf_id`` (a map's or program's ``btf_id``)."""
        ptr = _lib.btf__load_from_kernel_by_id(btf_id)
        if ptr == b.NULL:
            b.fail(_ffi.errno or 2, "load", f"BTF id {btf_id}")
        return cls(ptr, source=f"BTF id {btf_id}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> BTF:
        """The BTF in a file: the ``.BTF`` section of an ELF object, or raw BTF (``/sys/kernel/btf/vmlinux``)."""
        name = os.fspath(path)
        ptr = _lib.btf__parse(os.fsencode(name), b.NULL)
        if ptr == b.NULL:
            err = _ffi.errno or 22
            if not os.path.exists(name):
                raise FileNotFoundError(err, f"no such file: {name!r}")
            b.fail(err, "parse BTF of", repr(name))
        return cls(ptr, source=repr(name))

    @classmethod
    def from_raw(cls, data: bytes, source: str = "raw BTF") -> BTF:
        """BTF from its raw encoding (the bytes of ``/sys/kernel/btf/*`` or of an ELF ``.BTF`` section)."""
        ptr = _lib.btf__new(data, len(data))
        if ptr == b.NULL:
            b.fail(_ffi.errno or 22, "parse", source)
        return cls(ptr, source=source)

    @classmethod
    def from_map(cls, m: Any) -> BTF:
        """The BTF a map was created with (ValueError when it has none)."""
        btf_id = m.info.btf_id
        if not btf_id:
            raise ValueError(f"{m!r} has no BTF")
        return cls.from_kernel(btf_id)

    def _string(self, offset: int) -> str:
        s = self._strings.get(offset)
        if s is None:
            raw = _lib.btf__name_by_offset(self._ptr, offset)
            s = "" if raw == b.NULL else _ffi.string(raw).decode(errors="surrogateescape")
            self._strings[offset] = s
        return s

    def __len__(self) -> int:
        """The number of types, void (id 0) not counted."""
        return int(_lib.btf__type_cnt(self._ptr)) - 1

    def __iter__(self) -> Iterator[BTFType]:
        for type_id in range(1, len(self) + 1):
            yield self.type(type_id)

    def type(self, name_or_id: int | str) -> BTFType:
        """The type with this id, or the first one with this name (``"struct x"``/``"union x"``/``"enum x"``
        pick the kind). KeyError when there is none."""
        if isinstance(name_or_id, int):
            t = self._types.get(name_or_id)
            if t is None:
                if not 0 <= name_or_id <= len(self):
                    raise KeyError(f"{self.source} has no type id {name_or_id}")
                t = self._types[name_or_id] = BTFType(self, name_or_id)
            return t
        if not isinstance(name_or_id, str):
            raise TypeError(f"a BTF type is named by an int id or a str, got {type(name_or_id).__name__}")
        kind, _, bare = name_or_id.strip().rpartition(" ")
        kinds = {"struct": 4, "union": 5, "enum": 6}
        if kind:
            if kind not in kinds:
                raise KeyError(f"{name_or_id!r}: expected 'struct NAME', 'union NAME', 'enum NAME' or a name")
            found = _lib.btf__find_by_name_kind(self._ptr, bare.encode(), kinds[kind])
            if found < 0 and kind == "enum":
                found = _lib.btf__find_by_name_kind(self._ptr, bare.encode(), 19)
        else:
            found = _lib.btf__find_by_name(self._ptr, bare.encode())
        if found < 0:
            raise KeyError(f"{self.source} has no type named {name_or_id!r}")
        return self.type(int(found))

    def __repr__(self) -> str:
        return f"<BTF {self.source}, {len(self)} types>"


# -- decoded structs and unions ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, BTFStruct):
        return value._asdict()
    if type(value) is tuple:
        return [_plain(v) for v in value]
    return value


class BTFStruct(tuple[Any, ...]):
    """Base of the classes made for BTF structs and unions: an immutable, hashable tuple of the members.

    Attributes name the members (those of anonymous members are reachable directly too, as in C);
    ``_asdict()`` gives nested plain dicts (arrays as lists); two instances are equal when they are of the
    same BTF type and hold equal members.
    """

    __slots__ = ()
    #: Member names in order; anonymous members are named ``_anon0``, ``_anon1``, ...
    _fields: ClassVar[tuple[str, ...]] = ()
    #: Which of :attr:`_fields` are anonymous members whose own members belong to this one.
    _anonymous: ClassVar[frozenset[str]] = frozenset()
    #: The BTF type the class was made for.
    _btf_type: ClassVar[BTFType]

    def _asdict(self) -> dict[str, Any]:
        """The members as a dict (nested structs as dicts, arrays as lists, anonymous members merged)."""
        out: dict[str, Any] = {}
        anonymous = self._anonymous
        for name, value in zip(self._fields, self, strict=True):
            if name in anonymous:
                out.update(value._asdict())
            else:
                out[name] = _plain(value)
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}({inner})"

    # Only values of the same BTF type compare equal: not a plain tuple, nor another struct with equal members.
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    def __reduce__(self) -> Any:
        raise TypeError(f"{type(self).__name__} instances are made per BTF and cannot be pickled; use _asdict()")


def _struct_class(btf: BTF, t: BTFType) -> type[BTFStruct]:
    cls = btf._classes.get(t.id)
    if cls is not None:
        return cls
    fields: list[str] = []
    anonymous: list[str] = []
    ns: dict[str, Any] = {"__slots__": (), "_btf_type": t, "__doc__": f"Values of BTF {t.kind} {t.name!r}."}
    for i, m in enumerate(t.members):
        name = m.name or f"_anon{len(anonymous)}"
        if not m.name:
            anonymous.append(name)
        fields.append(name)
        ns[name] = property(operator.itemgetter(i), doc=f"member {name!r}")
    for i, name in enumerate(fields):
        if name in anonymous:
            inner = _struct_class(btf, t.members[i].type.resolved())
            for promoted in _all_names(inner):
                if promoted not in ns:
                    ns[promoted] = property(_promoted_getter(i, promoted), doc=f"member {promoted!r}")
    ns["_fields"] = tuple(fields)
    ns["_anonymous"] = frozenset(anonymous)
    cls = type(t.name.lstrip(".") or f"anon_{t.kind}_{t.id}", (BTFStruct,), ns)
    btf._classes[t.id] = cls
    return cls


def _promoted_getter(index: int, name: str) -> Callable[[BTFStruct], Any]:
    def get(self: BTFStruct) -> Any:
        return getattr(self[index], name)

    return get


def _all_names(cls: type[BTFStruct]) -> set[str]:
    """Member names reachable on instances of ``cls``: its own, and those of its anonymous members."""
    names = set()
    t = cls._btf_type
    for name, m in zip(cls._fields, t.members, strict=True):
        if name in cls._anonymous:
            names |= _all_names(_struct_class(t.btf, m.type.resolved()))
        else:
            names.add(name)
    return names


def _enum_class(btf: BTF, t: BTFType) -> type[enum.IntEnum] | None:
    if t.id in btf._enums:
        return btf._enums[t.id]
    cls: type[enum.IntEnum] | None = None
    names = [(n, v) for n, v in t.enumerators if n]
    if names and len({n for n, _ in names}) == len(names):
        make: Any = enum.IntEnum  # the functional API, with names only known at run time
        cls = make(t.name or f"anon_enum_{t.id}", names)
    btf._enums[t.id] = cls
    return cls


# -- compiling a layout -----------------------------------------------------------------------------------------

_ZERO: Any = object()  # a member not given when encoding from a dict: left as zero bytes

_INT_CHARS = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
              (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}  # fmt: skip
_FLOAT_CHARS = {2: "e", 4: "f", 8: "d"}

Fill = Callable[[Any, list[Any], str], None]


def _int_name(size: int, signed: bool) -> str:
    return f"{'i' if signed else 'u'}{8 * size}"


def _check_int(value: Any, lo: int, hi: int, what: str, path: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{path}: expected an int for {what}, got {type(value).__name__}") from None
    if not lo <= v <= hi:
        raise ValueError(f"{path}: {v} is out of range for {what} ({lo}..{hi})")
    return v


class _Compiler:
    """Collects the leaves (fixed-size fields at byte offsets) of one layout and the code that rebuilds values.

    Leaves must come in increasing offset order, which is the order of members in every C layout: the
    format string is built in that order, and item indices are assigned as leaves are added.
    """

    def __init__(self, btf: BTF) -> None:
        self.btf = btf
        self.leaves: list[tuple[int, int, str]] = []  # (offset, size, struct format)
        self.defaults: list[Any] = []
        self.runs: list[tuple[int, int]] = []  # (item index, bytes) of bitfield storage, encoded as ints
        self.ns: dict[str, Any] = {"_new": tuple.__new__, "_from": int.from_bytes, "_cstr": _cstr, "_sx": _sx}

    def const(self, value: Any, prefix: str) -> str:
        name = f"_{prefix}{len(self.ns)}"
        self.ns[name] = value
        return name

    def leaf(self, offset: int, size: int, fmt: str, defaults: list[Any]) -> int:
        if len(self.leaves) >= MAX_FIELDS:
            raise BTFError(f"more than {MAX_FIELDS} fields in one layout (an array too long to decode item by item)")
        index = len(self.defaults)
        self.leaves.append((offset, size, fmt))
        self.defaults.extend(defaults)
        return index

    def format(self, total: int) -> str:
        parts = ["="]
        pos = 0
        for offset, size, fmt in self.leaves:
            if offset < pos:
                raise ValueError(f"overlapping or out-of-order members at byte {offset}: layout not supported")
            if offset > pos:
                parts.append(f"{offset - pos}x")
            parts.append(fmt)
            pos = offset + size
        if pos > total:
            raise ValueError(f"members reach byte {pos} of a {total}-byte type")
        if total > pos:
            parts.append(f"{total - pos}x")
        return "".join(parts)

    # Each compile_* returns (expression over the unpacked tuple ``t``, fill function for encoding).

    def compile(self, t: BTFType, offset: int) -> tuple[str, Fill]:
        r = t.resolved()
        kind = r.kind
        if kind == "int":
            if r.int_offset or r.int_bits != 8 * r.size:
                return self.bitfield(offset * 8 + r.int_offset, r.int_bits, r.signed)
            return self.integer(r, offset)
        if kind in ("enum", "enum64"):
            return self.enumeration(r, offset)
        if kind == "ptr":
            return self.scalar(offset, 8, "Q", 0, (0, (1 << 64) - 1), "pointer")
        if kind == "float":
            return self.floating(r, offset)
        if kind == "array":
            return self.sequence(r, offset)
        if kind in ("struct", "datasec"):
            return self.structure(r, offset)
        if kind == "union":
            return self.union(r, offset)
        raise ValueError(f"a map key or value cannot be of BTF kind {kind} ({r.c_name()!r})")

    def scalar(
        self, offset: int, size: int, fmt: str, default: Any, bounds: tuple[int, int], what: str
    ) -> tuple[str, Fill]:
        i = self.leaf(offset, size, fmt, [default])
        lo, hi = bounds

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            if type(obj) is not int or not lo <= obj <= hi:
                obj = _check_int(obj, lo, hi, what, path)
            out[i] = obj

        return f"t[{i}]", fill

    def integer(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        size, signed = r.size, r.signed
        if r.encoding & _INT_BOOL and size == 1:
            i = self.leaf(offset, 1, "?", [False])

            def fill_bool(obj: Any, out: list[Any], path: str) -> None:
                if obj is _ZERO:
                    return
                if obj not in (True, False):
                    raise ValueError(f"{path}: expected a bool, got {obj!r}")
                out[i] = bool(obj)

            return f"t[{i}]", fill_bool
        lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << (8 * size)) - 1)
        what = _int_name(size, signed)
        fmt = _INT_CHARS.get((size, signed))
        if fmt is not None:
            return self.scalar(offset, size, fmt, 0, (lo, hi), what)
        # 128-bit (and any other width): the bytes, converted in Python.
        j = self.leaf(offset, size, f"{size}s", [bytes(size)])

        def fill_wide(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            out[j] = _check_int(obj, lo, hi, what, path).to_bytes(size, sys.byteorder, signed=signed)

        return f"_from(t[{j}], {sys.byteorder!r}, signed={signed})", fill_wide

    def bitfield(self, bit_offset: int, nbits: int, signed: bool) -> tuple[str, Fill]:
        start = bit_offset // 8
        end = (bit_offset + nbits + 7) // 8
        # Bitfields that share bytes share one leaf: a run of bytes read as one little-endian int.
        last = self.runs[-1] if self.runs else None
        if (
            last is not None
            and last[0] == len(self.defaults) - 1
            and self.leaves[-1][0] <= start < self.leaves[-1][0] + last[1]
        ):
            i, nbytes = last
            run_start = self.leaves[-1][0]
            if end > run_start + nbytes:
                nbytes = end - run_start
                self.leaves[-1] = (run_start, nbytes, f"{nbytes}s")
                self.runs[-1] = (i, nbytes)
        else:
            run_start = start
            nbytes = end - start
            i = self.leaf(start, nbytes, f"{nbytes}s", [0])
            self.runs.append((i, nbytes))
        shift = bit_offset - run_start * 8
        mask = (1 << nbits) - 1
        expr = f"((_from(t[{i}], 'little') >> {shift}) & {mask})"
        if signed:
            expr = f"_sx({expr}, {nbits})"
        lo, hi = (-(1 << (nbits - 1)), (1 << (nbits - 1)) - 1) if signed else (0, mask)
        what = f"{'signed' if signed else 'unsigned'} {nbits}-bit bitfield"

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            v = _check_int(obj, lo, hi, what, path)
            out[i] = (out[i] & ~(mask << shift)) | ((v & mask) << shift)

        return expr, fill

    def enumeration(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        size, signed = r.size, r.signed
        if (size, signed) not in _INT_CHARS:
            raise ValueError(f"enum {r.name!r} of {size} bytes is not supported")
        lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << (8 * size)) - 1)
        i = self.leaf(offset, size, _INT_CHARS[(size, signed)], [0])
        cls = _enum_class(self.btf, r)
        by_name = {n: v for n, v in r.enumerators}
        what = f"enum {r.name}" if r.name else "enum"

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            if isinstance(obj, str):
                if obj not in by_name:
                    raise ValueError(f"{path}: {obj!r} is not a member of {what}")
                obj = by_name[obj]
            out[i] = _check_int(obj, lo, hi, f"{what} ({_int_name(size, signed)})", path)

        if cls is None:
            return f"t[{i}]", fill
        members = self.const({int(m): m for m in cls}, "e")
        return f"{members}.get(t[{i}], t[{i}])", fill

    def floating(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        fmt = _FLOAT_CHARS.get(r.size)
        if fmt is None:
            raise ValueError(f"float {r.name!r} of {r.size} bytes is not supported")
        i = self.leaf(offset, r.size, fmt, [0.0])

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            if not isinstance(obj, (int, float)) or isinstance(obj, bool):
                raise TypeError(f"{path}: expected a float for {r.name}, got {type(obj).__name__}")
            try:
                struct.pack("=" + fmt, obj)
            except (OverflowError, struct.error):
                raise ValueError(f"{path}: {obj!r} is out of range for {r.name}") from None
            out[i] = float(obj)

        return f"t[{i}]", fill

    def sequence(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        if r.array is None:
            raise ValueError(f"array type {r.id} has no array record")
        elem_id, _, n = r.array
        elem = self.btf.type(elem_id)
        esize = elem.size
        if _is_char(elem):
            i = self.leaf(offset, n, f"{n}s", [b""])

            def fill_str(obj: Any, out: list[Any], path: str) -> None:
                if obj is _ZERO:
                    return
                if isinstance(obj, str):
                    data = obj.encode("utf-8", "surrogateescape")
                elif isinstance(obj, (bytes, bytearray)):
                    data = bytes(obj)
                else:
                    raise TypeError(f"{path}: expected a str for char[{n}], got {type(obj).__name__}")
                if len(data) > n:
                    raise ValueError(f"{path}: {len(data)} bytes do not fit in char[{n}]")
                out[i] = data

            return f"_cstr(t[{i}])", fill_str
        if n == 0:
            return "()", lambda obj, out, path: None
        er = elem.resolved()
        plain = _plain_format(er)
        if plain is not None:
            fmt, lo, hi, what = plain
            i = self.leaf(offset, esize * n, f"{n}{fmt}", [0.0 if fmt in "efd" else 0] * n)

            def fill_plain(obj: Any, out: list[Any], path: str) -> None:
                if obj is _ZERO:
                    return
                _check_len(obj, n, path)
                for k, v in enumerate(obj):
                    if fmt in "efd":
                        if not isinstance(v, (int, float)):
                            raise TypeError(f"{path}[{k}]: expected a float, got {type(v).__name__}")
                        out[i + k] = float(v)
                    elif type(v) is not int or not lo <= v <= hi:
                        out[i + k] = _check_int(v, lo, hi, what, f"{path}[{k}]")
                    else:
                        out[i + k] = v

            return (f"t[{i}:{i + n}]" if n > 1 else f"(t[{i}],)"), fill_plain
        parts = [self.compile(elem, offset + k * esize) for k in range(n)]
        fills = [f for _, f in parts]

        def fill_items(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            _check_len(obj, n, path)
            for k, (f, v) in enumerate(zip(fills, obj, strict=True)):
                f(v, out, f"{path}[{k}]")

        return "(" + ", ".join(e for e, _ in parts) + ",)", fill_items

    def member(self, m: BTFMember, offset: int) -> tuple[str, Fill]:
        mt = m.type.resolved()
        bit = m.bit_offset
        if m.bitfield_size:
            return self.bitfield(offset * 8 + bit, m.bitfield_size, mt.signed)
        if bit % 8:
            if mt.kind == "int":
                return self.bitfield(offset * 8 + bit + mt.int_offset, mt.int_bits, mt.signed)
            raise ValueError(f"member {m.name!r} starts inside a byte but is not an int")
        return self.compile(m.type, offset + bit // 8)

    def structure(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        cls = _struct_class(self.btf, r)
        parts = [self.member(m, offset) for m in r.members]
        fields = cls._fields
        anonymous = cls._anonymous
        fills = [f for _, f in parts]
        allowed = _all_names(cls)
        sub_names = {
            name: _all_names(_struct_class(self.btf, m.type.resolved()))
            for name, m in zip(fields, r.members, strict=True)
            if name in anonymous
        }
        what = f"{r.kind} {r.name}" if r.name else f"anonymous {r.kind}"

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            if type(obj) is cls or isinstance(obj, (tuple, list)):
                _check_len(obj, len(fills), path, f" (the members of {what} in order)")
                values = list(obj)
            elif isinstance(obj, dict):
                unknown = set(obj) - allowed
                if unknown:
                    raise ValueError(f"{path}: {what} has no member {', '.join(map(repr, sorted(unknown)))}")
                values = []
                for name in fields:
                    if name in anonymous:
                        sub = {k: v for k, v in obj.items() if k in sub_names[name]}
                        values.append(sub if sub else _ZERO)
                    else:
                        values.append(obj.get(name, _ZERO))
            else:
                raise TypeError(
                    f"{path}: expected a {cls.__name__}, a dict or a tuple for {what}, got {type(obj).__name__}"
                )
            for name, f, v in zip(fields, fills, values, strict=True):
                f(v, out, path if name in anonymous else f"{path}.{name}")

        exprs = [e for e, _ in parts]
        name = self.const(cls, "C")
        # Calling the class with a tuple is the cheapest way to make a tuple subclass instance from Python.
        return f"{name}(({', '.join(exprs)},))" if exprs else f"{name}(())", fill

    def union(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        cls = _struct_class(self.btf, r)
        size = r.size
        members = [_Compiled(self.btf, r, m) for m in r.members]
        by_name = dict(zip(cls._fields, members, strict=True))
        # An instance encodes through its largest member, which covers the most bytes.
        widest = max(range(len(members)), key=lambda k: members[k].covers, default=None)
        i = self.leaf(offset, size, f"{size}s", [bytes(size)])

        def decode(data: bytes) -> BTFStruct:
            return tuple.__new__(cls, [m.decode(data) for m in members])

        what = f"union {r.name}" if r.name else "anonymous union"

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            if type(obj) is cls:
                if widest is None:
                    return
                name, value = cls._fields[widest], obj[widest]
            elif isinstance(obj, dict):
                unknown = [k for k in obj if k not in by_name]
                if unknown:
                    raise ValueError(f"{path}: {what} has no member {unknown[0]!r}")
                if len(obj) != 1:
                    # Several members (as _asdict() gives them) are fine when they spell the same bytes.
                    encoded = {m.encode(v, f"{path}.{k}") for k, v in obj.items() for m in (by_name[k],)}
                    if len(encoded) != 1:
                        raise ValueError(f"{path}: a {what} takes exactly one member, got {sorted(obj) or 'none'}")
                    out[i] = encoded.pop()
                    return
                ((name, value),) = obj.items()
            else:
                raise TypeError(f"{path}: expected a {cls.__name__} or a dict of one member for {what}")
            out[i] = by_name[name].encode(value, f"{path}.{name}" if name not in cls._anonymous else path)

        return f"{self.const(decode, 'U')}(t[{i}])", fill


def _check_len(obj: Any, n: int, path: str, what: str = "") -> None:
    if not isinstance(obj, (tuple, list)):
        raise TypeError(f"{path}: expected a sequence of {n} items{what}, got {type(obj).__name__}")
    if len(obj) != n:
        raise ValueError(f"{path}: expected {n} items{what}, got {len(obj)}")


def _plain_format(r: BTFType) -> tuple[str, int, int, str] | None:
    """The format character and range of a type that unpacks as one item needing no conversion."""
    if r.kind == "int" and not r.int_offset and r.int_bits == 8 * r.size and not r.encoding & _INT_BOOL:
        fmt = _INT_CHARS.get((r.size, r.signed))
        if fmt is None:
            return None
        bits = 8 * r.size
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if r.signed else (0, (1 << bits) - 1)
        return fmt, lo, hi, _int_name(r.size, r.signed)
    if r.kind == "ptr":
        return "Q", 0, (1 << 64) - 1, "pointer"
    if r.kind == "float" and r.size in _FLOAT_CHARS:
        return _FLOAT_CHARS[r.size], 0, 0, r.name
    return None


def _strip(t: BTFType, kinds: frozenset[str]) -> BTFType:
    """Follow ``t`` through types of ``kinds`` (typedefs, modifiers) to the first of another kind. A chain
    longer than the BTF has types loops: BTFError."""
    start = t
    for _ in range(len(t.btf) + 1):
        if t.kind not in kinds:
            return t
        t = t.btf.type(t.ref)
    raise BTFError(f"{start.btf.source} type {start.id}: its chain of typedefs and modifiers loops", start.id)


def _untrusted(t: BTFType, work: Callable[[], T]) -> T:
    """Run ``work``, which walks ``t``'s type graph, turning what a hostile graph makes Python raise deep
    inside (RecursionError of a cycle through members or pointers, SyntaxError or UnicodeError of names no
    class can have, IndexError and struct.error of records that do not add up) into a BTFError naming ``t``."""
    try:
        return work()
    except BTFError:
        raise
    except (RecursionError, SyntaxError, UnicodeError, IndexError, struct.error, OverflowError, MemoryError) as exc:
        raise BTFError(f"{t.btf.source} type {t.id}: cannot be used ({type(exc).__name__}: {exc})", t.id) from exc


def _is_char(elem: BTFType) -> bool:
    """bpftool's test for a string array's element: an int of one byte, CHAR-encoded or named ``char``,
    after modifiers (typedefs are not skipped)."""
    t = _strip(elem, _MODIFIERS)
    return t.kind == "int" and t.size == 1 and (bool(t.encoding & _INT_CHAR) or t.name == "char")


def _cstr(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _sx(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


class _Compiled:
    """One layout compiled: a :class:`struct.Struct` and generated ``decode`` / ``decode_from`` functions.

    Built for a whole type, or for one member of a union (decoded from, and encoded to, the union's bytes).
    """

    def __init__(self, btf: BTF, t: BTFType, member: BTFMember | None = None) -> None:
        c = _Compiler(btf)
        self.size = t.size
        if member is None:
            expr, self._fill = c.compile(t, 0)
        else:
            expr, self._fill = c.member(member, 0)
        self.covers = sum(size for _, size, _ in c.leaves)
        self.struct = struct.Struct(c.format(self.size))
        self._template = c.defaults
        self._runs = c.runs
        ns = dict(c.ns)
        ns["_unpack"] = self.struct.unpack_from
        ns["_iter"] = self.struct.iter_unpack
        # A struct whose members all unpack as they are: the unpacked tuple is the instance's content.
        n = len(c.defaults)
        identity = "((" + ", ".join(f"t[{k}]" for k in range(n)) + ",))"
        if n and expr.startswith("_C") and expr.endswith(identity) and expr.count("(") == 2:
            expr = expr[: -len(identity)] + "(t)"
        # A buffer shorter than the type (a variable-length record, a truncated read) is a ValueError that
        # says how many bytes were expected; the try costs nothing until it raises.
        ns["_short"] = _short_buffer(self.size, t)
        ns["_struct_error"] = struct.error
        self.source = (
            f"def decode(data):\n    try:\n        t = _unpack(data)\n"
            f"    except _struct_error:\n        raise _short(data, 0) from None\n    return {expr}\n"
            f"def decode_from(data, offset):\n    try:\n        t = _unpack(data, offset)\n"
            f"    except _struct_error:\n        raise _short(data, offset) from None\n    return {expr}\n"
            f"def decode_all(data, count):\n"
            f"    return [{expr} for t in _iter(memoryview(data)[: count * {self.size}])]\n"
        )
        if expr.endswith("(t)") and expr.count("(") == 1:
            # The class applied to each unpacked record, in C (a map object, iterated once by the caller).
            self.source += (
                f"def decode_all(data, count):\n"
                f"    return map({expr[:-3]}, _iter(memoryview(data)[: count * {self.size}]))\n"
            )
        exec(compile(self.source, f"<BTF layout of {t.c_name()}>", "exec"), ns)
        self.decode: Callable[[Buffer], Any] = ns["decode"]
        self.decode_from: Callable[[Buffer, int], Any] = ns["decode_from"]
        self.decode_all: Callable[[Buffer, int], list[Any]] = ns["decode_all"]

    def encode(self, obj: Any, path: str) -> bytes:
        out = list(self._template)
        self._fill(obj, out, path)
        for i, nbytes in self._runs:
            out[i] = out[i].to_bytes(nbytes, "little")
        return self.struct.pack(*out)


def _short_buffer(size: int, t: BTFType) -> Callable[[Any, int], ValueError]:
    def short(data: Any, offset: int) -> ValueError:
        have = max(len(memoryview(data).cast("B")) - offset, 0)
        return ValueError(f"{t.c_name()!r} is {size} bytes, got {have} at offset {offset}")

    return short


def _compiled(btf: BTF, t: BTFType) -> _Compiled:
    key = (t.id, 0, 0)
    c = btf._compiled.get(key)
    if c is None:
        c = btf._compiled[key] = _untrusted(t, lambda: _Compiled(btf, t))
    return c


class BTFCodec(Codec[Any]):
    """A :class:`~pybpfmap.codec.Codec` for values of one BTF type: ``BTFCodec(btf, "struct flow")``.

    ``type`` is a :class:`BTFType`, a type id or a type name. Encoding takes the decoded object, a dict (missing
    members are zero) or a tuple in member order, checks every member's range and names it in its error
    (``"value.stats.packets: 18446744073709551616 is out of range for u64 (0..18446744073709551615)"``).
    """

    def __init__(self, btf: BTF, type: BTFType | int | str) -> None:
        t = type if isinstance(type, BTFType) else btf.type(type)
        if t.btf is not btf:
            raise ValueError(f"{t!r} belongs to another BTF")
        self.btf = btf
        self.type = t
        self._compiled = _compiled(btf, t)
        self.size = self._compiled.size
        self.struct = self._compiled.struct
        # The generated functions, bound here so that a map's decode call reaches them directly.
        self.decode = self._compiled.decode  # type: ignore[method-assign,assignment]
        self.decode_from = self._compiled.decode_from  # type: ignore[method-assign,assignment]

    def encode(self, obj: Any) -> bytes:
        """Encode a decoded value, a dict or a tuple; TypeError/ValueError name the member that is wrong."""
        return self._compiled.encode(obj, self.role or "value")

    def decode(self, data: Buffer) -> Any:
        """Decode the first :attr:`size` bytes of ``data``."""
        return self._compiled.decode(data)

    def decode_all(self, data: Buffer, count: int) -> Iterable[Any]:
        """Decode ``count`` values laid out back to back, in one pass over the buffer."""
        if count <= 0 or not self.size:
            return [self.decode(data) for _ in range(max(count, 0))]
        return self._compiled.decode_all(data, count)

    def numpy_dtype(self) -> Any:
        """The numpy dtype of one value, structured with the BTF member names (see :func:`numpy_dtype`)."""
        return numpy_dtype(self.type)

    def __repr__(self) -> str:
        return f"BTFCodec({self.type.c_name()!r}, {self.size} bytes)"


# -- bpftool's rendering ----------------------------------------------------------------------------------------


def bpftool_json(btf_type: BTFType, data: bytes | bytearray | memoryview) -> Any:
    """Render ``data``, a raw value of ``btf_type``, as ``bpftool map dump -j`` prints it under ``formatted``.

    Returns plain JSON-able objects: 8/16/32/64-bit ints and pointers as numbers, bitfields and ints of other
    widths (128-bit too) as ``"0x..."`` strings, bool as true/false, enums as the enumerator's name (the number
    when none matches), structs and unions as dicts by member name (a union shows every member; an anonymous
    member is keyed ``""``), arrays as lists, and a ``char`` array as a string only when a NUL lies within it
    and every byte before it is printable. ``json.dumps`` of the result compares equal, after parsing, to
    bpftool's output for the same bytes.
    """
    buf = bytes(data)
    if len(buf) < btf_type.size:
        raise ValueError(f"{btf_type.c_name()!r} is {btf_type.size} bytes, got {len(buf)}")
    return _untrusted(btf_type, lambda: _render(btf_type, buf, 0, 0))


def _hex_bits(buf: bytes, offset: int, bit_offset: int, nbits: int) -> str:
    nbytes = (bit_offset + nbits + 7) // 8
    value = int.from_bytes(buf[offset : offset + nbytes], "little") >> bit_offset
    return f"0x{value & ((1 << nbits) - 1):x}"


def _render(t: BTFType, buf: bytes, offset: int, bit_offset: int) -> Any:
    t = _strip(t, _TRANSPARENT)
    kind = t.kind
    if kind == "int":
        bits = t.int_bits
        if bit_offset or t.int_offset or bits % 8:
            total = bit_offset + t.int_offset
            return _hex_bits(buf, offset + total // 8, total % 8, bits)
        if bits == 128:
            return f"0x{int.from_bytes(buf[offset : offset + 16], 'little'):x}"
        enc = t.encoding
        if enc & _INT_BOOL:
            return buf[offset] != 0
        if enc & _INT_CHAR:
            ch = buf[offset]
            return chr(ch)
        if bits not in (8, 16, 32, 64):
            return _hex_bits(buf, offset, 0, bits)
        return int.from_bytes(buf[offset : offset + bits // 8], "little", signed=bool(enc & _INT_SIGNED))
    if kind == "ptr":
        return int.from_bytes(buf[offset : offset + 8], "little")
    if kind == "enum":
        value = int.from_bytes(buf[offset : offset + t.size], "little", signed=True)
        for name, v in t.enumerators:
            if (v if v < 1 << 31 else v - (1 << 32)) == value:
                return name
        return value
    if kind == "enum64":
        raw = int.from_bytes(buf[offset : offset + 8], "little")
        for name, v in t.enumerators:
            if v % (1 << 64) == raw:
                return name
        return raw - (1 << 64) if raw >= 1 << 63 else raw  # bpftool prints it through a signed int
    if kind == "array" and t.array is not None:
        elem_id, _, n = t.array
        elem = t.btf.type(elem_id)
        if n and _is_char(elem):
            chars = buf[offset : offset + n]
            nul = chars.find(b"\0")
            if nul >= 0 and all(0x20 <= c <= 0x7E for c in chars[:nul]):
                return chars[:nul].decode("ascii")
        if n > _MAX_RENDERED:
            raise BTFError(f"{t.btf.source} type {t.id}: {n} elements, more than the {_MAX_RENDERED} rendered", t.id)
        esize = elem.size
        return [_render(elem, buf, offset + k * esize, 0) for k in range(n)]
    if kind in ("struct", "union"):
        out: dict[str, Any] = {}
        for m in t.members:
            at = offset + m.bit_offset // 8
            if m.bitfield_size:
                out[m.name] = _hex_bits(buf, at, m.bit_offset % 8, m.bitfield_size)
            else:
                out[m.name] = _render(m.type, buf, at, m.bit_offset % 8)
        return out
    if kind == "var":
        return {t.name: _render(t.btf.type(t.ref), buf, offset, bit_offset)}
    if kind == "datasec":
        return {t.name: [_render(t.btf.type(tid), buf, offset + off, 0) for tid, off, _ in t.secinfos]}
    if kind == "float":
        fmt = _FLOAT_CHARS.get(t.size)
        if fmt is not None:
            return struct.unpack_from("=" + fmt, buf, offset)[0]
    raise ValueError(f"bpftool cannot render BTF kind {kind} ({t.c_name()!r})")


# -- numpy ------------------------------------------------------------------------------------------------------


def numpy_dtype(btf_type: BTFType) -> Any:
    """A numpy dtype for values of ``btf_type``: structured, with the BTF member names, for structs.

    Ints, enums, pointers and floats map to numpy scalars of their size and signedness, arrays to subarrays,
    ``char[N]`` to ``S<N>``, 128-bit ints to ``V16``; a union is a struct dtype whose members overlap;
    members of anonymous members appear directly; bitfields, which numpy cannot address, are left out (their
    bytes stay in the itemsize). numpy is imported on first use.
    """
    import numpy as np

    def make() -> Any:
        try:
            return np.dtype(_dtype_spec(btf_type))
        except TypeError as exc:  # numpy refuses the sizes and shapes a hostile BTF describes
            raise BTFError(f"{btf_type.btf.source} type {btf_type.id}: no numpy dtype: {exc}", btf_type.id) from exc

    return _untrusted(btf_type, make)


def _dtype_spec(t: BTFType) -> Any:
    r = t.resolved()
    kind = r.kind
    order = "<" if _LITTLE else ">"
    if kind == "int":
        if r.encoding & _INT_BOOL and r.size == 1:
            return "?"
        if r.size in (1, 2, 4, 8):
            return f"{order}{'i' if r.signed else 'u'}{r.size}"
        return f"V{r.size}"
    if kind in ("enum", "enum64"):
        return f"{order}{'i' if r.signed else 'u'}{r.size}"
    if kind == "ptr":
        return f"{order}u8"
    if kind == "float":
        return f"{order}f{r.size}"
    if kind == "array" and r.array is not None:
        elem = r.btf.type(r.array[0])
        if _is_char(elem):
            return f"S{r.array[2]}"
        return (_dtype_spec(elem), (r.array[2],))
    if kind in ("struct", "union", "datasec"):
        names: list[str] = []
        formats: list[Any] = []
        offsets: list[int] = []
        _dtype_members(r, 0, names, formats, offsets)
        return {"names": names, "formats": formats, "offsets": offsets, "itemsize": r.size}
    raise ValueError(f"no numpy dtype for BTF kind {kind} ({r.c_name()!r})")


def _dtype_members(r: BTFType, base: int, names: list[str], formats: list[Any], offsets: list[int]) -> None:
    for m in r.members:
        mt = m.type.resolved()
        if m.bitfield_size or m.bit_offset % 8:
            continue
        at = base + m.bit_offset // 8
        if not m.name and mt.kind in ("struct", "union"):
            _dtype_members(mt, at, names, formats, offsets)
            continue
        if mt.kind == "int" and (mt.int_offset or mt.int_bits != 8 * mt.size):
            continue
        names.append(m.name)
        formats.append(_dtype_spec(mt))
        offsets.append(at)


# -- hooks for the map core: typed codecs on open, BTF on create, bpf_spin_lock --------------------------------

_INT_NAMES = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i8": "b", "i16": "h", "i32": "i", "i64": "q"}


def _plain_int_name(r: BTFType) -> str | None:
    """The IntCodec name of a plain 1/2/4/8-byte int type, whose maps keep the integer fast path."""
    if r.kind == "int" and r.size in (1, 2, 4, 8) and r.int_bits == 8 * r.size and not r.int_offset:
        if r.encoding & (_INT_BOOL | _INT_CHAR):
            return None
        return _int_name(r.size, r.signed)
    return None


def _codec_for(btf: BTF, type_id: int, role: str) -> Codec[Any]:
    t = btf.type(type_id)
    codec: Codec[Any]
    int_name = _plain_int_name(t.resolved())
    if int_name is not None:
        codec = IntCodec(int_name)
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
        if exc.errno in _RESOURCE_ERRNOS:
            # Out of fds or memory is no reason to hand out bytes where the caller expects typed values.
            detail = f"cannot read its BTF ({exc}); pass btf=False for bytes"
            target = f"map {info.name!r} (id {info.id})"
            raise error_from_errno(exc.errno or errno.ENOMEM, "open", target, detail) from exc
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
        """Like :meth:`Elements.find_raw`, under the value's lock."""
        fd = self.live_fd()
        s = self._scratch
        rc = _lib.bpf_map_lookup_elem_flags(fd, raw_key, s.cdata, _lib.BPF_F_LOCK)
        if rc == 0:
            return self.value.decode(s.view)
        if -rc == errno.ENOENT:
            return default
        self.fail(rc, "lookup", key)


def with_spin_lock(elements: Elements) -> Elements:
    """``elements`` itself, or a :class:`LockedElements` on the same fd when the values hold a spin lock."""
    if type(elements) is Elements and _has_spin_lock(elements.value):
        return LockedElements(elements.fd, elements.key, elements.value, elements.target)
    return elements


# Map types whose keys and values the kernel checks against BTF in the plain way (sizes match the types).
_TYPED_MAP_TYPES = frozenset({1, 2, 5, 6, 9, 10})  # HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH


class GeneratedBTF:
    """BTF built for a map being created, loaded into the kernel; ``fileno()`` is its fd until it is freed."""

    def __init__(self) -> None:
        """Start an empty BTF."""
        ptr = _lib.btf__new_empty()
        if ptr == b.NULL:
            raise MemoryError("btf__new_empty failed")
        self._ptr = _ffi.gc(ptr, _lib.btf__free)
        self._ctypes: dict[Any, int] = {}
        self._ints: dict[tuple[str, int, int], int] = {}

    def as_btf(self) -> BTF:
        """The types built so far, for reading (the BTF keeps this object alive)."""
        return BTF(self._ptr, owner=self, source="generated BTF")

    def fileno(self) -> int:
        """The fd of the loaded BTF."""
        return int(_lib.btf__fd(self._ptr))

    def load(self) -> None:
        """Load the BTF into the kernel (BPF_BTF_LOAD)."""
        b.check(_lib.btf__load_into_kernel(self._ptr), "load", "generated BTF")

    def _id(self, rc: int, what: str) -> int:
        return b.check(rc, "build BTF for", what)

    def integer(self, name: str, size: int, encoding: int) -> int:
        """The id of an int type (added once)."""
        key = (name, size, encoding)
        if key not in self._ints:
            self._ints[key] = self._id(_lib.btf__add_int(self._ptr, name.encode(), size, encoding), name)
        return self._ints[key]

    def codec(self, codec: Codec[Any]) -> int | None:
        """The id of a type describing the codec's values, or None for an untyped codec."""
        if type(codec) is IntCodec:
            signed = codec.signed
            return self.integer(_C_INT_NAMES[(codec.size, signed)], codec.size, _INT_SIGNED if signed else 0)
        if isinstance(codec, BTFCodec):
            return self.btf_type(codec.type)
        ctype = getattr(codec, "ctype", None)
        if ctype is not None:
            return self.ctype(ctype)
        return None

    def btf_type(self, t: BTFType) -> int:
        """The id of a copy of ``t`` (and of the types it uses) in this BTF.

        Types are rebuilt one by one rather than merged wholesale, so that an ELF object's sections, variables
        and functions, which the kernel would refuse in a map's BTF, stay out. Modifiers are dropped and
        pointers point to void: neither changes how a value is laid out or printed.
        """
        key = ("btf", id(t.btf), t.id)
        if key in self._ctypes:
            return self._ctypes[key]
        kind = t.kind
        name = t.name.encode()
        p = self._ptr
        if kind in ("volatile", "const", "restrict", "type_tag") and t.type is not None:
            result = self.btf_type(t.type)
        elif kind == "typedef" and t.type is not None:
            result = self._id(_lib.btf__add_typedef(p, name, self.btf_type(t.type)), t.name)
        elif kind == "int":
            result = self._id(_lib.btf__add_int(p, name, t.size, t.encoding), t.name)
        elif kind == "float":
            result = self._id(_lib.btf__add_float(p, name, t.size), t.name)
        elif kind == "ptr":
            result = self._id(_lib.btf__add_ptr(p, 0), "pointer")
        elif kind == "array" and t.array is not None:
            elem = self.btf_type(t.btf.type(t.array[0]))
            index = self.integer("unsigned int", 4, 0)
            result = self._id(_lib.btf__add_array(p, index, elem, t.array[2]), "array")
        elif kind in ("enum", "enum64"):
            if kind == "enum64" or t.size > 4:
                result = self._id(_lib.btf__add_enum64(p, name, t.size, t.signed), t.name)
                for n, v in t.enumerators:
                    self._id(_lib.btf__add_enum64_value(p, n.encode(), v % (1 << 64)), n)
            else:
                result = self._id(_lib.btf__add_enum(p, name, t.size), t.name)
                for n, v in t.enumerators:
                    self._id(_lib.btf__add_enum_value(p, n.encode(), v), n)
        elif kind in ("struct", "union"):
            fields = [(m.name, self.btf_type(m.type), m.bit_offset, m.bitfield_size) for m in t.members]
            add = _lib.btf__add_union if kind == "union" else _lib.btf__add_struct
            result = self._id(add(p, name, t.size), t.name)
            for fname, fid, bit_offset, bits in fields:
                self._id(_lib.btf__add_field(p, fname.encode(), fid, bit_offset, bits), f"{t.name}.{fname}")
        else:
            raise ValueError(f"a map key or value cannot be of BTF kind {kind}")
        self._ctypes[key] = result
        return result

    def ctype(self, ctype: Any) -> int | None:
        """The id of a type matching a ctypes type, or None when it has no BTF counterpart here."""
        if ctype in self._ctypes:
            return self._ctypes[ctype]
        size = ctypes.sizeof(ctype)
        result: int | None
        if issubclass(ctype, ctypes._SimpleCData):
            code = ctype._type_
            if code in "bhilq":
                result = self.integer(_C_INT_NAMES[(size, True)], size, _INT_SIGNED)
            elif code in "BHILQ":
                result = self.integer(_C_INT_NAMES[(size, False)], size, 0)
            elif code == "?":
                result = self.integer("_Bool", size, _INT_BOOL)
            elif code == "c":
                result = self.integer("char", 1, _INT_SIGNED)
            elif code in "fdg":
                result = self._id(_lib.btf__add_float(self._ptr, _FLOAT_NAMES[size].encode(), size), "float")
            elif code in "PzZO":
                result = self._id(_lib.btf__add_ptr(self._ptr, 0), "pointer")
            else:
                result = None
        elif issubclass(ctype, ctypes.Array):
            elem = self.ctype(ctype._type_)
            if elem is None:
                return None
            index = self.integer("unsigned int", 4, 0)
            result = self._id(_lib.btf__add_array(self._ptr, index, elem, ctype._length_), "array")
        elif issubclass(ctype, (ctypes.Structure, ctypes.Union)) and not issubclass(ctype, _FOREIGN_ORDER):
            result = self._record(ctype, size)
        else:
            result = None
        self._ctypes[ctype] = result  # type: ignore[assignment]
        return result

    def _record(self, ctype: Any, size: int) -> int | None:
        fields = []
        for entry in getattr(ctype, "_fields_", []):
            name, ftype = entry[0], entry[1]
            field_id = self.ctype(ftype)
            if field_id is None:
                return None
            descriptor = getattr(ctype, name)
            bit_offset, bits = descriptor.offset * 8, 0
            if len(entry) > 2:  # a bitfield: CField.size packs (width << 16) | bit position in its unit
                bits = entry[2]
                bit_offset += descriptor.size & 0xFFFF
            fields.append((name, field_id, bit_offset, bits))
        name = getattr(ctype, "_btf_name_", ctype.__name__)
        add = _lib.btf__add_union if issubclass(ctype, ctypes.Union) else _lib.btf__add_struct
        result = self._id(add(self._ptr, name.encode(), size), name)
        for fname, fid, bit_offset, bits in fields:
            self._id(_lib.btf__add_field(self._ptr, fname.encode(), fid, bit_offset, bits), f"{name}.{fname}")
        return result


_C_INT_NAMES = {(1, True): "signed char", (2, True): "short", (4, True): "int", (8, True): "long long",
                (1, False): "unsigned char", (2, False): "unsigned short", (4, False): "unsigned int",
                (8, False): "unsigned long long"}  # fmt: skip
_FLOAT_NAMES = {4: "float", 8: "double", 16: "long double"}
# Errors of the process's resources rather than of the BTF: raised, never turned into an untyped map.
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})

_FOREIGN_ORDER = ctypes.BigEndianStructure if _LITTLE else ctypes.LittleEndianStructure


def btf_for(key: Codec[Any], value: Codec[Any], map_type: int) -> tuple[GeneratedBTF, int, int] | None:
    """BTF describing a new map's key and value, loaded into the kernel, with the key and value type ids.

    None when the map type does not take BTF this way or a codec is untyped (raw bytes, struct formats);
    a BTF that fails to build or load gives a warning and None, so the map is still created, untyped.
    """
    if int(map_type) not in _TYPED_MAP_TYPES:
        return None
    try:
        gen = GeneratedBTF()
        key_id = gen.codec(key)
        value_id = gen.codec(value.element if hasattr(value, "element") else value)
        if key_id is None or value_id is None:
            return None
        gen.load()
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            return None  # the creation that follows is refused too, and its error says why
        if exc.errno in _RESOURCE_ERRNOS:
            raise
        warnings.warn(f"map created without BTF: {exc}", stacklevel=4)
        return None
    except ValueError as exc:
        warnings.warn(f"map created without BTF: {exc}", stacklevel=4)
        return None
    return gen, key_id, value_id
