"""One function per command (``cmd_<name>``), each given the parsed arguments."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from .._internal.mapspec import open_map, parse_map_spec, raw_key, raw_view
from .._internal.render import element_codec, hex_bytes
from ..enums import UpdateFlags
from ..histogram import Histogram
from ..map import Map
from ..stacktrace import StackTraceCodec
from ..watch import Sample, watch
from .elements import infos, opened, show_json, take_element, value_for_view, view_key
from .errors import CommandError, UsageError
from .live import Grid, frames_of, grid, plain, run_live
from .render import decode_value, dump_json, entry_json, stack_text, table, text

if TYPE_CHECKING:
    from ..symbols import Symbol


def cmd_list(args: argparse.Namespace) -> None:
    """``list``: every map on the system, as a table or bpftool's JSON."""
    shown = [js for _, js in infos()]
    if args.json:
        dump_json(shown)
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
    print(table(["ID", "TYPE", "NAME", "KEY", "VALUE", "MAX_ENTRIES", "FLAGS", "MEMLOCK"], rows,
                 [True, False, False, True, True, True, False, True]))


def cmd_show(args: argparse.Namespace) -> None:
    """``show MAP``: one map's information."""
    with opened((args.map_form, args.map_arg)) as m:
        shown = show_json(m.info, m.fd)
    if args.json:
        dump_json(shown)
        return
    width = max(map(len, shown)) + 2
    for name, value in shown.items():
        print(f"{name + ':':<{width}}{value}")


def _check_symbols(typed: Map[Any, Any], args: argparse.Namespace) -> bool:
    """Whether values are stack traces to show as addresses; UsageError when --symbols asks to name frames of
    anything else."""
    stacks = isinstance(element_codec(typed.value_codec), StackTraceCodec)
    if (args.symbols or args.pid is not None) and not stacks:
        raise UsageError(f"--symbols and --pid name the frames of stack trace maps; {_describe(typed)} holds none")
    return stacks


def _frames(decoded: tuple[int, ...], args: argparse.Namespace) -> list[Symbol] | None:
    """The named frames of one stack when --symbols (or --pid) asks for them, else None."""
    if not (args.symbols or args.pid is not None):
        return None
    from ..symbols import symbolize

    return symbolize(decoded, args.pid)


def _value_text(typed: Map[Any, Any], raw_value: Any, stacks: bool, args: argparse.Namespace) -> str:
    decoded = decode_value(typed, raw_value)
    return stack_text(decoded, _frames(decoded, args)) if stacks else text(decoded)


def _entry_json(typed: Map[Any, Any], key: bytes, raw_value: Any, stacks: bool, args: argparse.Namespace) -> Any:
    entry = entry_json(typed, key, raw_value)
    frames = _frames(decode_value(typed, raw_value), args) if stacks else None
    if frames is not None:
        entry["symbols"] = [str(frame) for frame in frames]
    return entry


def cmd_dump(args: argparse.Namespace) -> None:
    """``dump MAP``: every entry, decoded where the map's BTF or the codecs allow; stack traces in hex, or named
    with --symbols."""
    with opened((args.map_form, args.map_arg), args.key, args.value) as typed, raw_view(typed) as view:
        stacks = _check_symbols(typed, args)
        entries = view.snapshot()
        if args.json:
            dump_json([_entry_json(typed, raw_key(view, k), v, stacks, args) for k, v in entries.items()])
            return
        key_codec = element_codec(typed.key_codec)
        rows = [[text(key_codec.decode(raw_key(view, k))), _value_text(typed, v, stacks, args)]
                for k, v in entries.items()]
    print(table(["KEY", "VALUE"], rows))
    print(f"Found {len(rows)} element{'s' if len(rows) != 1 else ''}")


def cmd_get(args: argparse.Namespace) -> None:
    """``get MAP KEY``: one entry."""
    map_words, words = args.words[:2], args.words[2:]
    with opened(map_words, args.key, args.value) as typed, raw_view(typed) as view:
        stacks = _check_symbols(typed, args)
        key, rest = take_element(words, typed.key_codec, typed.key_size, "key")
        if rest:
            raise CommandError(f"unexpected words after the key: {' '.join(rest)}")
        found = view.get(view_key(view, key))
        if found is None:
            raise CommandError(f"key {' '.join(hex_bytes(key))} not found in {_describe(typed)}")
        if args.json:
            dump_json(_entry_json(typed, key, found, stacks, args))
        else:
            print(_value_text(typed, found, stacks, args))


