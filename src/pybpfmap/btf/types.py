"""The BTF type graph: :class:`BTF` (one graph, loaded by libbpf), :class:`BTFType` and :class:`BTFMember`,
and the few facts of the BTF encoding the rest of the package reads them by."""

from __future__ import annotations

import enum
import os
import struct
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .._internal.bindings import btf as bb
from .._internal.bindings import ffi as _ffi
from ..errors import BTFError

if TYPE_CHECKING:
    from .layout import Compiled
    from .values import BTFStruct

__all__ = ["BTF", "MAX_VALUE_SIZE", "BTFMember", "BTFType"]

# BTF kinds and int encodings (include/uapi/linux/btf.h): part of the kernel ABI.
_KINDS = (
    "unknown", "int", "ptr", "array", "struct", "union", "enum", "fwd", "typedef", "volatile", "const",
    "restrict", "func", "func_proto", "var", "datasec", "float", "decl_tag", "type_tag", "enum64",
)  # fmt: skip
INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4
T = TypeVar("T")
# Kinds that only qualify or rename another type: a value of one is a value of the type it refers to.
TRANSPARENT = frozenset({"typedef", "volatile", "const", "restrict", "type_tag"})
# The largest value pybpfmap lays out from BTF of outside (the kernel refuses map values past KMALLOC_MAX_SIZE,
# 4 MiB on x86-64: 32 MiB leaves room for any architecture).
MAX_VALUE_SIZE = 1 << 25
# Modifiers that bpftool skips (but not typedefs) when it decides whether an array holds characters.
_MODIFIERS = frozenset({"volatile", "const", "restrict", "type_tag"})
LITTLE = sys.byteorder == "little"


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
        t = bb.type_at(ptr, type_id)
        if t is None:
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
        return strip(self, TRANSPARENT)

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
            size = strip(self._btf.type(self.array[0]), TRANSPARENT).size * self.array[2]
        elif kind in TRANSPARENT or kind == "var":
            size = strip(self._btf.type(self.ref), TRANSPARENT).size
        else:
            return 0
        return size

    @property
    def signed(self) -> bool:
        """Whether an int or enum of this type is signed."""
        if self.kind == "int":
            return bool(self.encoding & INT_SIGNED)
        return self.kind in ("enum", "enum64") and self.kflag

    # -- C declarations -----------------------------------------------------------------------------------------

    def c_name(self, declarator: str = "") -> str:
        """How C names this type in a declaration of ``declarator`` (``"char comm[16]"``, ``"struct k *p"``)."""
        return untrusted(self, lambda: self._c_name(declarator))

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
        return untrusted(self, self._declaration)

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
        self._ptr = ptr if owner is not None else bb.owned(ptr)
        self._owner = owner
        self.source = source
        self._types: dict[int, BTFType] = {}
        self._strings: dict[int, str] = {}
        self._compiled: dict[tuple[int, int, str], Compiled] = {}
        self._classes: dict[int, type[BTFStruct]] = {}
        self._enums: dict[int, type[enum.IntEnum] | None] = {}

    @classmethod
    def from_kernel(cls, btf_id: int) -> BTF:
        """The BTF object the kernel holds under ``btf_id`` (a map's or program's ``btf_id``)."""
        return cls(bb.load_from_kernel(btf_id), source=f"BTF id {btf_id}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> BTF:
        """The BTF in a file: the ``.BTF`` section of an ELF object, or raw BTF (``/sys/kernel/btf/vmlinux``)."""
        name = os.fspath(path)
        return cls(bb.parse_file(name), source=repr(name))

    @classmethod
    def from_raw(cls, data: bytes, source: str = "raw BTF") -> BTF:
        """BTF from its raw encoding (the bytes of ``/sys/kernel/btf/*`` or of an ELF ``.BTF`` section)."""
        return cls(bb.parse_raw(data, source), source=source)

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
            s = self._strings[offset] = bb.name_at(self._ptr, offset)
        return s

    def __len__(self) -> int:
        """The number of types, void (id 0) not counted."""
        return bb.type_count(self._ptr) - 1

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
            found = bb.find(self._ptr, bare, kinds[kind])
            if found is None and kind == "enum":
                found = bb.find(self._ptr, bare, 19)  # BTF_KIND_ENUM64
        else:
            found = bb.find(self._ptr, bare)
        if found is None:
            raise KeyError(f"{self.source} has no type named {name_or_id!r}")
        return self.type(found)

    def __repr__(self) -> str:
        return f"<BTF {self.source}, {len(self)} types>"


def strip(t: BTFType, kinds: frozenset[str]) -> BTFType:
    """Follow ``t`` through types of ``kinds`` (typedefs, modifiers) to the first of another kind. A chain
    longer than the BTF has types loops: BTFError."""
    start = t
    for _ in range(len(t.btf) + 1):
        if t.kind not in kinds:
            return t
        t = t.btf.type(t.ref)
    raise BTFError(f"{start.btf.source} type {start.id}: its chain of typedefs and modifiers loops", start.id)


def untrusted(t: BTFType, work: Callable[[], T]) -> T:
    """Run ``work``, which walks ``t``'s type graph, turning what a hostile graph makes Python raise deep
    inside (RecursionError of a cycle through members or pointers, SyntaxError or UnicodeError of names no
    class can have, IndexError and struct.error of records that do not add up) into a BTFError naming ``t``."""
    try:
        return work()
    except BTFError:
        raise
    except (RecursionError, SyntaxError, UnicodeError, IndexError, struct.error, OverflowError, MemoryError) as exc:
        raise BTFError(f"{t.btf.source} type {t.id}: cannot be used ({type(exc).__name__}: {exc})", t.id) from exc


def is_char(elem: BTFType) -> bool:
    """bpftool's test for a string array's element: an int of one byte, CHAR-encoded or named ``char``,
    after modifiers (typedefs are not skipped)."""
    t = strip(elem, _MODIFIERS)
    return t.kind == "int" and t.size == 1 and (bool(t.encoding & INT_CHAR) or t.name == "char")
