"""The argument parser: every command, its options and its examples."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from .._internal import bindings as b
from .._internal.mapspec import MAP_FORMS
from .commands import (
    cmd_delete,
    cmd_dump,
    cmd_event_pipe,
    cmd_export,
    cmd_features,
    cmd_freeze,
    cmd_get,
    cmd_list,
    cmd_peek,
    cmd_pin,
    cmd_pop,
    cmd_push,
    cmd_set,
    cmd_show,
    cmd_watch,
)
from .elements import CODEC_HELP
from .errors import PROG


class _Parser(argparse.ArgumentParser):
    """The top-level parser: a usage error is one line on stderr, naming the help to read; exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` and where the usage is explained, on one line, and exit 2."""
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


class _CommandParser(_Parser):
    """A command's parser: options may come anywhere, before, between or after the positional words.

    Plain ``parse_known_args`` ends a ``nargs="+"`` positional at the first option and then refuses the words
    after it ("unrecognized arguments"), so ``get MAP --key u32 KEY`` failed; the intermixed parse takes the
    options out first and the positionals after. It calls ``parse_known_args`` itself, hence the flag.
    """

    _intermixed = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """Parse with options and positionals in any order (``parse_known_intermixed_args``)."""
        if self._intermixed:
            return super().parse_known_args(args, namespace)
        self._intermixed = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixed = False


def _version() -> str:
    from .. import __version__

    return f"pybpfmap {__version__} (libbpf {b.LIBBPF_VERSION})"


def _subparser(
    sub: Any, name: str, summary: str, example: str, aliases: tuple[str, ...] = ()
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=summary, epilog=f"example:\n  {example}", aliases=list(aliases),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _first_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--first", action="store_true",
                        help="with 'name NAME' matching several maps: only the one with the lowest id")


def _map_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("map_form", choices=MAP_FORMS, metavar="{id,pinned,name}", help="how the map is named")
    parser.add_argument("map_arg", metavar="ARG", help="the map's id, pinned path or name")
    _first_option(parser)


def _codec_options(parser: argparse.ArgumentParser, key: bool = True) -> None:
    if key:
        parser.add_argument("--key", metavar="CODEC", help=f"read and write keys as CODEC ({CODEC_HELP})")
    parser.add_argument("--value", metavar="CODEC", help=f"read and write values as CODEC ({CODEC_HELP})")


def _symbol_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", action="store_true",
                        help="stack trace maps: name each frame (kernel frames from /proc/kallsyms)")
    parser.add_argument("--pid", type=int, metavar="PID",
                        help="also name user frames, from the files process PID maps (implies --symbols)")


# A day: longer intervals overflow the timers underneath (inf did), and no one watches a map that slowly.
MAX_INTERVAL = 86400.0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pybpfmap`` command."""
    parser = _Parser(
        prog=PROG,
        description="Inspect, change, watch and export Linux BPF maps.",
        epilog="MAP is 'id N', 'pinned PATH' or 'name NAME'. Run 'pybpfmap COMMAND --help' for each command.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    sub.required = True

    p = _subparser(sub, "list", "list the maps on the system (all, or those the filters keep)",
                   "pybpfmap list --type hash --name 'tcp_*' --json")
    p.add_argument("--json", action="store_true", help="print bpftool's JSON (bpftool map list -j)")
    p.add_argument("--type", metavar="TYPE", help="only maps of this type, spelled as bpftool does (hash, "
                   "percpu_array, ringbuf, ...)")
    p.add_argument("--name", metavar="PATTERN", help="only maps whose name matches PATTERN (shell wildcards * ? [])")
    p.add_argument("--pinned", metavar="DIR", help="only maps pinned under DIR, with their paths (as bpftool -f)")
    p.set_defaults(run=cmd_list)

    p = _subparser(sub, "show", "show a map's properties (each map's, for a name several share)",
                   "pybpfmap show pinned /sys/fs/bpf/counts --json")
    _map_argument(p)
    p.add_argument("--json", action="store_true", help="print bpftool's JSON (bpftool map show -j)")
    p.set_defaults(run=cmd_show)

    p = _subparser(sub, "dump", "print every entry of a map (of each map, for a name several share)",
                   "pybpfmap dump id 42 --key u32 --value u64")
    _map_argument(p)
    _codec_options(p)
    _symbol_options(p)
    p.add_argument("--json", action="store_true", help="print bpftool's JSON (bpftool map dump -j)")
    p.set_defaults(run=cmd_dump)

    words_help = ("MAP (two words) then KEY (hex BYTE..., BYTE..., or one JSON word; JSON bytes as dump --json "
                  "prints them, '[\"0x01\",\"0x00\"]')")
    p = _subparser(sub, "get", "look up one key", "pybpfmap get name counts hex 01 00 00 00")
    p.add_argument("words", nargs="+", metavar="MAP KEY", help=words_help)
    _first_option(p)
    _codec_options(p)
    _symbol_options(p)
    p.add_argument("--json", action="store_true", help="print bpftool's JSON (bpftool map lookup -j)")
    p.set_defaults(run=cmd_get)

    p = _subparser(sub, "set", "create or replace one entry (flags: any, noexist, exist)",
                   "pybpfmap set pinned /sys/fs/bpf/counts 7 42 --key u32 --value u64")
    p.add_argument("words", nargs="+", metavar="MAP KEY VALUE", help=words_help + ", then VALUE the same way, "
                   "then optionally any | noexist | exist")
    _first_option(p)
    _codec_options(p)
    p.set_defaults(run=cmd_set)

    p = _subparser(sub, "delete", "delete one key", "pybpfmap delete id 42 hex 07 00 00 00")
    p.add_argument("words", nargs="+", metavar="MAP KEY", help=words_help)
    _first_option(p)
    _codec_options(p)
    p.set_defaults(run=cmd_delete)

    p = _subparser(sub, "peek", "show the value a pop would take from a queue or stack, leaving it there",
                   "pybpfmap peek pinned /sys/fs/bpf/jobs --value u32")
    _map_argument(p)
    _codec_options(p, key=False)
    p.add_argument("--json", action="store_true", help="print bpftool's JSON (bpftool map peek -j)")
    p.set_defaults(run=cmd_peek)

    p = _subparser(sub, "push", "add a value to a queue or stack", "pybpfmap push name jobs 42 --value u32",
                   aliases=("enqueue",))
    p.add_argument("words", nargs="+", metavar="MAP VALUE", help="MAP (two words) then VALUE, as set takes it")
    _first_option(p)
    _codec_options(p, key=False)
    p.add_argument("--overwrite", action="store_true", help="on a full map, drop the oldest value to make room")
    p.set_defaults(run=cmd_push)

    p = _subparser(sub, "pop", "take the next value out of a queue or stack and print it",
                   "pybpfmap pop name jobs --value u32", aliases=("dequeue",))
    _map_argument(p)
    _codec_options(p, key=False)
    p.add_argument("--json", action="store_true", help="print bpftool's JSON (bpftool map pop -j)")
    p.set_defaults(run=cmd_pop)

    p = _subparser(sub, "freeze", "make a map read-only for user space (programs may still write it)",
                   "pybpfmap freeze pinned /sys/fs/bpf/config")
    _map_argument(p)
    p.set_defaults(run=cmd_freeze)

    p = _subparser(sub, "event_pipe", "print the records of a ring buffer or perf event array as they arrive",
                   "pybpfmap event_pipe name events --value QI --json", aliases=("tail",))
    _map_argument(p)
    p.add_argument("--value", metavar="CODEC", help="decode each record's first bytes as CODEC (u32, u64, a "
                   "struct format); records show as hex bytes without it")
    p.add_argument("--json", action="store_true", help="one JSON object per line: {\"data\": [\"0x..\", ...]}")
    p.add_argument("--count", type=int, default=None, metavar="N", help="stop after N records")
    p.set_defaults(run=cmd_event_pipe)

    p = _subparser(sub, "pin", "pin a map on a bpf filesystem", "pybpfmap pin id 42 /sys/fs/bpf/counts")
    _map_argument(p)
    p.add_argument("path", help="where to pin it (on a bpf filesystem)")
    p.set_defaults(run=cmd_pin)

    p = _subparser(sub, "watch", "a live table of values and per-second rates (or a histogram)",
                   "pybpfmap watch name counts --interval 2 --top 10 --sort rate")
    _map_argument(p)
    _codec_options(p)
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between reads (default 1)")
    p.add_argument("--top", type=int, default=0, metavar="N",
                   help="show only the first N rows (on a terminal, as many as fit; the rest summed in one line)")
    p.add_argument("--sort", choices=["key", "value", "rate"], default="key", help="row order (default key)")
    p.add_argument("--count", type=int, default=None, metavar="K", help="stop after K tables")
    p.add_argument("--hist", choices=["log2", "linear"], help="draw the map as a histogram (slot -> count)")
    p.add_argument("--step", type=int, default=1, help="--hist linear: the width of a slot")
    p.add_argument("--shift", type=int, default=0, help="--hist log2: 1 for maps filled by bcc's bpf_log2l()")
    p.add_argument("--per-cpu", action="store_true", help="a column per CPU rather than their sums")
    p.add_argument("--plain", action="store_true",
                   help="a table per sample, one after the other (the default when not on a terminal)")
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
