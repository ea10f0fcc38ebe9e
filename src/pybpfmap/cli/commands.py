"""One function per command (``cmd_<name>``), each given the parsed arguments."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from .._internal.mapspec import raw_key, raw_view
from .._internal.render import element_codec, formatted_all, hex_bytes, jsonable
from ..codec import Codec, as_codec
from ..enums import MapType, UpdateFlags
from ..errors import KeyNotFoundError
from ..histogram import Histogram
from ..keyless import QueueMap, StackMap
from ..map import Map
from ..stacktrace import StackTraceCodec
from ..watch import Sample, watch
from .elements import (
    CODEC_HELP,
    frozen,
    infos,
    open_one,
    opened,
    pinned_maps,
    resolve,
    show_json,
    take_element,
    type_names,
    value_for_view,
    view_key,
)
from .errors import CommandError, UsageError
from .live import Grid, frames_of, grid, plain, run_live
from .render import (
    decode_value,
    dump_json,
    entry_json,
    json_chunks,
    raw_entry_chunks,
    stack_text,
    table,
    text,
    to_json,
    write_json_array,
)

if TYPE_CHECKING:
    from ..symbols import Symbol


def cmd_list(args: argparse.Namespace) -> None:
    """``list``: every map on the system (or those of ``--type``, ``--name`` or ``--pinned``), as a table or
    bpftool's JSON."""
    if args.type is not None and args.type not in type_names():
        raise UsageError(f"--type {args.type!r} is not a map type: give one of {', '.join(type_names())}")
    pinned = pinned_maps(args.pinned) if args.pinned is not None else None
    shown = [js for _, js in infos(args.type, args.name, pinned)]
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
    headers = ["ID", "TYPE", "NAME", "KEY", "VALUE", "MAX_ENTRIES", "FLAGS", "MEMLOCK"]
    right = [True, False, False, True, True, True, False, True]
    if pinned is not None:
        headers.append("PINNED")
        right.append(False)
        for row, js in zip(rows, shown, strict=True):
            row.append(" ".join(js["pinned"]))
    print(table(headers, rows, right))


def _each(args: argparse.Namespace, key: str | None = None, value: str | None = None) -> Iterator[Map[Any, Any]]:
    """Every map MAP names (all the maps of a name, as bpftool takes them; the first with --first), opened one
    at a time and closed after use."""
    for spec in resolve((args.map_form, args.map_arg), first=args.first, several=True):
        with open_one(spec, key, value) as m:
            yield m


def cmd_show(args: argparse.Namespace) -> None:
    """``show MAP``: the information of the map MAP names (of each, for a name several maps share)."""
    shown = [show_json(m.info, m.fd) for m in _each(args)]
    if args.json:
        # bpftool prints one object for one map, and an array of them when a name matches several.
        dump_json(shown[0] if len(shown) == 1 else shown)
        return
    for i, one in enumerate(shown):
        if i:
            print()
        width = max(map(len, one)) + 2
        for name, value in one.items():
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


def _type_text(m: Map[Any, Any]) -> str:
    return m.type.name.lower() if isinstance(m.type, MapType) else str(m.type)


#: The map types whose values are read another way than by key, with what to type instead.
_OTHER_VERBS = {
    MapType.QUEUE: "it holds values without keys: use 'pybpfmap peek MAP', 'pop MAP' or 'push MAP VALUE'",
    MapType.STACK: "it holds values without keys: use 'pybpfmap peek MAP', 'pop MAP' or 'push MAP VALUE'",
    MapType.RINGBUF: "it carries a stream of records: read them with 'pybpfmap event_pipe MAP'",
    MapType.PERF_EVENT_ARRAY: "it carries a stream of records: read them with 'pybpfmap event_pipe MAP'",
    MapType.USER_RINGBUF: "user space only writes records into it, for a BPF program to read",
    MapType.BLOOM_FILTER: "a bloom filter only answers whether a value may have been added",
}


def _keyed(m: Map[Any, Any], command: str) -> None:
    """CommandError, saying what to type instead, when ``command`` cannot read or write ``m`` by key."""
    why = _OTHER_VERBS.get(m.type) if isinstance(m.type, MapType) else None
    if why is not None:
        raise CommandError(f"{_describe(m)} is a {_type_text(m)} map and has no entries to {command}: {why}")


