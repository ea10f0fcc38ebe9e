"""The ``pybpfmap`` command (also ``python -m pybpfmap``): bpftool's map commands, plus watch and export.

MAP is ``id N``, ``pinned PATH`` or ``name NAME``. KEY and VALUE are bytes, as bpftool takes them (``hex 01 00
00 00``, or byte numbers ``1 0 0 0`` in decimal, 0x-hex or 0-octal), or one JSON word in the shape of the
decoded value (``42``, ``'{"packets": 1, "bytes": 2}'``, ``'[1, 2]'``), encoded by the map's BTF or the
``--key`` / ``--value`` codecs (``u32``, ``u64``, a struct format such as ``QQ``); on a map without either, a
JSON integer fills a key or value of 1, 2, 4 or 8 bytes in host byte order. ``key`` and ``value`` may precede
them, as in bpftool.

``--json`` output of list, show, dump and get has the shape of ``bpftool -j``. Expected failures print one line
on stderr and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from . import _bindings as b
from ._mapspec import MAP_FORMS, open_map, parse_map_spec, raw_key, raw_view
from ._render import element_codec, formatted, hex_bytes, jsonable, number
from .codec import BytesCodec, Codec
from .enums import MapType, UpdateFlags
from .errors import BPFError
from .export import ConfigError
from .histogram import Histogram
from .info import MapInfo, maps
from .map import Map
from .percpu import PerCpuCodec, PerCpuValues
from .watch import watch

__all__ = ["main"]

PROG = "pybpfmap"


class CommandError(Exception):
    """An expected failure: printed as one line on stderr, exit status 1."""


class UsageError(CommandError):
    """A command line that cannot mean anything (a missing KEY): exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


# -- maps and elements ----------------------------------------------------------------------------------------


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


def _show_json(info: MapInfo, fd: int | None) -> dict[str, Any]:
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


def _infos() -> Iterator[tuple[MapInfo, dict[str, Any]]]:
    for info in maps():
        try:
            fd = b.map_fd_by_id(info.id)
        except BPFError:  # gone since it was listed
            continue
        try:
            yield info, _show_json(info, fd)
        finally:
            os.close(fd)


@contextmanager
def _opened(words: Sequence[str], key: str | None = None, value: str | None = None) -> Iterator[Map[Any, Any]]:
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


def _take_element(words: list[str], codec: Codec[Any], size: int, what: str) -> tuple[bytes, list[str]]:
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


def _value_for_view(view: Map[Any, Any], data: bytes) -> Any:
    """Bytes of a value as the raw view takes them: per-CPU buffers split into one slot per CPU."""
    codec = view.value_codec
    if isinstance(codec, PerCpuCodec) and len(data) == codec.size:
        return [data[i * codec.stride : i * codec.stride + codec.element.size] for i in range(codec.ncpus)]
    return data


def _view_key(view: Map[Any, Any], data: bytes) -> Any:
    return data if isinstance(view.key_codec, BytesCodec) else view.key_codec.decode(data)


# -- rendering ------------------------------------------------------------------------------------------------


def _decode_value(typed: Map[Any, Any], raw_value: Any) -> Any:
    codec = element_codec(typed.value_codec)
    if isinstance(raw_value, PerCpuValues):
        return PerCpuValues(codec.decode(slot) for slot in raw_value)
    return codec.decode(raw_value)


def _entry_json(typed: Map[Any, Any], key: bytes, raw_value: Any) -> dict[str, Any]:
    """One entry as ``bpftool map dump -j`` prints it."""
    entry: dict[str, Any] = {"key": hex_bytes(key)}
    if isinstance(raw_value, PerCpuValues):
        entry["values"] = [{"cpu": cpu, "value": hex_bytes(slot)} for cpu, slot in enumerate(raw_value)]
    else:
        entry["value"] = hex_bytes(raw_value)
        if typed.type in (MapType.HASH_OF_MAPS, MapType.ARRAY_OF_MAPS) and len(raw_value) == 4:
            entry["inner_map_id"] = int.from_bytes(raw_value, sys.byteorder)
    pretty = formatted(typed, key, raw_value)
    if pretty is not None:
        entry["formatted"] = pretty
    return entry


