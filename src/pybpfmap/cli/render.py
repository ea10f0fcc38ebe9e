"""Output: decoded entries in bpftool's JSON shapes, plain text and tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .._internal.render import element_codec, formatted, hex_bytes, jsonable
from ..enums import MapType
from ..map import Map
from ..percpu import PerCpuValues

if TYPE_CHECKING:
    from ..symbols import Symbol


def decode_value(typed: Map[Any, Any], raw_value: Any) -> Any:
    """A raw value (or per-CPU values) decoded by the typed map's codec."""
    codec = element_codec(typed.value_codec)
    if isinstance(raw_value, PerCpuValues):
        return PerCpuValues(codec.decode(slot) for slot in raw_value)
    return codec.decode(raw_value)


def entry_json(typed: Map[Any, Any], key: bytes, raw_value: Any) -> dict[str, Any]:
    """One entry as ``bpftool map dump -j`` prints it."""
    entry: dict[str, Any] = {"key": hex_bytes(key)}
    if isinstance(raw_value, PerCpuValues):
        entry["values"] = [{"cpu": cpu, "value": hex_bytes(slot)} for cpu, slot in enumerate(raw_value)]
    else:
        entry["value"] = hex_bytes(raw_value)
        # A type this library does not know comes as a plain int.
        if isinstance(typed.type, MapType) and typed.type.holds_maps and len(raw_value) == 4:
            entry["inner_map_id"] = int.from_bytes(raw_value, sys.byteorder)
    pretty = formatted(typed, key, raw_value)
    if pretty is not None:
        entry["formatted"] = pretty
    return entry


def text(obj: Any) -> str:
    """A decoded key or value for a table: bytes in bpftool's hex, numbers as they are, structs as JSON."""
    if isinstance(obj, str):
        # C strings that are not UTF-8 decode to surrogate escapes, which no terminal encoding can write.
        return obj.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(obj, (bytes, bytearray)):
        return " ".join(f"{byte:02x}" for byte in obj)
    if isinstance(obj, PerCpuValues):
        parts = [text(v) for v in obj]
        total = obj.sum() if all(isinstance(v, int) for v in obj) else None
        return f"{total}  (per CPU: {', '.join(parts)})" if total is not None else "[" + ", ".join(parts) + "]"
    if isinstance(obj, float):
        return f"{obj:.6g}"
    data = jsonable(obj)
    return data if isinstance(data, str) else json.dumps(data, separators=(", ", ": "))


def stack_text(addresses: Sequence[int], symbols: Sequence[Symbol] | None = None) -> str:
    """A stack trace for a table, innermost frame first: its addresses in hex, or the frames ``symbols`` names
    (unknown ones in hex)."""
    frames = [str(s) for s in symbols] if symbols is not None else [f"0x{a:x}" for a in addresses]
    return "[" + ", ".join(frames) + "]"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    """Rows as an aligned text table under ``headers`` (``right`` columns aligned right)."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    aligned = right or [False] * len(headers)

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(w) if a else c.ljust(w) for c, w, a in zip(cells, widths, aligned, strict=True)]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def _std_json() -> Callable[[Any], str]:
    # JSONEncoder.encode runs the C encoder in one shot; json.dump() to a file would take the pure-Python path.
    return json.JSONEncoder(separators=(",", ":")).encode


_std_encode = _std_json()


def _fast_json() -> Callable[[Any], str]:
    """orjson when installed (the ``json`` extra), else the standard library's C encoder."""
    try:
        import orjson
    except ImportError:
        return _std_encode
    dumps = orjson.dumps

    def encode(data: Any) -> str:
        try:
            return dumps(data).decode()
        except TypeError:  # integers beyond 64 bits (__int128 members), lone surrogates: the standard encoder
            return _std_encode(data)

    return encode


#: ``data`` as compact JSON text (bpftool's spacing).
to_json = _fast_json()


def dump_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout, as bpftool -j does."""
    sys.stdout.write(to_json(data) + "\n")


def write_json_array(chunks: Iterable[Sequence[str]], end: str = "]\n") -> None:
    """Write a JSON array on stdout from chunks of encoded items, as they come: nothing is held but a chunk."""
    write = sys.stdout.write
    write("[")
    separator = ""
    for chunk in chunks:
        if chunk:
            write(separator + ",".join(chunk))
            separator = ","
    write(end)


#: Entries per chunk of streamed JSON: big enough that the per-chunk costs vanish, small enough to stream.
CHUNK = 8192


def json_chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[str]]:
    """``items`` encoded a chunk at a time (one encoder call per chunk), for :func:`write_json_array`."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield [to_json(batch)[1:-1]]
            batch = []
    if batch:
        yield [to_json(batch)[1:-1]]


def raw_entry_chunks(
    keys: bytes, values: bytes, count: int, key_size: int, value_size: int, formatted: Sequence[Any] | None = None
) -> Iterator[list[str]]:
    """``count`` entries laid out back to back (``Map.snapshot_bytes``) as bpftool's JSON
    ``{"key":["0x01",...],"value":[...]}`` (with each entry's ``"formatted"`` object when given), a chunk at a
    time, with no Python object per byte.

    ``bytes.hex(",")`` spells a whole chunk in C; replacing each comma with ``","0x`` leaves every record
    ``7 * size`` characters long (the separator after its last byte included), so each record is one slice.
    Both sizes are at least 1 (maps without keys or values are not dumped).
    """
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        key_text = _byte_lists(keys[start * key_size : (start + n) * key_size], key_size, n)
        value_text = _byte_lists(values[start * value_size : (start + n) * value_size], value_size, n)
        if formatted is None:
            pairs = zip(key_text, value_text, strict=True)
            yield list(map('{"key":["0x%s"],"value":["0x%s"]}'.__mod__, pairs))
        else:
            triples = zip(key_text, value_text, map(to_json, formatted[start : start + n]), strict=True)
            yield list(map('{"key":["0x%s"],"value":["0x%s"],"formatted":%s}'.__mod__, triples))


def _byte_lists(data: bytes, size: int, count: int) -> list[str]:
    """For each of ``count`` records of ``size`` bytes, the inside of bpftool's JSON byte list less its first
    ``"0x`` and last ``"`` (``01","0x02``)."""
    spelled = data.hex(",").replace(",", '","0x')
    period = 7 * size
    return [spelled[i : i + period - 5] for i in range(0, count * period, period)]