def _dump_one(typed: Map[Any, Any], args: argparse.Namespace, header: bool) -> None:
    """One map's entries: a table with a count, or bpftool's JSON array (streamed, a chunk at a time)."""
    _keyed(typed, "dump")
    with raw_view(typed) as view:
        stacks = _check_symbols(typed, args)
        if args.json:
            if header:
                # bpftool's object for each of several maps: the map's header, then its entries.
                head = {"id": typed.id, "type": _type_text(typed)} | ({"name": typed.name} if typed.name else {})
                head["flags"] = int(typed.info.flags)
                sys.stdout.write(to_json(head)[:-1] + ',"elements":')
            write_json_array(_json_entries(typed, view, stacks, args), "]}" if header else "]\n")
            return
        if header:
            name = f"  name {typed.name}" if typed.name else ""
            print(f"{typed.id}: {_type_text(typed)}{name}  flags 0x{int(typed.info.flags):x}")
        key_codec = element_codec(typed.key_codec)
        rows = [[text(key_codec.decode(raw_key(view, k))), _value_text(typed, v, stacks, args)]
                for k, v in view.snapshot().items()]
    print(table(["KEY", "VALUE"], rows))
    print(f"Found {len(rows)} element{'s' if len(rows) != 1 else ''}")


def _json_entries(
    typed: Map[Any, Any], view: Map[Any, Any], stacks: bool, args: argparse.Namespace
) -> Iterator[list[str]]:
    """The entries of ``dump --json``, encoded a chunk at a time."""
    per_cpu = isinstance(typed.type, MapType) and typed.type.is_per_cpu
    holds_maps = isinstance(typed.type, MapType) and typed.type.holds_maps
    plain = not (per_cpu or holds_maps or stacks or typed.key_size == 0 or typed.value_size == 0)
    if plain:
        # Spelled straight from the batch read: the bytes with no object per entry, and the BTF-formatted
        # objects, where the map has them, unpacked a column at a time.
        keys, values, count = view.snapshot_bytes()
        if getattr(typed, "value_type", None) is None:
            return raw_entry_chunks(keys, values, count, typed.key_size, typed.value_size)
        pretty = formatted_all(typed, keys, values, count)
        if pretty is not None:
            return raw_entry_chunks(keys, values, count, typed.key_size, typed.value_size, pretty)
    entries = view.snapshot()
    return json_chunks(_entry_json(typed, raw_key(view, k), v, stacks, args) for k, v in entries.items())


def cmd_dump(args: argparse.Namespace) -> None:
    """``dump MAP``: every entry, decoded where the map's BTF or the codecs allow; stack traces in hex, or named
    with --symbols. A name several maps share dumps each, under a header, as bpftool does."""
    specs = resolve((args.map_form, args.map_arg), first=args.first, several=True)
    several = len(specs) > 1
    if several and args.json:
        sys.stdout.write("[")
    for i, spec in enumerate(specs):
        with open_one(spec, args.key, args.value) as typed:
            if several and i:
                sys.stdout.write("," if args.json else "\n")
            _dump_one(typed, args, several)
    if several and args.json:
        sys.stdout.write("]\n")


def cmd_get(args: argparse.Namespace) -> None:
    """``get MAP KEY``: one entry."""
    map_words, words = args.words[:2], args.words[2:]
    with opened(map_words, args.key, args.value, first=args.first) as typed, raw_view(typed) as view:
        _keyed(typed, "look up")
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
    with opened(map_words, args.key, args.value, first=args.first) as typed, raw_view(typed) as view:
        _keyed(typed, "set")
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
    with opened(map_words, args.key, args.value, first=args.first) as typed, raw_view(typed) as view:
        _keyed(typed, "delete")
        key, rest = take_element(words, typed.key_codec, typed.key_size, "key")
        if rest:
            raise CommandError(f"unexpected words after the key: {' '.join(rest)}")
        try:
            del view[view_key(view, key)]
        except KeyError:
            raise CommandError(f"key {' '.join(hex_bytes(key))} not found in {_describe(typed)}") from None


def cmd_pin(args: argparse.Namespace) -> None:
    """``pin MAP PATH``: pin the map on a BPF filesystem."""
    with opened((args.map_form, args.map_arg), first=args.first) as m:
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
    with opened((args.map_form, args.map_arg), args.key, args.value, first=args.first) as typed:
        _keyed(typed, "watch")

        def title(sample: Sample) -> str:
            stamp = time.strftime("%H:%M:%S", time.localtime(sample.time))
            return f"{_describe(typed)}  {stamp}  {len(sample.values)} entries"

        def body(sample: Sample) -> Grid | str:
            if not args.hist:
                return grid(sample, args)
            try:
                return str(Histogram.from_entries(sample.values, args.hist, args.step, args.shift))
            except TypeError:
                raise CommandError(
                    "--hist needs integer slots and counts: give --key and --value integer codecs of the "
                    "map's sizes (such as --key u32 --value u64)"
                ) from None

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
            with opened(args.maps[i : i + 2]) as m:
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


def _push_pop_map(words: Sequence[str], args: argparse.Namespace, command: str) -> Map[Any, Any]:
    """The queue or stack MAP (``words``) names, with the ``--value`` codec; CommandError for any other map."""
    (spec,) = resolve(words, first=args.first)
    m = open_one(spec, None, args.value)
    if m.type not in (MapType.QUEUE, MapType.STACK):
        m.close()
        how = "'pybpfmap get MAP KEY'" if command != "push" else "'pybpfmap set MAP KEY VALUE'"
        raise CommandError(f"{command} works on queue and stack maps; {_describe(m)} is a {_type_text(m)}: use {how}")
    return m