def _text(obj: Any) -> str:
    """A decoded key or value for a table: bytes in bpftool's hex, numbers as they are, structs as JSON."""
    if isinstance(obj, (bytes, bytearray)):
        return " ".join(f"{byte:02x}" for byte in obj)
    if isinstance(obj, PerCpuValues):
        parts = [_text(v) for v in obj]
        total = obj.sum() if all(isinstance(v, int) for v in obj) else None
        return f"{total}  (per CPU: {', '.join(parts)})" if total is not None else "[" + ", ".join(parts) + "]"
    if isinstance(obj, float):
        return f"{obj:.6g}"
    data = jsonable(obj)
    return data if isinstance(data, str) else json.dumps(data, separators=(", ", ": "))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    aligned = right or [False] * len(headers)

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(w) if a else c.ljust(w) for c, w, a in zip(cells, widths, aligned, strict=True)]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def _dump_json(data: Any) -> None:
    json.dump(data, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


# -- commands -------------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> None:
    shown = [js for _, js in _infos()]
    if args.json:
        _dump_json(shown)
        return
    rows = [
        [
            str(js["id"]),
            str(js["type"]),
            js.get("name", ""),
            str(js["bytes_key"]),
            str(js["bytes_value"]),
            str(js["max_entries"]),
            f"0x{js['flags']:x}",
            str(js.get("bytes_memlock", "")),
        ]
        for js in shown
    ]
    print(_table(["ID", "TYPE", "NAME", "KEY", "VALUE", "MAX_ENTRIES", "FLAGS", "MEMLOCK"], rows,
                 [True, False, False, True, True, True, False, True]))


def cmd_show(args: argparse.Namespace) -> None:
    with _opened((args.map_form, args.map_arg)) as m:
        shown = _show_json(m.info, m.fd)
    if args.json:
        _dump_json(shown)
        return
    width = max(map(len, shown)) + 2
    for name, value in shown.items():
        print(f"{name + ':':<{width}}{value}")


def cmd_dump(args: argparse.Namespace) -> None:
    with _opened((args.map_form, args.map_arg), args.key, args.value) as typed, raw_view(typed) as view:
        entries = view.snapshot()
        if args.json:
            _dump_json([_entry_json(typed, raw_key(view, k), v) for k, v in entries.items()])
            return
        key_codec = element_codec(typed.key_codec)
        rows = [[_text(key_codec.decode(raw_key(view, k))), _text(_decode_value(typed, v))] for k, v in entries.items()]
    print(_table(["KEY", "VALUE"], rows))
    print(f"Found {len(rows)} element{'s' if len(rows) != 1 else ''}")


def cmd_get(args: argparse.Namespace) -> None:
    map_words, words = args.words[:2], args.words[2:]
    with _opened(map_words, args.key, args.value) as typed, raw_view(typed) as view:
        key, rest = _take_element(words, typed.key_codec, typed.key_size, "key")
        if rest:
            raise CommandError(f"unexpected words after the key: {' '.join(rest)}")
        found = view.get(_view_key(view, key))
        if found is None:
            raise CommandError(f"key {' '.join(hex_bytes(key))} not found in {_describe(typed)}")
        if args.json:
            _dump_json(_entry_json(typed, key, found))
        else:
            print(_text(_decode_value(typed, found)))


def cmd_features(args: argparse.Namespace) -> None:
    from . import features

    if args.table:
        print(features.table())
    elif args.json:
        _dump_json({"kernel": os.uname().release, "features": features.report()})
    else:
        print(features.report_text(features.report()))


def _describe(m: Map[Any, Any]) -> str:
    return f"map {m.name!r} (id {m.id})" if m.name else f"map id {m.id}"


_FLAGS = {"any": UpdateFlags.ANY, "noexist": UpdateFlags.NOEXIST, "exist": UpdateFlags.EXIST}


def cmd_set(args: argparse.Namespace) -> None:
    map_words, words = args.words[:2], args.words[2:]
    with _opened(map_words, args.key, args.value) as typed, raw_view(typed) as view:
        key, rest = _take_element(words, typed.key_codec, typed.key_size, "key")
        value, rest = _take_element(rest, typed.value_codec, typed.value_size, "value")
        flags = UpdateFlags.ANY
        if rest and rest[0] in _FLAGS and len(rest) == 1:
            flags, rest = _FLAGS[rest[0]], []
        if rest:
            raise CommandError(f"unexpected words after the value: {' '.join(rest)}")
        view.set(_view_key(view, key), _value_for_view(view, value), flags)


def cmd_delete(args: argparse.Namespace) -> None:
    map_words, words = args.words[:2], args.words[2:]
    with _opened(map_words, args.key, args.value) as typed, raw_view(typed) as view:
        key, rest = _take_element(words, typed.key_codec, typed.key_size, "key")
        if rest:
            raise CommandError(f"unexpected words after the key: {' '.join(rest)}")
        try:
            del view[_view_key(view, key)]
        except KeyError:
            raise CommandError(f"key {' '.join(hex_bytes(key))} not found in {_describe(typed)}") from None


def cmd_pin(args: argparse.Namespace) -> None:
    with _opened((args.map_form, args.map_arg)) as m:
        m.pin(args.path)


def _watch_rows(
    sample_values: dict[Any, Any], rates: dict[Any, float | None], args: argparse.Namespace
) -> list[list[str]]:
    items = list(sample_values.items())

    def sort_key(item: tuple[Any, Any]) -> Any:
        key, value = item
        if args.sort == "key":
            return (0, key) if isinstance(key, (int, float)) else (1, str(key))
        # Largest first; rates not known yet (the first table) fall back to the values.
        amount = number(value)
        rate = rates.get(key) if args.sort == "rate" else None
        return (rate is None, -(rate or 0), amount is None, -(amount or 0))

    try:
        items.sort(key=sort_key)
    except TypeError:
        items.sort(key=lambda item: str(item[0]))
    if args.top:
        items = items[: args.top]
    rows = []
    for key, value in items:
        rate = rates.get(key)
        rows.append([_text(key), _text(value), "" if rate is None else f"{rate:.1f}"])
    return rows


def cmd_watch(args: argparse.Namespace) -> None:
    with _opened((args.map_form, args.map_arg), args.key, args.value) as typed:
        tty = sys.stdout.isatty()
        for sample in watch(typed, args.interval, args.count, per_cpu=args.per_cpu):
            stamp = time.strftime("%H:%M:%S", time.localtime(sample.time))
            title = f"{_describe(typed)}  {stamp}  {len(sample.values)} entries"
            if args.hist:
                body = str(Histogram.from_entries(sample.values, args.hist, args.step, args.shift))
            else:
                body = _table(["KEY", "VALUE", "RATE/s"], _watch_rows(sample.values, sample.rates, args),
                              [False, True, True])
            if tty:
                sys.stdout.write("\x1b[H\x1b[2J")  # home and clear: the table is redrawn in place
            sys.stdout.write(f"{title}\n{body}\n")
            if not tty:
                sys.stdout.write("\n")
            sys.stdout.flush()


def cmd_export(args: argparse.Namespace) -> None:
    from .export.prometheus import serve

    host, _, port_text = args.listen.rpartition(":")
    if not port_text.isdigit() or int(port_text) > 65535:  # 0: any free port
        raise UsageError(f"--listen takes HOST:PORT with a port from 0 to 65535, got {args.listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    if args.config and args.maps:
        raise CommandError("give --config FILE or MAP..., not both")
    config: Any = args.config
    if not config:
        if not args.maps or len(args.maps) % 2:
            raise CommandError("give --config FILE, or maps as 'id N' / 'pinned PATH' / 'name NAME' pairs")
        counters = []
        for i in range(0, len(args.maps), 2):
            spec = f"{args.maps[i]} {args.maps[i + 1]}"
            parse_map_spec(spec)
            with open_map(spec) as m:
                name = "".join(c if c.isalnum() else "_" for c in (m.name or f"map_{m.id}"))
                decoder = "uint" if m.key_size in (1, 2, 4, 8) else "hex"
                counters.append({
                    "name": f"bpf_map_{name}",
                    "help": f"Values of {spec}",
                    "map": spec,
                    "labels": [{"name": "key", "size": m.key_size, "decoders": [{"name": decoder}]}],
                })
        config = {"metrics": {"gauges": counters}}
    server = serve(config, host, int(port_text), block=False)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving on http://{shown}:{server.server_port}/metrics", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


# -- the parser ------------------------------------------------------------------------------------------------


def _version() -> str:
    from . import __version__

    return f"pybpfmap {__version__} (libbpf {b.LIBBPF_VERSION})"


def _subparser(sub: Any, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=summary, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _map_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("map_form", choices=MAP_FORMS, metavar="{id,pinned,name}", help="how the map is named")
    parser.add_argument("map_arg", metavar="ARG", help="the map's id, pinned path or name")


def _codec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", metavar="CODEC", help="decode keys as CODEC (u32, u64, i32, a struct format)")
    parser.add_argument("--value", metavar="CODEC", help="decode values as CODEC (u32, u64, a struct format)")


# A day: longer intervals overflow the timers underneath (inf did), and no one watches a map that slowly.
_MAX_INTERVAL = 86400.0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pybpfmap`` command."""
    parser = _Parser(
        prog=PROG,
        description="Inspect, change, watch and export Linux BPF maps.",
        epilog="MAP is 'id N', 'pinned PATH' or 'name NAME'. Run 'pybpfmap COMMAND --help' for each command.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = _subparser(sub, "list", "list every map on the system", "pybpfmap list --json")
    p.add_argument("--json", action="store_true", help="print bpftool's JSON (bpftool map list -j)")
    p.set_defaults(run=cmd_list)

    p = _subparser(sub, "show", "show one map's properties", "pybpfmap show pinned /sys/fs/bpf/counts --json")
    _map_argument(p)
    p.add_argument("--json", action="store_true", help="print bpftool's JSON (bpftool map show -j)")
    p.set_defaults(run=cmd_show)

    p = _subparser(sub, "dump", "print every entry of a map", "pybpfmap dump id 42 --key u32 --value u64")
    _map_argument(p)
    _codec_options(p)
    p.add_argument("--json", action="store_true", help="print bpftool's JSON (bpftool map dump -j)")
    p.set_defaults(run=cmd_dump)

    words_help = "MAP (two words) then KEY (hex BYTE..., BYTE..., or one JSON word)"
    p = _subparser(sub, "get", "look up one key", "pybpfmap get name counts hex 01 00 00 00")
    p.add_argument("words", nargs="+", metavar="MAP KEY", help=words_help)
    _codec_options(p)
    p.add_argument("--json", action="store_true", help="print bpftool's JSON (bpftool map lookup -j)")
    p.set_defaults(run=cmd_get)

    p = _subparser(sub, "set", "create or replace one entry (flags: any, noexist, exist)",
                   "pybpfmap set pinned /sys/fs/bpf/counts 7 42 --key u32 --value u64")
    p.add_argument("words", nargs="+", metavar="MAP KEY VALUE", help=words_help + ", then VALUE the same way, "
                   "then optionally any | noexist | exist")
    _codec_options(p)
    p.set_defaults(run=cmd_set)

    p = _subparser(sub, "delete", "delete one key", "pybpfmap delete id 42 hex 07 00 00 00")
    p.add_argument("words", nargs="+", metavar="MAP KEY", help=words_help)
    _codec_options(p)
    p.set_defaults(run=cmd_delete)

    p = _subparser(sub, "pin", "pin a map on a bpf filesystem", "pybpfmap pin id 42 /sys/fs/bpf/counts")
    _map_argument(p)
    p.add_argument("path", help="where to pin it (on a bpf filesystem)")
    p.set_defaults(run=cmd_pin)

    p = _subparser(sub, "watch", "a live table of values and per-second rates (or a histogram)",
                   "pybpfmap watch name counts --interval 2 --top 10 --sort rate")
    _map_argument(p)
    _codec_options(p)
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between reads (default 1)")
    p.add_argument("--top", type=int, default=0, metavar="N", help="show only the first N rows")
    p.add_argument("--sort", choices=["key", "value", "rate"], default="key", help="row order (default key)")
    p.add_argument("--count", type=int, default=None, metavar="K", help="stop after K tables")
    p.add_argument("--hist", choices=["log2", "linear"], help="draw the map as a histogram (slot -> count)")
    p.add_argument("--step", type=int, default=1, help="--hist linear: the width of a slot")
    p.add_argument("--shift", type=int, default=0, help="--hist log2: 1 for maps filled by bcc's bpf_log2l()")
    p.add_argument("--per-cpu", action="store_true", help="show per-CPU values rather than their sums")
    p.set_defaults(run=cmd_watch)

    p = _subparser(sub, "features", "probe what the running kernel offers (like bpftool feature probe)",
                   "pybpfmap features --json")
    p.add_argument("--json", action="store_true", help="print the probes' answers as JSON")
    p.add_argument("--table", action="store_true", help="print which release has each feature (Markdown), no probing")
    p.set_defaults(run=cmd_features)

    p = _subparser(sub, "export", "serve maps as Prometheus metrics",
                   "pybpfmap export --listen 127.0.0.1:9435 --config examples/packet_monitor.toml")
    p.add_argument("--listen", default="127.0.0.1:9435", metavar="HOST:PORT", help="where to serve /metrics")
    p.add_argument("--config", metavar="FILE", help="the export config (TOML)")
    p.add_argument("maps", nargs="*", metavar="MAP", help="without --config: maps to serve as gauges by key")
    p.set_defaults(run=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0, 1 for expected failures, 2 for usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for option in ("interval", "top", "count"):
        value = getattr(args, option, None)
        if value is not None and (value < 0 or (option == "interval" and value <= 0)):
            parser.error(f"--{option} must be positive")
    interval = getattr(args, "interval", None)
    if interval is not None and not (math.isfinite(interval) and interval <= _MAX_INTERVAL):
        parser.error(f"--interval takes seconds from 0 to {_MAX_INTERVAL:g}, got {interval!r}")
    if getattr(args, "words", None) is not None and len(args.words) < 2:
        parser.error("MAP is two words: id N, pinned PATH or name NAME")
    if getattr(args, "words", None) is not None and args.words[0] not in MAP_FORMS:
        parser.error(f"MAP starts with id, pinned or name, got {args.words[0]!r}")
    try:
        args.run(args)
    except (CommandError, BPFError, ConfigError, OSError, LookupError, ValueError, TypeError) as exc:
        if isinstance(exc, BPFError) or not isinstance(exc, KeyError) or not exc.args:
            message = str(exc)
        else:
            message = str(exc.args[0])
        if isinstance(exc, OSError) and not isinstance(exc, BPFError) and exc.strerror:
            message = f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror}"
        print(f"{PROG} {args.command}: {' '.join(message.split())}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    return 0
