"""Maps and elements from the command line: opening MAP, and KEY and VALUE words as bytes (bpftool's byte
words, or JSON in the shape of the decoded value)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._internal import bindings as b
from .._internal.mapspec import open_map, parse_map_spec
from ..codec import BytesCodec, Codec
from ..enums import MapType
from ..errors import BPFError
from ..info import MapInfo, maps
from ..map import Map
from ..percpu import PerCpuCodec
from .errors import CommandError, UsageError


def _type_name(map_type: Any) -> str | int:
    """bpftool's spelling of a map type (``percpu_hash``), or the number of a type it does not know."""
    return map_type.name.lower() if isinstance(map_type, MapType) else int(map_type)


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


def infos() -> Iterator[tuple[MapInfo, dict[str, Any]]]:
    """Every map on the system with its ``show --json`` record; maps that vanish meanwhile are skipped."""
    for info in maps():
        try:
            fd = b.map_fd_by_id(info.id)
        except BPFError:  # gone since it was listed
            continue
        try:
            yield info, show_json(info, fd)
        finally:
            os.close(fd)


@contextmanager
def opened(words: Sequence[str], key: str | None = None, value: str | None = None) -> Iterator[Map[Any, Any]]:
    """The map MAP names, with the ``--key`` / ``--value`` codecs when given; closed after the block."""
    form, argument = parse_map_spec(words)
    m = open_map((form, argument), key=key, value=value)
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


def _encode_json(obj: Any, codec: Codec[Any], size: int, what: str) -> bytes:
    if isinstance(codec, PerCpuCodec):
        # A list with one item per CPU that each encode is per-CPU; anything else is one value for every CPU.
        if isinstance(obj, list) and len(obj) == codec.ncpus:
            try:
                return codec.encode([_tuples(v) for v in obj])
            except (TypeError, ValueError):
                pass
        slot = _encode_json(obj, codec.element, codec.element.size, what)
        return (slot + bytes(codec.stride - len(slot))) * codec.ncpus
    if isinstance(codec, BytesCodec):
        if isinstance(obj, int) and not isinstance(obj, bool) and size in (1, 2, 4, 8):
            try:
                return obj.to_bytes(size, sys.byteorder, signed=obj < 0)
            except OverflowError:
                raise CommandError(f"{what} {obj} does not fit in {size} byte{'s' if size > 1 else ''}") from None
        raise CommandError(
            f"the map has no type information for its {what}: give it as bytes (hex 01 02 ...), "
            f"or a codec with --{what} (u32, u64, a struct format)"
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
            raise CommandError(str(exc)) from None
    try:
        obj = json.loads(words[0])
        full_size = codec.size if isinstance(codec, PerCpuCodec) else size
        data = _encode_json(obj, codec, size, what)
    except RecursionError:
        raise CommandError(f"{what}: the JSON is nested too deeply for any map value") from None
    except ValueError as exc:
        if not isinstance(exc, json.JSONDecodeError):
            raise
        raise CommandError(
            f"{what}: {words[0]!r} is neither {size} bytes nor JSON (bytes: hex 01 02 ..., or 1 2 ...)"
        ) from None
    if len(data) != full_size:
        raise CommandError(f"{what}: encoded to {len(data)} bytes, the map's {what} is {full_size}")
    return data, words[1:]


def value_for_view(view: Map[Any, Any], data: bytes) -> Any:
    """Bytes of a value as the raw view takes them: per-CPU buffers split into one slot per CPU."""
    codec = view.value_codec
    if isinstance(codec, PerCpuCodec) and len(data) == codec.size:
        return [data[i * codec.stride : i * codec.stride + codec.element.size] for i in range(codec.ncpus)]
    return data


def view_key(view: Map[Any, Any], data: bytes) -> Any:
    """A key's bytes decoded for display by the view's key codec."""
    return data if isinstance(view.key_codec, BytesCodec) else view.key_codec.decode(data)