def _take(args: argparse.Namespace, command: str, remove: bool) -> None:
    """``peek`` and ``pop``: the value next in line, left in place or taken out."""
    with _push_pop_map((args.map_form, args.map_arg), args, command) as typed, raw_view(typed) as view:
        assert isinstance(view, (QueueMap, StackMap))  # checked by _push_pop_map
        try:
            found = view.pop() if remove else view.peek()
        except KeyNotFoundError:
            raise CommandError(f"{_describe(typed)} is empty") from None
        if args.json:
            dump_json(entry_json(typed, b"", found))
        else:
            print(text(decode_value(typed, found)))


def cmd_peek(args: argparse.Namespace) -> None:
    """``peek MAP``: the value a pop would take from a queue or stack, left in place."""
    _take(args, "peek", remove=False)


def cmd_pop(args: argparse.Namespace) -> None:
    """``pop MAP`` (also ``dequeue``): take the next value out of a queue or stack and print it."""
    _take(args, "pop", remove=True)


def cmd_push(args: argparse.Namespace) -> None:
    """``push MAP VALUE`` (also ``enqueue``): add a value to a queue or stack."""
    with _push_pop_map(args.words[:2], args, "push") as typed, raw_view(typed) as view:
        value, rest = take_element(args.words[2:], typed.value_codec, typed.value_size, "value")
        if rest:
            raise CommandError(f"unexpected words after the value: {' '.join(rest)}")
        assert isinstance(view, (QueueMap, StackMap))  # checked by _push_pop_map
        view.push(value, overwrite=args.overwrite)


def cmd_freeze(args: argparse.Namespace) -> None:
    """``freeze MAP``: make the map read-only for user space from now on (programs may still write it)."""
    with opened((args.map_form, args.map_arg), first=args.first) as m:
        # The kernel answers a second freeze with EPERM (a frozen map is no longer writable), which reads as a
        # privilege problem: say what it is.
        if frozen(m.fd):
            raise CommandError(f"{_describe(m)} is already frozen")
        m.freeze()


class _Stopped(Exception):
    """SIGTERM or Ctrl-C, or --count records shown: event_pipe ends quietly."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _record_codec(spec: str | None) -> Codec[Any] | None:
    if spec is None:
        return None
    try:
        return as_codec(spec, None, what="record")
    except (ValueError, TypeError):
        raise UsageError(f"--value {spec!r} does not decode records: give {CODEC_HELP.replace(', str', '')}") from None


def cmd_event_pipe(args: argparse.Namespace) -> None:
    """``event_pipe MAP`` (also ``tail``): print the records of a ring buffer or perf event array as they come,
    until Ctrl-C, SIGTERM or ``--count`` records. Records show decoded by ``--value``, else as hex bytes."""
    from ..perfbuf import PerfBuffer
    from ..ringbuf import RingBuffer

    codec = _record_codec(args.value)
    shown = 0

    def show(record: bytes) -> None:
        nonlocal shown
        decoded = codec.decode(record) if codec is not None and len(record) >= codec.size else None
        if args.json:
            line: dict[str, Any] = {"data": hex_bytes(record)}
            if decoded is not None:
                line["formatted"] = {"value": jsonable(decoded)}
            sys.stdout.write(to_json(line) + "\n")
        else:
            sys.stdout.write((text(record) if decoded is None else text(decoded)) + "\n")
        shown += 1
        if args.count is not None and shown >= args.count:
            raise _Stopped

    def lost(cpu: int, count: int) -> None:
        sys.stdout.write(to_json({"lost": {"cpu": cpu, "count": count}}) + "\n" if args.json
                         else f"lost {count} record{'s' if count != 1 else ''} on CPU {cpu}\n")

    with opened((args.map_form, args.map_arg), first=args.first) as m:
        consumer: RingBuffer | PerfBuffer
        if m.type == MapType.RINGBUF:
            consumer = RingBuffer(m, callback=show)
        elif m.type == MapType.PERF_EVENT_ARRAY:
            consumer = PerfBuffer(m, callback=show, lost=lost)
        else:
            raise CommandError(
                f"event_pipe reads ring buffers and perf event arrays; {_describe(m)} is a {_type_text(m)}: "
                "use 'pybpfmap dump MAP' or 'pybpfmap watch MAP'"
            )
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            with consumer:
                while args.count != 0:
                    consumer.poll(timeout=None)
                    sys.stdout.flush()
        except (_Stopped, KeyboardInterrupt):
            pass  # the operator's (or --count's) way to end it, not a failure
        finally:
            signal.signal(signal.SIGTERM, previous)
            sys.stdout.flush()
