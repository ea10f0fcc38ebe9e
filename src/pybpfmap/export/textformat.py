"""Sample lines of the Prometheus text format written in C straight from a raw batch read (``exposition.c``).

A scrape of a large map spends more on turning entries into text than on reading them: per series, Python
builds a label text and formats a number. When every label is an integer or hex field of the key, C can write
the lines from the key and value buffers as the kernel filled them, with no Python object per entry. This module
only lays out the texts and offsets for C; which metrics qualify is :mod:`pybpfmap.export`'s business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._internal import bindings as b  # exposition.c's writer is called per scrape from here, a hot path

__all__ = ["FORMATS", "SampleLabel", "SampleWriter"]

#: Label formats C writes, by the name of the one decoder that gives the same text.
FORMATS = {"uint": b.lib.PBM_LABEL_UINT, "int": b.lib.PBM_LABEL_INT, "hex": b.lib.PBM_LABEL_HEX}


@dataclass(frozen=True)
class SampleLabel:
    """A label written from the key: ``size`` bytes at ``offset`` in the ``format`` of a :data:`FORMATS` name."""

    name: str
    offset: int
    size: int
    format: str


class SampleWriter:
    """Writes the sample lines of one metric (``name{label="...",...} value``, one per entry, or per entry and
    CPU with ``split_cpu``) for raw keys and values laid out as a batch read returns them."""

    def __init__(
        self,
        name: str,
        labels: Sequence[SampleLabel],
        key_size: int,
        value_size: int,
        value: tuple[int, int, bool],
        ncpus: int = 0,
        stride: int = 0,
        split_cpu: bool = False,
    ) -> None:
        """``value`` is the (offset, size, signed) integer read from each value, or from each CPU's slot of a
        per-CPU value (``ncpus`` slots ``stride`` bytes apart, ``value_size`` in all)."""
        _check_layout(labels, key_size, value_size, value, ncpus, stride)
        ffi = b.ffi
        self._keep: list[Any] = []  # the buffers the layout points into

        def text(data: str) -> tuple[Any, int]:
            encoded = data.encode()
            self._keep.append(ffi.new("char[]", encoded))
            return self._keep[-1], len(encoded)

        self._labels = ffi.new("struct pbm_sample_label[]", len(labels))
        for i, (c_label, label) in enumerate(zip(self._labels, labels, strict=True)):
            c_label.text, c_label.text_len = text(f'{name}{{{label.name}="' if i == 0 else f'",{label.name}="')
            c_label.offset, c_label.size, c_label.format = label.offset, label.size, FORMATS[label.format]
        layout = self._layout = ffi.new("struct pbm_sample_layout *")
        layout.labels, layout.nlabels = self._labels, len(labels)
        layout.tail, layout.tail_len = text('"} ')
        layout.key_size, layout.value_size = key_size, value_size
        layout.value_offset, layout.value_width, layout.value_signed = value[0], value[1], int(value[2])
        layout.ncpus, layout.stride = ncpus, stride
        if split_cpu:
            layout.cpu_text, layout.cpu_text_len = text('",cpu="')
        self._bound = b.lib.pbm_sample_bound(layout)

    def write(self, keys: bytes, values: bytes, n: int) -> bytes:
        """The lines of ``n`` entries, as bytes."""
        if len(keys) < n * self._layout.key_size or len(values) < n * self._layout.value_size:
            raise ValueError(f"{n} entries need {n * self._layout.key_size} bytes of keys and "
                             f"{n * self._layout.value_size} of values, got {len(keys)} and {len(values)}")
        ffi = b.ffi
        # Not zeroed: every byte handed back is written first. A buffer per call costs no more than one kept
        # (measured), and a daemon then holds no buffer sized for its largest scrape between scrapes.
        out = _uncleared("char[]", max(n * self._bound, 1))
        keys_in, values_in = ffi.from_buffer(keys), ffi.from_buffer(values)
        written = b.lib.pbm_format_samples(self._layout, keys_in, values_in, n, out)
        text: bytes = ffi.buffer(out, written)[:]
        return text


_uncleared = b.ffi.new_allocator(should_clear_after_alloc=False)
_INT_SIZES = (1, 2, 4, 8)


def _check_layout(
    labels: Sequence[SampleLabel], key_size: int, value_size: int, value: tuple[int, int, bool], ncpus: int,
    stride: int,
) -> None:
    # C trusts the layout: every read it makes must lie inside the key or the value (or the CPU's slot).
    if not labels:
        raise ValueError("a sample writer needs at least one label from the key")
    for label in labels:
        if label.format not in FORMATS:
            raise ValueError(f"label {label.name!r}: format {label.format!r} is not one of {', '.join(FORMATS)}")
        if label.format != "hex" and label.size not in _INT_SIZES:
            raise ValueError(f"label {label.name!r}: {label.format} takes 1, 2, 4 or 8 bytes, got {label.size}")
        if label.size < 1 or label.offset < 0 or label.offset + label.size > key_size:
            raise ValueError(f"label {label.name!r}: {label.size} bytes at offset {label.offset} do not fit the "
                             f"{key_size}-byte key")
    slot = stride if ncpus else value_size
    if ncpus and (stride < 1 or ncpus * stride > value_size):
        raise ValueError(f"{ncpus} per-CPU slots of {stride} bytes do not fit {value_size} bytes of value")
    offset, width, _ = value
    if width not in _INT_SIZES or offset < 0 or offset + width > slot:
        raise ValueError(f"the value read, {width} bytes at offset {offset}, is not an integer inside the "
                         f"{slot}-byte value")
