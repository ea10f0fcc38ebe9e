"""Output: decoded entries in bpftool's JSON shapes, plain text and tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
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


def dump_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout, as bpftool -j does."""
    json.dump(data, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
