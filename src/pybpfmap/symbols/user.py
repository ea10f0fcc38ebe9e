"""User-space addresses of a process to symbols, through ``/proc/PID/maps`` and the ELF symbol tables of the
mapped files (read with pyelftools, an optional extra)."""

from __future__ import annotations

import bisect
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .symbol import Symbol, SymbolTable

__all__ = ["UserSymbols"]

# How many files' symbol tables stay cached (libc and friends are shared by every process; a table of a few
# thousand symbols costs well under a megabyte).
CACHE_FILES = 256

# Sized symbols say where they end; an unsized one (rare: hand-written assembly) runs to the next, this far at most.
MAX_SPAN = 1 << 16

# Preference among aliases at one address (glibc's __getpid and getpid): global, then weak, then local.
_RANKS = {"STB_GLOBAL": 0, "STB_WEAK": 1, "STB_LOCAL": 2}


def _elftools() -> Any:
    """pyelftools' ELFFile, or ImportError naming the extra that brings it."""
    try:
        from elftools.elf.elffile import ELFFile
    except ImportError as exc:
        raise ImportError(
            "user-space symbols are read from ELF files with pyelftools, which is not installed: "
            "pip install 'pybpfmap[symbols]'"
        ) from exc
    return ELFFile


@dataclass(frozen=True)
class _Load:
    """A PT_LOAD segment: file bytes from ``offset`` (``size`` of them) appear at virtual address ``vaddr``."""

    offset: int
    vaddr: int
    size: int


class _Image:
    """One ELF file's loadable segments and function symbols (.symtab and .dynsym)."""

    def __init__(self, path: str, elf_file: Any) -> None:
        loads: list[_Load] = []
        symbols: list[tuple[int, int, str, int]] = []
        try:
            with open(path, "rb") as f:
                elf = elf_file(f)
                for segment in elf.iter_segments():
                    if segment["p_type"] == "PT_LOAD":
                        size = max(segment["p_filesz"], segment["p_memsz"])
                        loads.append(_Load(segment["p_offset"], segment["p_vaddr"], size))
                for section_name in (".symtab", ".dynsym"):
                    section = elf.get_section_by_name(section_name)
                    if section is None or not hasattr(section, "iter_symbols"):
                        continue
                    for sym in section.iter_symbols():
                        if (
                            sym.name
                            and sym["st_value"]
                            and sym["st_info"]["type"] in ("STT_FUNC", "STT_GNU_IFUNC")
                            and sym["st_shndx"] != "SHN_UNDEF"
                        ):
                            rank = _RANKS.get(sym["st_info"]["bind"], 3)
                            symbols.append((sym["st_value"], sym["st_size"], sym.name, rank))
        except Exception:  # pyelftools raises many kinds on a damaged file; its addresses stay unknown
            loads, symbols = [], []
        self.loads = loads
        self.table = SymbolTable(symbols, MAX_SPAN)

    def vaddr(self, file_offset: int) -> int | None:
        """The ELF virtual address of the byte at ``file_offset``, through the PT_LOAD segment holding it."""
        for load in self.loads:
            if load.offset <= file_offset < load.offset + load.size:
                return load.vaddr + file_offset - load.offset
        return None


_images: OrderedDict[tuple[int, int, int, int], _Image] = OrderedDict()
_images_lock = threading.Lock()


