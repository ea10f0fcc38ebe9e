"""Codecs: how a Python key or value becomes the fixed number of bytes the kernel stores, and back.

One interface, :class:`Codec`, serves every spelling a map accepts for ``key=`` and ``value=``:

* ``None``: raw :class:`bytes` of exactly the map's size (:class:`BytesCodec`);
* ``"u8" "u16" "u32" "u64" "i8" "i16" "i32" "i64"``: a Python int in host byte order (:class:`IntCodec`);
* ``"str"``: a C string in a ``char[size]`` array of the map's size, as a Python str (:class:`CStringCodec`);
* a :mod:`struct` format string or :class:`struct.Struct`: a tuple, or the single item of a one-field format
  (:class:`StructCodec`);
* a :mod:`ctypes` type: instances of it (:class:`CTypesCodec`);
* any :class:`Codec` instance, used as it is.

Map classes only ever talk to :class:`Codec`, so a codec built from BTF can join without touching them.
"""

from __future__ import annotations

import array
import ctypes
import operator
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeAlias, TypeVar, cast

from ._internal.lazynumpy import numpy

__all__ = [
    "BytesCodec",
    "CStringCodec",
    "CTypesCodec",
    "Codec",
    "CodecSpec",
    "IntCodec",
    "StructCodec",
    "as_codec",
    "exact",
    "exact_many",
]

T = TypeVar("T")

#: What a codec decodes from: ``bytes``, or a view of a scratch buffer.
Buffer: TypeAlias = bytes | bytearray | memoryview


class Codec(ABC, Generic[T]):
    """Converts between Python objects of one kind and byte strings of exactly :attr:`size` bytes.

    Subclasses implement :meth:`encode` and :meth:`decode`; both raise before anything reaches the kernel:
    ``TypeError`` for an object of the wrong kind, ``ValueError`` for one of the wrong size or range, each
    naming what was expected.
    """

    #: The number of bytes of an encoded object.
    size: int
    #: What the codec encodes in its map (``"key"`` or ``"value"``), set by :func:`as_codec` for the codecs it
    #: builds; it starts the message of every encoding error, so ``m[k] = v`` says which one was wrong.
    role: str = ""
    #: Whether the codec encodes plain text (a syscall name): the command line then takes a bare word as it is.
    takes_text: bool = False
    #: Whether decoded objects are containers that Python's cyclic collector keeps tracking (instances of
    #: classes, tuple subclasses; plain tuples of ints it stops tracking): bulk reads then decode a chunk at a
    #: time with the collector paused (see ``_internal.gcpause``).
    decodes_tracked: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The bulk and offset shortcuts of a built-in codec bypass its decode() and encode(): a subclass that
        # redefines those gets the generic versions, which call them, unless it brings its own shortcuts too.
        if "decode" in cls.__dict__:
            for name in ("decode_from", "decode_all"):
                if name not in cls.__dict__:
                    setattr(cls, name, getattr(Codec, name))
        if "encode" in cls.__dict__ and "encode_many" not in cls.__dict__:
            cls.encode_many = Codec.encode_many  # type: ignore[method-assign]
        if ("encode" in cls.__dict__ or "decode" in cls.__dict__) and "fixed_format" not in cls.__dict__:
            cls.fixed_format = Codec.fixed_format  # type: ignore[method-assign]

    def _error(self, kind: type[Exception], message: str) -> Exception:
        return kind(f"{self.role}: {message}" if self.role else message)

    @abstractmethod
    def encode(self, obj: T) -> bytes:
        """Return ``obj`` as exactly :attr:`size` bytes."""

    @abstractmethod
    def decode(self, data: Buffer) -> T:
        """Return the object that the first :attr:`size` bytes of ``data`` encode."""

    def decode_from(self, data: Buffer, offset: int) -> T:
        """Decode the :attr:`size` bytes of ``data`` that start at ``offset``."""
        return self.decode(memoryview(data)[offset : offset + self.size])

    def decode_all(self, data: Buffer, count: int) -> Iterable[T]:
        """Decode ``count`` objects laid out back to back at the start of ``data``.

        Batch reads call this once per chunk; codecs with a bulk path (ints, struct layouts) override it so that
        no per-object Python call is made. The result is iterated once, before ``data`` is reused.
        """
        size = self.size
        return [self.decode_from(data, i * size) for i in range(count)]

    def fixed_format(self) -> tuple[str, int] | None:
        """The :mod:`struct` format that packs and unpacks this codec's objects exactly as :meth:`encode` and
        :meth:`decode` do, and its number of fields (1: the object is the bare item, else a tuple of them); None
        when the codec converts its objects some other way. Layouts that repeat a value (one per CPU) use it to
        pack and unpack every copy in one call."""
        return None

    def encode_many(self, objs: Sequence[T]) -> Buffer | None:
        """All of ``objs`` encoded back to back (bytes, or a byte view of a buffer the codec filled), or None
        when the codec has no bulk path.

        With None the map encodes each object with :meth:`encode` and checks each one's size; a bulk result is
        checked as a whole (``len(objs) * size`` bytes).
        """
        return None

    def numpy_dtype(self) -> Any:
        """The numpy dtype of one encoded object (``snapshot_arrays()``); raw bytes (``V<size>``) by default."""
        np = numpy()
        return np.dtype((np.void, self.size))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.size} bytes)"


