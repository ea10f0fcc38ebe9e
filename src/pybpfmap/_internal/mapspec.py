"""The command line's way of naming a map (``id N``, ``pinned PATH``, ``name NAME``), shared by the CLI and the
exporters' configs, and the raw-bytes view of an open map that bpftool-style output is made from."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from ..codec import BytesCodec, CodecSpec
from ..kinds import ArrayMap
from ..map import Map

__all__ = ["MAP_FORMS", "open_map", "parse_map_spec", "raw_view"]

#: The ways to name a map, as bpftool spells them.
MAP_FORMS = ("id", "pinned", "name")


def parse_map_spec(spec: str | Sequence[str]) -> tuple[str, str]:
    """``"pinned /sys/fs/bpf/x"`` or ``["id", "12"]`` -> ``(form, argument)``; ValueError when malformed."""
    words = shlex.split(spec) if isinstance(spec, str) else list(spec)
    if len(words) != 2 or words[0] not in MAP_FORMS:
        raise ValueError(f"a map is named 'id N', 'pinned PATH' or 'name NAME', got {' '.join(words)!r}")
    form, argument = words
    if form == "id" and not argument.isdigit():
        raise ValueError(f"a map id is a number, got {argument!r}")
    return form, argument


def open_map(spec: str | Sequence[str], *, key: CodecSpec = None, value: CodecSpec = None) -> Map[Any, Any]:
    """Open the map that ``spec`` names, with the given codecs (or the map's own types without them).

    Raises :class:`~pybpfmap.MapNotFoundError` for a missing id or pin, LookupError for a name that matches
    no map or several, ValueError for a malformed spec.
    """
    form, argument = parse_map_spec(spec)
    if form == "id":
        return Map.from_id(int(argument), key=key, value=value)
    if form == "pinned":
        return Map.from_pin(argument, key=key, value=value)
    return Map.from_name(argument, key=key, value=value)


def raw_view(m: Map[Any, Any]) -> Map[Any, Any]:
    """A second handle on ``m`` whose values are raw bytes (one ``bytes`` per CPU on per-CPU maps).

    Keys are raw bytes too, except on arrays, whose keys stay int indices (encode them with the view's key codec).
    """
    key = None if isinstance(m, ArrayMap) else BytesCodec(m.key_size)
    return Map.from_fd(m.fd, key=key, value=BytesCodec(m.value_size))


def raw_key(view: Map[Any, Any], key: Any) -> bytes:
    """The bytes of a key taken from :func:`raw_view`'s iteration."""
    return key if isinstance(key, bytes) else view.key_codec.encode(key)