def _image(path: str, elf_file: Any) -> _Image | None:
    """The symbols of the file at ``path``, cached by the file's identity (device, inode, mtime, size), so every
    path to one file and every process mapping it share one read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    with _images_lock:
        image = _images.get(key)
        if image is not None:
            _images.move_to_end(key)
            return image
    image = _Image(path, elf_file)  # outside the lock: reading a large file takes a while
    with _images_lock:
        _images[key] = image
        while len(_images) > CACHE_FILES:
            _images.popitem(last=False)
    return image


@dataclass(frozen=True)
class _Mapping:
    start: int
    end: int
    offset: int
    inode: int
    path: str


def _read_maps(pid: int) -> list[_Mapping]:
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ProcessLookupError(f"no process {pid}: /proc/{pid}/maps does not exist") from None
    mappings = []
    for line in lines:
        # "55d4c5a00000-55d4c5a21000 r-xp 00002000 fe:00 260811   /usr/bin/python3.11"; the path may hold spaces.
        fields = line.split(maxsplit=5)
        if len(fields) < 5:
            continue
        start, _, end = fields[0].partition("-")
        path = fields[5] if len(fields) > 5 else ""
        mappings.append(_Mapping(int(start, 16), int(end, 16), int(fields[2], 16), int(fields[4]), path))
    mappings.sort(key=lambda m: m.start)
    return mappings


class UserSymbols:
    """Names the user-space addresses of process ``pid`` (default: this process).

    The process's mappings are read from ``/proc/PID/maps`` once, when the instance is made (make another after
    the process loads more libraries). An address in a file mapping is turned into a file offset through the
    mapping's offset, then into the ELF virtual address through the PT_LOAD segment holding that offset (which
    is right for PIE executables and shared libraries wherever they were loaded), and named from the file's
    ``.symtab`` and ``.dynsym``. Files are read through ``/proc/PID/map_files`` when allowed (root), so even a
    deleted or replaced file is the one the process mapped; otherwise by path, when the inode still matches.
    Each file's symbols are cached by its identity across instances and processes.

    ``Symbol.module`` is the mapping's path as ``/proc/PID/maps`` shows it (``[vdso]``, ``[heap]``, a path ending
    in `` (deleted)``), None for anonymous memory. Stripped files name only their exported functions; addresses
    in anonymous memory (JIT code), ``[vdso]`` or files that cannot be read have a name of None.

    Needs pyelftools (``pip install 'pybpfmap[symbols]'``); raises ImportError saying so, and ProcessLookupError
    when there is no such process.
    """

    def __init__(self, pid: int | None = None) -> None:
        if pid is None:
            pid = os.getpid()
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError(f"a pid is a positive int, got {pid!r}")
        self._elf_file = _elftools()
        self.pid = pid
        self._mappings = _read_maps(pid)
        self._starts = [m.start for m in self._mappings]
        self._images: dict[int, _Image | None] = {}

    def _image_of(self, mapping: _Mapping) -> _Image | None:
        if mapping.start not in self._images:
            self._images[mapping.start] = self._find_image(mapping)
        return self._images[mapping.start]

    def _find_image(self, mapping: _Mapping) -> _Image | None:
        exact = f"/proc/{self.pid}/map_files/{mapping.start:x}-{mapping.end:x}"
        if os.access(exact, os.R_OK):
            return _image(exact, self._elf_file)
        if mapping.path.endswith(" (deleted)"):
            return None
        # Through the process's root, so a process in another mount namespace (a container) finds its own file.
        path = f"/proc/{self.pid}/root{mapping.path}"
        try:
            if os.stat(path).st_ino != mapping.inode:  # replaced on disk since it was mapped
                return None
        except OSError:
            return None
        return _image(path, self._elf_file)

    def lookup(self, address: int) -> Symbol:
        """The symbol holding ``address``: name, offset into it and the mapped file's path as ``module``; the
        name (and offset) None when unknown."""
        if not isinstance(address, int) or isinstance(address, bool):
            raise TypeError(f"an address is an int, got {type(address).__name__}")
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0 or address >= self._mappings[i].end:
            return Symbol(address)
        mapping = self._mappings[i]
        module = mapping.path or None
        if not mapping.path.startswith("/"):
            return Symbol(address, module=module)
        image = self._image_of(mapping)
        vaddr = image.vaddr(address - mapping.start + mapping.offset) if image is not None else None
        found = image.table.find(vaddr) if image is not None and vaddr is not None else None
        if found is None:
            return Symbol(address, module=module)
        return Symbol(address, found[0], found[1], module)

    def __repr__(self) -> str:
        return f"UserSymbols(pid={self.pid})"