def exact(data: object, codec: Codec[Any], role: str) -> bytes:
    """``data`` from ``codec.encode`` as bytes of exactly ``codec.size``; the one size check before the kernel.

    Built-in codecs always pass; a custom codec that returns anything but a contiguous bytes-like object of the
    right length raises here, naming the ``role`` (``"key"`` or ``"value"``), the codec and the expected size.
    """
    if type(data) is not bytes:
        try:
            view = memoryview(data)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(f"{role}: {codec!r}.encode() returned {type(data).__name__}, expected bytes") from None
        if not view.c_contiguous:
            raise TypeError(f"{role}: {codec!r}.encode() returned a non-contiguous buffer, expected bytes")
        data = view.tobytes()
    if len(data) != codec.size:
        raise ValueError(f"{role}: {codec!r}.encode() returned {len(data)} bytes, expected exactly {codec.size}")
    return data


def exact_many(data: Any, count: int, codec: Codec[Any], role: str) -> Any:
    """The size check of :func:`exact` for ``count`` objects encoded back to back (batch operations)."""
    size = memoryview(data).nbytes
    if size != count * codec.size:
        raise ValueError(
            f"{role}s: {count} {role}s of {codec.size} bytes need {count * codec.size} bytes, got {size}"
        )
    return data


class BytesCodec(Codec[bytes]):
    """Raw bytes: any bytes-like object of exactly ``size`` bytes in, :class:`bytes` out."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"a size is at least 0 bytes, got {size}")
        self.size = size

    def encode(self, obj: bytes) -> bytes:
        """Copy a bytes-like object of exactly :attr:`size` bytes."""
        try:
            data = bytes(memoryview(obj))
        except TypeError:
            raise self._error(
                TypeError, f"expected a bytes-like object of {self.size} bytes, got {type(obj).__name__}"
            ) from None
        if len(data) != self.size:
            raise self._error(ValueError, f"expected {self.size} bytes, got {len(data)}")
        return data

    def decode(self, data: Buffer) -> bytes:
        """The first :attr:`size` bytes as :class:`bytes`."""
        return bytes(data[: self.size])

    def __repr__(self) -> str:
        return f"BytesCodec({self.size})"


class CStringCodec(Codec[str]):
    """A C string in a fixed ``char[size]`` array (a task's ``comm``, a file name): ``CStringCodec(16)``.

    Encoding writes the string's UTF-8 bytes and pads them with NULs; a string of exactly ``size`` bytes fills
    the array with no NUL, as ``strncpy`` leaves it. Decoding stops at the first NUL (or the end of the array).
    Bytes that are not UTF-8 decode to surrogate escapes (``errors="surrogateescape"``), so that every array
    read back encodes to the same bytes again.
    """

    def __init__(self, size: int) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"a C string array is at least 1 byte, got {size!r}")
        self.size = size

    def encode(self, obj: str) -> bytes:
        """The string's UTF-8 bytes, NUL-padded to :attr:`size`."""
        if not isinstance(obj, str):
            raise self._error(TypeError, f"expected a string, got {type(obj).__name__}")
        data = obj.encode("utf-8", "surrogateescape")
        if b"\0" in data:
            # Decoding stops at the first NUL: the rest would silently vanish on the way back.
            raise self._error(ValueError, f"a C string cannot hold a NUL character, got {obj!r}")
        if len(data) > self.size:
            raise self._error(
                ValueError, f"{obj!r} is {len(data)} bytes in UTF-8, more than the {self.size} the array holds"
            )
        return data + bytes(self.size - len(data))

    def decode(self, data: Buffer) -> str:
        """The bytes up to the first NUL, as text."""
        raw = bytes(data[: self.size])
        end = raw.find(0)
        return (raw if end < 0 else raw[:end]).decode("utf-8", "surrogateescape")

    def __repr__(self) -> str:
        return f"CStringCodec({self.size})"


_INT_FORMATS = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i8": "b", "i16": "h", "i32": "i", "i64": "q"}
# array.array type codes of the same sizes (on Linux, "I" and "i" are 4 bytes, "Q" and "q" 8).
_ARRAY_CODES = {"B": "B", "H": "H", "I": "I", "Q": "Q", "b": "b", "h": "h", "i": "i", "q": "q"}


class IntCodec(Codec[int]):
    """A fixed-width integer in host byte order: ``IntCodec("u32")``.

    Maps whose key and value codecs are both ``IntCodec`` take a C fast path that passes the integers by
    value, so :attr:`minimum`, :attr:`maximum` and :meth:`to_unsigned` / :meth:`from_unsigned` are part of the
    codec's contract with the map classes.
    """

    def __init__(self, name: str) -> None:
        if name not in _INT_FORMATS:
            raise ValueError(f"unknown integer codec {name!r}; expected one of {', '.join(_INT_FORMATS)}")
        self.name = name
        #: The :mod:`struct` format character, for codecs that lay several of these out at once.
        self.format_char = _INT_FORMATS[name]
        self._struct = struct.Struct("=" + self.format_char)
        self.size = self._struct.size
        self.signed = name.startswith("i")
        bits = 8 * self.size
        self._modulus = 1 << bits
        self.minimum = -(1 << (bits - 1)) if self.signed else 0
        self.maximum = (1 << (bits - 1)) - 1 if self.signed else (1 << bits) - 1

    def check(self, obj: Any) -> int:
        """Return ``obj`` as an int within this codec's range, or raise TypeError / ValueError."""
        try:
            value = operator.index(obj)
        except TypeError:
            raise self._error(TypeError, f"expected an int for {self.name}, got {type(obj).__name__}") from None
        if not self.minimum <= value <= self.maximum:
            raise self._error(
                ValueError, f"{value} is out of range for {self.name} ({self.minimum}..{self.maximum})"
            )
        return value

    def to_unsigned(self, obj: Any) -> int:
        """The checked value as the unsigned integer of the same bits (two's complement for signed codecs)."""
        return self.check(obj) % self._modulus

    def from_unsigned(self, bits: int) -> int:
        """Inverse of :meth:`to_unsigned`."""
        if self.signed and bits > self.maximum:
            return bits - self._modulus
        return bits

    def encode(self, obj: int) -> bytes:
        """Pack the checked int in host byte order."""
        if type(obj) is not int or not self.minimum <= obj <= self.maximum:
            obj = self.check(obj)
        return self._struct.pack(obj)

    def decode(self, data: Buffer) -> int:
        """Unpack the int from host byte order."""
        return int(self._struct.unpack_from(data)[0])

    def decode_from(self, data: Buffer, offset: int) -> int:
        """Unpack the int stored at ``offset``, without slicing ``data``."""
        return int(self._struct.unpack_from(data, offset)[0])

    def decode_all(self, data: Buffer, count: int) -> Iterable[int]:
        """A typed view of the ints: iterating it makes each int, with no call per item."""
        view: Iterable[int] = memoryview(data)[: count * self.size].cast(self.format_char)  # type: ignore[call-overload]
        return view

    def encode_many(self, objs: Sequence[int]) -> Buffer:
        """Pack every int in one C loop (array.array); out-of-range or non-int items get :meth:`check`'s error."""
        try:
            return memoryview(array.array(_ARRAY_CODES[self.format_char], objs)).cast("B")
        except (OverflowError, TypeError):
            # array's own messages name C types; encode each item to raise the codec's error for the culprit.
            return b"".join(map(self.encode, objs))

    def fixed_format(self) -> tuple[str, int]:
        """The integer's struct format, host byte order: one field."""
        return "=" + self.format_char, 1

    def numpy_dtype(self) -> Any:
        """The numpy integer dtype of this width and signedness, in host byte order."""
        return numpy().dtype(self.format_char)

    def __repr__(self) -> str:
        return f"IntCodec({self.name!r})"


class StructCodec(Codec[Any]):
    """A :mod:`struct` layout. Values are tuples, or the bare item when the format has a single field.

    A format without a byte-order prefix uses native sizes and alignment, which is how C lays out a struct.
    """

    def __init__(self, fmt: str | struct.Struct) -> None:
        try:
            self._struct = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        except struct.error as exc:
            raise ValueError(f"invalid struct format {fmt!r}: {exc}") from None
        self.format = self._struct.format
        self.size = self._struct.size
        self._fields = len(self._struct.unpack(bytes(self.size)))

    def encode(self, obj: Any) -> bytes:
        """Pack a tuple (or the single item) with the struct layout."""
        items = (obj,) if self._fields == 1 else obj
        if self._fields != 1:
            if not isinstance(obj, (tuple, list)):
                raise self._error(
                    TypeError,
                    f"expected a tuple of {self._fields} items for struct {self.format!r}, "
                    f"got {type(obj).__name__}",
                )
            if len(obj) != self._fields:
                raise self._error(
                    ValueError, f"expected {self._fields} items for struct {self.format!r}, got {len(obj)}"
                )
        try:
            return self._struct.pack(*items)
        except struct.error as exc:
            kind = ValueError if "range" in str(exc) or "format requires" in str(exc) else TypeError
            raise self._error(kind, f"cannot encode {obj!r} as struct {self.format!r}: {exc}") from None

    def fixed_format(self) -> tuple[str, int]:
        """The layout's format and number of fields."""
        return self.format, self._fields

    def decode(self, data: Buffer) -> Any:
        """Unpack a tuple (or the single item)."""
        items = self._struct.unpack_from(data)
        return items[0] if self._fields == 1 else items

    def decode_from(self, data: Buffer, offset: int) -> Any:
        """Unpack at ``offset``, without slicing ``data``."""
        items = self._struct.unpack_from(data, offset)
        return items[0] if self._fields == 1 else items

    def decode_all(self, data: Buffer, count: int) -> Iterable[Any]:
        """Unpack every record in one pass (``struct.iter_unpack``)."""
        records = self._struct.iter_unpack(memoryview(data)[: count * self.size])
        return (items[0] for items in records) if self._fields == 1 else records

    def encode_many(self, objs: Sequence[Any]) -> bytes:
        """Pack every object; the layout fixes each one's size."""
        return b"".join(map(self.encode, objs))

    def __repr__(self) -> str:
        return f"StructCodec({self.format!r})"


_CTYPES_BASES: tuple[type, ...] = (
    ctypes._SimpleCData,  # the documented base of c_int and friends
    ctypes.Structure,
    ctypes.Union,
    ctypes.Array,
    ctypes.BigEndianStructure,
    ctypes.LittleEndianStructure,
)


class CTypesCodec(Codec[Any]):
    """A :mod:`ctypes` type: scalars, arrays, Structures and Unions. Values are instances of the type."""

    def __init__(self, ctype: type) -> None:
        if not (isinstance(ctype, type) and issubclass(ctype, _CTYPES_BASES)):
            raise TypeError(f"expected a ctypes type, got {ctype!r}")
        self.ctype: Any = cast(Any, ctype)
        self.size = ctypes.sizeof(self.ctype)

    def encode(self, obj: Any) -> bytes:
        """The bytes of a ctypes instance of this type."""
        # Exactly this type: a subclass may add fields, and its bytes would be longer than the map's size.
        if type(obj) is not self.ctype:
            raise self._error(TypeError, f"expected a {self.ctype.__name__} instance, got {type(obj).__name__}")
        return bytes(memoryview(obj).cast("B"))

    def decode(self, data: Buffer) -> Any:
        """A new instance holding a copy of the bytes."""
        return self.ctype.from_buffer_copy(data[: self.size])

    def decode_from(self, data: Buffer, offset: int) -> Any:
        """A new instance holding a copy of the bytes at ``offset``."""
        return self.ctype.from_buffer_copy(data, offset)

    def numpy_dtype(self) -> Any:
        """The numpy dtype numpy derives from the ctypes type (field names of a Structure included)."""
        return numpy().dtype(self.ctype)

    def __repr__(self) -> str:
        return f"CTypesCodec({self.ctype.__name__})"


#: Everything that ``key=`` and ``value=`` accept.
CodecSpec: TypeAlias = str | struct.Struct | type | Codec[Any] | None


def as_codec(spec: CodecSpec, size: int | None = None, *, what: str = "value") -> Codec[Any]:
    """Turn a ``key=`` / ``value=`` argument into a :class:`Codec`.

    ``size`` is the map's key or value size when it is known; a codec of another size raises ValueError. Raw
    bytes (``spec=None``) take their size from it.
    """
    codec: Codec[Any]
    if isinstance(spec, Codec):
        codec = spec  # the caller's own object, perhaps shared: left as it is
    else:
        if spec is None:
            if size is None:
                raise ValueError(f"raw-bytes {what}s need an explicit {what}_size")
            codec = BytesCodec(size)
        elif spec == "syscall":
            from .symbols.syscalls import SyscallCodec  # the symbols package builds on this module

            codec = SyscallCodec(size if size is not None else 4)
        elif spec == "str":
            if size is None:
                raise ValueError(f"{what}='str' takes its size from the map's {what} size, which is not given")
            codec = CStringCodec(size)
        elif isinstance(spec, str):
            codec = IntCodec(spec) if spec in _INT_FORMATS else StructCodec(spec)
        elif isinstance(spec, struct.Struct):
            codec = StructCodec(spec)
        elif isinstance(spec, type) and issubclass(spec, _CTYPES_BASES):
            codec = CTypesCodec(spec)
        else:
            raise TypeError(
                f"{what}= takes None, an int name such as 'u32', 'str', 'syscall', a struct format, a ctypes type "
                "or a Codec; "
                f"got {spec!r}"
            )
        codec.role = what
    if size is not None and codec.size != size:
        raise ValueError(f"{what} codec {codec!r} is {codec.size} bytes but the map's {what} size is {size}")
    return codec
