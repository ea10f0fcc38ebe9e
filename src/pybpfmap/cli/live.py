"""``watch``'s table: the columns a sample gives (a value and its rate; a column and a rate per numeric member of a
struct; a column per CPU with ``--per-cpu``), the rows in the chosen order, and the full-screen view that fits the
terminal, drawn with rich (``pip install 'pybpfmap[watch]'``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .._internal.render import number
from ..percpu import PerCpuValues
from ..watch import Sample
from .render import table, text

__all__ = ["Grid", "grid", "plain", "run_live"]


@dataclass
class Grid:
    """A sample as a table: headers, which columns are numbers (aligned right, summed in the rest line), and
    the rows in display order, each with the numbers behind its cells (None where a cell is not a number)."""

    headers: list[str]
    numeric: list[bool]
    rows: list[tuple[list[str], list[float | None]]]

    def fitted(self, room: int) -> tuple[list[list[str]], list[str] | None]:
        """The rows that fit in ``room`` lines, and when some do not, the line that stands for them: how many,
        and the sum of each numeric column over them."""
        if len(self.rows) <= room:
            return [cells for cells, _ in self.rows], None
        shown = max(room - 1, 0)
        rest = self.rows[shown:]
        line = [f"... {len(rest)} more"]
        for column in range(1, len(self.headers)):
            if not self.numeric[column]:
                line.append("")
                continue
            amounts = [n for _, numbers in rest if (n := numbers[column]) is not None]
            line.append(_number_text(sum(amounts)) if amounts else "")
        return [cells for cells, _ in self.rows[:shown]], line


def _number_text(n: float | None) -> str:
    if n is None:
        return ""
    return f"{n:.1f}" if isinstance(n, float) else str(n)


def grid(sample: Sample, args: argparse.Namespace) -> Grid:
    """The table of one sample, sorted by ``args.sort`` (key, value or rate: largest first) and cut to
    ``args.top`` rows when given."""
    values = sample.values
    first = next(iter(values.values()), None)
    per_cpu = args.per_cpu and isinstance(first, PerCpuValues) and all(number(v) is not None for v in first)
    members = list(sample.fields[next(iter(sample.fields))]) if sample.fields else []
    if members:
        headers = ["KEY"] + [h for m in members for h in (m.upper(), f"{m.upper()}/s")]
    elif per_cpu:
        assert isinstance(first, PerCpuValues)
        headers = ["KEY"] + [f"CPU{cpu}" for cpu in range(len(first))] + ["SUM", "RATE/s"]
    else:
        headers = ["KEY", "VALUE", "RATE/s"]
    numeric = [False] + [True] * (len(headers) - 1)
    rows: list[tuple[Any, float | None, float | None, list[str], list[float | None]]] = []
    for key, value in values.items():
        numbers: list[float | None] = [None]
        if members:
            found, rates = sample.fields.get(key, {}), sample.field_rates.get(key, {})
            for m in members:
                numbers += [found.get(m), rates.get(m)]
            amount, rate = numbers[1], numbers[2]
        elif per_cpu and isinstance(value, PerCpuValues):
            amount, rate = number(value), sample.rates.get(key)
            numbers += [number(v) for v in value] + [amount, rate]
        else:
            amount, rate = number(value), sample.rates.get(key)
            numbers += [amount, rate]
        cells = [text(key)] + [_number_text(n) if numeric[i + 1] else "" for i, n in enumerate(numbers[1:])]
        if not members and not per_cpu:
            cells[1] = text(value)  # the value as it is (a struct without numbers, raw bytes, a string)
        rows.append((key, amount, rate, cells, numbers))
    _sort(rows, args.sort)
    if args.top:
        rows = rows[: args.top]
    return Grid(headers, numeric, [(cells, numbers) for _, _, _, cells, numbers in rows])


def _sort(rows: list[Any], by: str) -> None:
    def order(row: Any) -> Any:
        key, amount, rate = row[0], row[1], row[2]
        if by == "key":
            return (0, key) if isinstance(key, (int, float)) else (1, str(key))
        # Largest first; rates not known yet (the first sample) fall back to the values.
        chosen = rate if by == "rate" else None
        return (chosen is None, -(chosen or 0), amount is None, -(amount or 0))

    try:
        rows.sort(key=order)
    except TypeError:
        rows.sort(key=lambda row: str(row[0]))


def plain(title: str, g: Grid) -> str:
    """A sample for a pipe or a file: the title, then every row of the table."""
    return f"{title}\n{table(g.headers, [cells for cells, _ in g.rows], g.numeric)}\n"


def run_live(frames: Iterable[tuple[str, Grid | str]]) -> None:
    """Draw each frame full-screen in place (the terminal's alternate screen, restored at the end): the title
    and the table's header stay at the top, as many rows as the terminal has lines below them, and one line
    that sums the rows left out."""
    from rich.console import Console, Group
    from rich.live import Live
    from rich.table import Table
    from rich.text import Text

    console = Console()
    with Live(console=console, screen=True, auto_refresh=False, transient=True) as live:
        for title, body in frames:
            # The terminal's size now, asked of the terminal itself: rich (like shutil) prefers the LINES and
            # COLUMNS variables, which say what the shell saw when it started, not what the window is after a resize.
            width, height = os.get_terminal_size(sys.stdout.fileno())
            console.size = (width, height)
            if isinstance(body, str):  # a histogram, drawn as it is
                live.update(Group(Text(title, no_wrap=True), Text(body, no_wrap=True)), refresh=True)
                continue
            view = Table(box=None, show_edge=False, pad_edge=False, expand=False)
            for header, right in zip(body.headers, body.numeric, strict=True):
                view.add_column(header, justify="right" if right else "left", no_wrap=True, overflow="ellipsis")
            rows, rest = body.fitted(height - 2)  # below the title and the table's header
            for cells in rows:
                view.add_row(*cells)
            if rest is not None:
                view.add_row(*rest, style="dim")
            live.update(Group(Text(title, no_wrap=True, overflow="ellipsis"), view), refresh=True)


def frames_of(samples: Iterator[Sample], title: Any, body: Any) -> Iterator[tuple[str, Grid | str]]:
    """``(title(sample), body(sample))`` for each sample."""
    for sample in samples:
        yield title(sample), body(sample)
