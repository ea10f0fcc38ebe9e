"""Label decoders, by the names ebpf_exporter gives them: each turns a label's bytes into text."""

from __future__ import annotations

import errno as errno_module
import ipaddress
import re
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..symbols import KernelSymbols, syscall_name

__all__ = ["DECODERS", "Decoder"]


#: A decoder turns the bytes of a label (or a previous decoder's text, as bytes) into text, or None to drop
#: the entry (regexp).
Decoder = Callable[[bytes], bytes | None]

INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _uint(conf: Mapping[str, Any]) -> Decoder:
    def decode(data: bytes) -> bytes:
        if len(data) not in INT_FORMATS:
            raise ValueError(f"uint needs 1, 2, 4 or 8 bytes, got {len(data)}")
        return str(int.from_bytes(data, sys.byteorder)).encode()

    return decode


def _int(conf: Mapping[str, Any]) -> Decoder:
    def decode(data: bytes) -> bytes:
        if len(data) not in INT_FORMATS:
            raise ValueError(f"int needs 1, 2, 4 or 8 bytes, got {len(data)}")
        return str(int.from_bytes(data, sys.byteorder, signed=True)).encode()

    return decode


def _string(conf: Mapping[str, Any]) -> Decoder:
    return lambda data: data.split(b"\0", 1)[0]


def _hex(conf: Mapping[str, Any]) -> Decoder:
    return lambda data: data.hex().encode()


def _inet_ip(conf: Mapping[str, Any]) -> Decoder:
    def decode(data: bytes) -> bytes:
        if len(data) == 4:
            return str(ipaddress.IPv4Address(data)).encode()
        if len(data) == 16:
            address = ipaddress.IPv6Address(data)
            mapped = address.ipv4_mapped  # Go's net.IP prints IPv4-mapped addresses as IPv4
            return str(mapped if mapped is not None else address).encode()
        raise ValueError(f"inet_ip needs 4 or 16 bytes, got {len(data)}")

    return decode


def _ifname(conf: Mapping[str, Any]) -> Decoder:
    names: dict[int, bytes] = {}

    def decode(data: bytes) -> bytes:
        index = int.from_bytes(data[:4], sys.byteorder)
        if index not in names:
            try:
                names[index] = socket.if_indextoname(index).encode()
            except OSError:
                return f"unknown:{index}".encode()  # the interface may be gone since the entry was written
        return names[index]

    return decode


def _errno_name(conf: Mapping[str, Any]) -> Decoder:
    def decode(data: bytes) -> bytes:
        try:
            number = int(data)
        except ValueError:
            raise ValueError(f"errno takes a number from a previous decoder (uint), got {data!r}") from None
        return errno_module.errorcode.get(number, f"unknown:{number}").encode()

    return decode


def _ksym(conf: Mapping[str, Any]) -> Decoder:
    symbols: list[KernelSymbols | None] = []  # kallsyms, read on the first decode

    def decode(data: bytes) -> bytes:
        address = int.from_bytes(data[:8], sys.byteorder)
        if not symbols:
            try:
                symbols.append(KernelSymbols())
            except PermissionError:
                # kallsyms hides kernel addresses from this process: every address is unknown, as in ebpf_exporter.
                symbols.append(None)
        name = symbols[0].lookup(address).name if symbols[0] is not None else None
        return (name if name is not None else f"unknown_addr:0x{address:x}").encode()

    return decode


def _syscall(conf: Mapping[str, Any]) -> Decoder:
    syscall_name(0)  # ValueError at load time on a machine without a syscall table, not at every scrape

    def decode(data: bytes) -> bytes:
        try:
            number = int(data)
        except ValueError:
            raise ValueError(f"syscall takes a number from a previous decoder (uint), got {data!r}") from None
        name = syscall_name(number)
        return (name if name is not None else f"unknown:{number}").encode()

    return decode


def _static_map(conf: Mapping[str, Any]) -> Decoder:
    table = conf.get("static_map")
    if not isinstance(table, Mapping):
        raise ValueError("static_map needs a table 'static_map = { input = \"output\" }'")
    mapping = {str(k).encode(): str(v).encode() for k, v in table.items()}
    allow_unknown = bool(conf.get("allow_unknown", False))

    def decode(data: bytes) -> bytes:
        found = mapping.get(data)
        if found is not None:
            return found
        return data if allow_unknown else b"unknown:" + data

    return decode


def _regexp(conf: Mapping[str, Any]) -> Decoder:
    expressions = conf.get("regexps")
    if not isinstance(expressions, list) or not expressions:
        raise ValueError("regexp needs a list 'regexps = [\"...\"]'")
    try:
        compiled = [re.compile(str(e).encode()) for e in expressions]
    except re.error as exc:
        raise ValueError(f"bad regexp: {exc}") from None
    return lambda data: data if any(r.search(data) for r in compiled) else None


#: Decoder factories by name: each takes its config table and returns the decoding function.
DECODERS: dict[str, Callable[[Mapping[str, Any]], Decoder]] = {
    "uint": _uint,
    "int": _int,
    "string": _string,
    "hex": _hex,
    "inet_ip": _inet_ip,
    "ifname": _ifname,
    "errno": _errno_name,
    "ksym": _ksym,
    "syscall": _syscall,
    "static_map": _static_map,
    "regexp": _regexp,
}

# Decoders that never map two inputs to one output (regexp drops inputs but passes the others unchanged).
INJECTIVE = frozenset({"uint", "int", "hex", "inet_ip", "errno", "syscall", "regexp"})

# Decoders that read the label's bytes directly need one of these sizes (checked at load time).
SIZES = {"uint": (1, 2, 4, 8), "int": (1, 2, 4, 8), "inet_ip": (4, 16), "ifname": (4,), "ksym": (8,)}