def cmd_features(args: argparse.Namespace) -> None:
    """``features``: what the running kernel can do, from the named probes."""
    from .. import features

    if args.table:
        print(features.table())
    elif args.json:
        dump_json({"kernel": os.uname().release, "features": features.report()})
    else:
        print(features.report_text(features.report()))


def _describe(m: Map[Any, Any]) -> str:
    return f"map {m.name!r} (id {m.id})" if m.name else f"map id {m.id}"


_FLAGS = {"any": UpdateFlags.ANY, "noexist": UpdateFlags.NOEXIST, "exist": UpdateFlags.EXIST}


def cmd_set(args: argparse.Namespace) -> None:
    """``set MAP KEY VALUE``: create or replace one entry (a last word any, noexist or exist, as in bpftool)."""
    map_words, words = args.words[:2], args.words[2:]
    with opened(map_words, args.key, args.value) as typed, raw_view(typed) as view:
        key, rest = take_element(words, typed.key_codec, typed.key_size, "key")
        value, rest = take_element(rest, typed.value_codec, typed.value_size, "value")
        flags = UpdateFlags.ANY
        if rest and rest[0] in _FLAGS and len(rest) == 1:
            flags, rest = _FLAGS[rest[0]], []
        if rest:
            raise CommandError(f"unexpected words after the value: {' '.join(rest)}")
        view.set(view_key(view, key), value_for_view(view, value), flags)


def cmd_delete(args: argparse.Namespace) -> None:
    """``delete MAP KEY``: remove one entry."""
    map_words, words = args.words[:2], args.words[2:]
    with opened(map_words, args.key, args.value) as typed, raw_view(typed) as view:
        key, rest = take_element(words, typed.key_codec, typed.key_size, "key")
        if rest:
            raise CommandError(f"unexpected words after the key: {' '.join(rest)}")
        try:
            del view[view_key(view, key)]
        except KeyError:
            raise CommandError(f"key {' '.join(hex_bytes(key))} not found in {_describe(typed)}") from None


def cmd_pin(args: argparse.Namespace) -> None:
    """``pin MAP PATH``: pin the map on a BPF filesystem."""
    with opened((args.map_form, args.map_arg)) as m:
        m.pin(args.path)


def cmd_watch(args: argparse.Namespace) -> None:
    """``watch MAP``: a live view of the map's entries and their rates: full-screen on a terminal (with rich), a
    table per sample on a pipe or with ``--plain``."""
    live = sys.stdout.isatty() and not args.plain
    if live:
        try:
            import rich  # noqa: F401  (the full-screen view's terminal library, an optional extra)
        except ImportError:
            raise CommandError(
                "the full-screen view needs rich: pip install 'pybpfmap[watch]', or use --plain"
            ) from None
    with opened((args.map_form, args.map_arg), args.key, args.value) as typed:

        def title(sample: Sample) -> str:
            stamp = time.strftime("%H:%M:%S", time.localtime(sample.time))
            return f"{_describe(typed)}  {stamp}  {len(sample.values)} entries"

        def body(sample: Sample) -> Grid | str:
            if args.hist:
                return str(Histogram.from_entries(sample.values, args.hist, args.step, args.shift))
            return grid(sample, args)

        frames = frames_of(watch(typed, args.interval, args.count, per_cpu=args.per_cpu), title, body)
        if live:
            run_live(frames)
            return
        for heading, drawn in frames:
            sys.stdout.write(plain(heading, drawn) if isinstance(drawn, Grid) else f"{heading}\n{drawn}\n")
            sys.stdout.write("\n")
            sys.stdout.flush()


def cmd_export(args: argparse.Namespace) -> None:
    """``export``: serve maps (or an export config) to Prometheus."""
    from ..export.prometheus import serve

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
