"""Maps and elements from the command line: opening MAP, and KEY and VALUE words as bytes (bpftool's byte
words, or JSON in the shape of the decoded value)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._internal import bindings as b
from .._internal.mapspec import open_map, parse_map_spec
from ..codec import BytesCodec, Codec, CStringCodec, as_codec
from ..enums import MapType
from ..errors import BPFError
from ..info import MapInfo, maps
from ..map import Map
from ..percpu import PerCpuCodec
from .errors import CommandError, UsageError


def _type_name(map_type: Any) -> str | int:
    """bpftool's spelling of a map type (``percpu_hash``), or the number of a type it does not know."""
    return map_type.name.lower() if isinstance(map_type, MapType) else int(map_type)


def frozen(fd: int) -> bool:
    """Whether the map behind ``fd`` is frozen (the kernel tells only through fdinfo)."""
    return _fdinfo(fd).get("frozen", "0") not in ("", "0")


def _fdinfo(fd: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                name, _, value = line.partition(":")
                fields[name.strip()] = value.strip()
    except OSError:
        pass
    return fields


def show_json(info: MapInfo, fd: int | None) -> dict[str, Any]:
    """A map as ``bpftool map show -j`` prints it."""
    out: dict[str, Any] = {"id": info.id, "type": _type_name(info.type)}
    if info.name:
        out["name"] = info.name
    out["flags"] = int(info.flags)
    out.update(bytes_key=info.key_size, bytes_value=info.value_size, max_entries=info.max_entries)
    fdinfo = _fdinfo(fd) if fd is not None else {}
    if "memlock" in fdinfo:
        out["bytes_memlock"] = int(fdinfo["memlock"])
    out["frozen"] = int(fdinfo.get("frozen", "0") or 0)
    if info.type == MapType.PROG_ARRAY and "owner_prog_type" in fdinfo:
        # A program array takes on the type (and JIT state) of the first program that uses it or is stored in
        # it; the kernel tells only through fdinfo, and only once there is an owner.
        prog_type = int(fdinfo["owner_prog_type"])
        out["owner_prog_type"] = b.prog_type_name(prog_type) or prog_type
        if "owner_jited" in fdinfo:
            out["owner_jited"] = bool(int(fdinfo["owner_jited"]))
    if info.btf_id:
        out["btf_id"] = info.btf_id
    return out


def type_names() -> list[str]:
    """bpftool's spellings of every map type this library knows (``hash``, ``percpu_array``, ...)."""
    return [str(_type_name(t)) for t in MapType if t != MapType.UNSPEC]


def pinned_maps(directory: str) -> dict[int, list[str]]:
    """The maps pinned under ``directory`` (searched recursively): map id -> its paths there, sorted.

    Pins of programs, links and BTF are skipped, and so are files that are not BPF objects at all.
    """
    if not os.path.isdir(directory):
        raise CommandError(f"--pinned {directory}: not a directory (give a directory on a bpf filesystem)")
    found: dict[int, list[str]] = {}
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                fd = b.obj_get(path, 0)
            except BPFError:  # not a BPF object, or not ours to open
                continue
            try:
                if b.object_kind(fd) == "map":
                    found.setdefault(MapInfo.from_fd(fd, repr(path)).id, []).append(path)
            finally:
                os.close(fd)
    return found


def infos(
    map_type: str | None = None, name: str | None = None, pinned: dict[int, list[str]] | None = None
) -> Iterator[tuple[MapInfo, dict[str, Any]]]:
    """Every map on the system with its ``show --json`` record, optionally only those of ``map_type`` (bpftool's
    spelling), whose name matches the shell pattern ``name``, or whose id is in ``pinned`` (their pins are then
    listed, as ``bpftool -f`` does). Maps that vanish meanwhile are skipped."""
    for info in maps():
        if map_type is not None and str(_type_name(info.type)) != map_type:
            continue
        if name is not None and not fnmatch.fnmatchcase(info.name, name):
            continue
        if pinned is not None and info.id not in pinned:
            continue
        try:
            fd = b.map_fd_by_id(info.id)
        except BPFError:  # gone since it was listed
            continue
        try:
            shown = show_json(info, fd)
        finally:
            os.close(fd)
        if pinned is not None:
            shown["pinned"] = pinned[info.id]
        yield info, shown


def resolve(words: Sequence[str], *, first: bool = False, several: bool = False) -> list[tuple[str, str]]:
    """The maps MAP names, each as a spec naming exactly one (``("id", "42")``, ``("pinned", PATH)``).

    ``name NAME`` matches every map of that name, lowest id first, as bpftool does; ``first`` keeps only the
    lowest id. Unless ``several`` (the commands that act on each match), more than one match is an error that
    tells how to pick one.
    """
    try:
        form, argument = parse_map_spec(words)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if form != "name":
        return [(form, argument)]
    ids = [info.id for info in maps() if info.name == argument]
    if not ids:
        raise CommandError(f"no map named {argument!r} (run 'pybpfmap list' to see the maps)")
    if first:
        ids = ids[:1]
    if len(ids) > 1 and not several:
        raise CommandError(
            f"{len(ids)} maps are named {argument!r} (ids {', '.join(map(str, ids))}): "
            f"name one with 'id N', or add --first for the lowest id"
        )
    return [("id", str(map_id)) for map_id in ids]


#: What ``--key`` and ``--value`` take, for messages.
CODEC_HELP = "u8, u16, u32, u64, i8, i16, i32, i64, str, syscall, or a struct format such as QQ"


def cli_codec(spec: str | None, size: int, what: str) -> Codec[Any] | None:
    """The codec that ``--key`` / ``--value`` names, checked against the map's size; None when not given."""
    if spec is None:
        return None
    try:
        codec = as_codec(spec, size if spec == "str" else None, what=what)
    except (ValueError, TypeError):
        raise UsageError(f"--{what} {spec!r} is not a codec: give {CODEC_HELP}") from None
    if codec.size != size:
        raise CommandError(
            f"--{what} {spec} is {codec.size} byte{'s' if codec.size != 1 else ''}, but the map's {what}s are "
            f"{size} byte{'s' if size != 1 else ''}: give a codec of that size"
        )
    return codec


def open_one(spec: tuple[str, str], key: str | None = None, value: str | None = None) -> Map[Any, Any]:
    """Open the one map ``spec`` names (from :func:`resolve`) with the ``--key`` / ``--value`` codecs, or with
    its own types when neither is given."""
    m = open_map(spec)
    if key is None and value is None:
        return m
    with m:
        return Map.from_fd(m.fd, key=cli_codec(key, m.key_size, "key"), value=cli_codec(value, m.value_size, "value"))


@contextmanager
def opened(
    words: Sequence[str], key: str | None = None, value: str | None = None, *, first: bool = False
) -> Iterator[Map[Any, Any]]:
    """The one map MAP names, with the ``--key`` / ``--value`` codecs when given; closed after the block."""
    (spec,) = resolve(words, first=first)
    m = open_one(spec, key, value)
    try:
        yield m
    finally:
        m.close()


def _parse_byte(word: str) -> int | None:
    """A byte as C's strtoul(word, 0) reads it (0x hex, leading-0 octal, else decimal), or None."""
    text = word.lower()
    try:
        if text.startswith("0x"):
            n = int(text[2:], 16)
        elif len(text) > 1 and text.startswith("0"):
            n = int(text[1:], 8)
        else:
            n = int(text, 10)
    except ValueError:
        return None
    return n if 0 <= n <= 255 else None


def _tuples(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_tuples(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _tuples(v) for k, v in obj.items()}
    return obj


# A JSON word longer than this cannot describe a map value (the kernel caps values well below it).
_MAX_JSON = 1 << 20


_HEX_BYTE = re.compile(r"0x[0-9a-fA-F]{1,2}")


def json_bytes(obj: Any) -> bytes | None:
    """bpftool's JSON spelling of bytes (``["0x01", "0x00"]``, as ``dump --json`` prints keys and values) as
    bytes; None for anything else."""
    if isinstance(obj, list) and all(isinstance(v, str) and _HEX_BYTE.fullmatch(v) for v in obj):
        return bytes(int(v, 16) for v in obj)
    return None


def _per_cpu_items(obj: Any, ncpus: int) -> list[Any] | None:
    """One item per CPU: a list of ``ncpus`` values, or dump's ``[{"cpu": 0, "value": ...}, ...]``."""
    if not isinstance(obj, list) or len(obj) != ncpus:
        return None
    if all(isinstance(v, dict) and "value" in v for v in obj):
        return [v["value"] for v in sorted(obj, key=lambda v: int(v.get("cpu", 0)))]
    return obj


def _encode_json(obj: Any, codec: Codec[Any], size: int, what: str) -> bytes:
    data = json_bytes(obj)
    if data is not None:
        return data
    if isinstance(codec, PerCpuCodec):
        # A list with one item per CPU that each encode is per-CPU; anything else is one value for every CPU.
        items = _per_cpu_items(obj, codec.ncpus)
        slot_size = codec.element.size
        if items is not None:
            try:
                slots = [_encode_json(v, codec.element, slot_size, what) for v in items]
            except (CommandError, TypeError, ValueError):
                slots = []
            if slots and all(len(slot) == slot_size for slot in slots):
                return b"".join(slot + bytes(codec.stride - slot_size) for slot in slots)
        slot = _encode_json(obj, codec.element, slot_size, what)
        return (slot + bytes(codec.stride - len(slot))) * codec.ncpus
    if isinstance(codec, BytesCodec):
        if isinstance(obj, int) and not isinstance(obj, bool) and size in (1, 2, 4, 8):
            try:
                return obj.to_bytes(size, sys.byteorder, signed=obj < 0)
            except OverflowError:
                raise CommandError(f"{what} {obj} does not fit in {size} byte{'s' if size > 1 else ''}") from None
        raise CommandError(
            f"the map has no type information for its {what}: give it as bytes (hex 01 02 ..., or "
            f"'[\"0x01\",\"0x02\"]'), or name a codec with --{what} ({CODEC_HELP})"
        )
    return codec.encode(_tuples(obj))


def take_element(words: list[str], codec: Codec[Any], size: int, what: str) -> tuple[bytes, list[str]]:
    """Parse one KEY or VALUE from the front of ``words``; returns its bytes and the words left."""
    if words and words[0] == what:
        words = words[1:]
    if not words:
        raise UsageError(f"missing {what}")
    if words[0] == "hex":
        taken = words[1 : 1 + size]
        if len(taken) < size:
            raise CommandError(f"{what}: expected {size} hex bytes, got {len(taken)}")
        buf = bytearray()
        for word in taken:
            try:
                n = int(word, 16)
            except ValueError:
                n = -1
            if not 0 <= n <= 255:
                raise CommandError(f"{what}: {word!r} is not a hex byte")
            buf.append(n)
        return bytes(buf), words[1 + size :]
    # As many byte numbers as the size: bytes (bpftool's syntax); otherwise one JSON word.
    parsed = [_parse_byte(w) for w in words[:size]]
    if size and len(parsed) == size and all(n is not None for n in parsed):
        return bytes(n for n in parsed if n is not None), words[size:]
    if len(words[0]) > _MAX_JSON:
        raise CommandError(f"{what}: {len(words[0])} characters of JSON, more than the {_MAX_JSON} a value can need")
    if codec.takes_text and not words[0].lstrip("-").isdigit() and not words[0].startswith('"'):
        try:
            return codec.encode(words[0]), words[1:]
        except (TypeError, ValueError) as exc:
            raise CommandError(f"{what}: {exc}") from None
    full_size = codec.size if isinstance(codec, PerCpuCodec) else size
    try:
        if isinstance(codec, CStringCodec):
            data = _c_string(words[0], codec, what)
        else:
            data = _encode_json(json.loads(words[0]), codec, size, what)
    except RecursionError:
        raise CommandError(f"{what}: the JSON is nested too deeply for any map value") from None
    except json.JSONDecodeError:
        raise CommandError(
            f"{what}: {words[0]!r} is neither {size} bytes nor JSON (bytes: hex 01 02 ..., or 1 2 ...)"
        ) from None
    except TypeError:
        # The codecs' own messages name Python types ("got str"): say what the map takes instead.
        raise CommandError(f"{what}: {words[0]!r} is not {_shape(codec)}") from None
    if len(data) != full_size:
        raise CommandError(
            f"{what}: {len(data)} byte{'s' if len(data) != 1 else ''} given, the map's {what}s are {full_size} bytes"
        )
    return data, words[1:]


def _shape(codec: Codec[Any]) -> str:
    """What a KEY or VALUE word must look like for ``codec``, for messages."""
    codec = codec.element if isinstance(codec, PerCpuCodec) else codec
    name = getattr(codec, "name", None)
    if isinstance(name, str) and name[:1] in "ui" and name[1:].isdigit():
        return f"an integer ({name})"
    fmt = getattr(codec, "format", None)
    if isinstance(fmt, str):
        return f"a JSON list for the struct format {fmt} (such as '[1, 2]')"
    return "JSON in the shape 'pybpfmap dump' shows the decoded entries"


def _c_string(word: str, codec: CStringCodec, what: str) -> bytes:
    """A C string KEY or VALUE: the word as it is, or the string a JSON string word spells, or JSON bytes."""
    try:
        obj = json.loads(word)
    except ValueError:
        obj = word
    data = json_bytes(obj) if isinstance(obj, list) else None
    if data is not None:
        return data
    text = obj if isinstance(obj, str) else word
    try:
        return codec.encode(text)
    except ValueError:
        size = len(text.encode("utf-8", "surrogateescape"))
        if "\0" in text:
            raise CommandError(f"{what}: a C string cannot hold a NUL character") from None
        raise CommandError(
            f"{what}: {text!r} is {size} bytes, longer than the map's {codec.size}-byte {what}"
        ) from None


def value_for_view(view: Map[Any, Any], data: bytes) -> Any:
    """Bytes of a value as the raw view takes them: per-CPU buffers split into one slot per CPU."""
    codec = view.value_codec
    if isinstance(codec, PerCpuCodec) and len(data) == codec.size:
        return [data[i * codec.stride : i * codec.stride + codec.element.size] for i in range(codec.ncpus)]
    return data


def view_key(view: Map[Any, Any], data: bytes) -> Any:
    """A key's bytes decoded for display by the view's key codec."""
    return data if isinstance(view.key_codec, BytesCodec) else view.key_codec.decode(data)
