"""LPM tries: longest-prefix match maps keyed by (prefix length, address), read and written by prefix."""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import Any, ClassVar, Unpack

from . import features
from ._internal.args import check_int
from ._internal.create import BTFOptions, Placement, ValueSize
from ._internal.elements import MISSING
from ._internal.iteration import walk
from .codec import CodecSpec
from .enums import MapFlags, MapType, UpdateFlags
from .errors import Operation, error_from_errno
from .info import MapInfo
from .lpm import LpmKeyCodec
from .map import Map

__all__ = ["LpmTrieMap"]


class _TrieOptions(Placement, ValueSize, BTFOptions, total=False):
    """What a trie takes besides its prefix and value codec."""


class LpmTrieMap(Map[Any, Any]):
    """``BPF_MAP_TYPE_LPM_TRIE``: prefixes and longest-prefix-match lookups.

    ``LpmTrieMap("ipv4", value="u32", max_entries=1024)`` (or ``"ipv6"``, or a data size in bytes for raw
    prefixes). Keys are :mod:`ipaddress` networks (``IPv4Network("10.0.0.0/8")``, a string such as
    ``"10.0.0.0/8"``, or ``(prefixlen, bytes)``); raw tries take and yield ``(prefixlen, bytes)``. A network
    with host bits set (``10.0.0.1/8``) raises ValueError, as :mod:`ipaddress` does.

    Two kinds of lookup:

    * ``t.longest_match(address)`` is the kernel's lookup: the value of the longest stored prefix that holds
      the address, or KeyNotFoundError. One syscall.
    * ``t[network]``, ``network in t`` and ``t.get(network)`` are **exact**, like a dict: only that very
      prefix, not a shorter one that covers it. (bcc and cilium/ebpf hand ``t[k]`` to the kernel, which answers
      with the longest prefix up to ``k``'s length.) The kernel has no exact lookup, so this takes three
      syscalls: the lookup, and two ``get_next_key`` calls that tell an exact hit from a covering prefix
      (``get_next_key`` of a key that is not stored returns the trie's first key). Not atomic against a
      concurrent writer.

    ``t[network] = v``, ``del t[network]`` and ``pop`` are exact in the kernel already. Iteration yields the
    stored networks, more specific prefixes before the shorter ones that cover them (the kernel's order).
    The trie is created with ``MapFlags.NO_PREALLOC``, which the kernel requires.
    """

    map_type: ClassVar[MapType | None] = MapType.LPM_TRIE

    _lpm: LpmKeyCodec

    def __init__(
        self,
        prefix: str | int = "ipv4",
        value: CodecSpec = None,
        max_entries: int = 0,
        name: str | None = None,
        **options: Unpack[_TrieOptions],
    ) -> None:
        """Create an empty trie; ``prefix`` is ``"ipv4"``, ``"ipv6"`` or the data size of raw prefixes."""
        # The kernel allocates trie nodes as prefixes arrive: it refuses a trie created without NO_PREALLOC.
        options["flags"] = check_int(options.get("flags", 0), "flags") | MapFlags.NO_PREALLOC
        super().__init__(LpmKeyCodec(prefix), value, max_entries, name, **options)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        if key is None:  # opened without a key codec: networks for 4 and 16 data bytes, else raw
            info = info if info is not None else MapInfo.from_fd(fd)
            key = LpmKeyCodec.for_key_size(info.key_size)
        super()._attach(fd, key, value, info)
        key_codec = self._elements.key
        # longest_match builds its own key, so it works whatever key codec the trie was opened with.
        self._lpm = key_codec if isinstance(key_codec, LpmKeyCodec) else LpmKeyCodec.for_key_size(self.key_size)

    @property
    def max_prefixlen(self) -> int:
        """The longest prefix the trie holds, in bits (32 for IPv4, 128 for IPv6)."""
        return self._lpm.max_prefixlen

    def longest_match(self, address: Any) -> Any:
        """The value of the longest stored prefix that holds ``address`` (the kernel's lookup).

        ``address`` is an :mod:`ipaddress` address or a string for IP tries, or ``data_size`` bytes; a trie
        with no prefix holding it raises KeyNotFoundError.
        """
        value = self._elements.find_raw(self._lpm.full_key(address))
        if value is MISSING:
            target = self._elements.target
            raise error_from_errno(errno.ENOENT, Operation.LOOKUP, target, f"no prefix holds {address!r}")
        return value

    def _find_exact(self, key: Any, default: Any) -> Any:
        elements = self._elements
        raw = elements.encode_key(key)
        value = elements.find_raw(raw, MISSING, key)
        if value is MISSING:
            return default
        # The lookup matched some prefix up to this key's length. get_next_key finds the key's own node only
        # when it is stored exactly, and then returns the node after it (or ENOENT for the last one); for a key
        # that is not stored it returns the first key of the trie, which never follows a stored node. Kernels
        # without the fix of its exact-match test mistake a same-length prefix for the key: walk the trie there.
        if not features.have_lpm_exact_next_key():
            # Compared as prefixes: a program may have stored the key with host bits set (10.0.0.1/8).
            wanted = self._lpm.decode(raw)
            stored = (self._lpm.decode(key) for key, _ in walk(elements, self.max_entries))
            return value if wanted in stored else default
        following = elements.next_key_raw(raw)
        if following is not None and following == elements.next_key_raw(None):
            return default
        return value

    def __getitem__(self, key: Any) -> Any:
        value = self._find_exact(key, MISSING)
        if value is MISSING:
            raise self._missing(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self._find_exact(key, MISSING) is not MISSING

    def get(self, key: Any, default: Any = None) -> Any:
        """The value stored under exactly this prefix, or ``default``."""
        return self._find_exact(key, default)

    def get_many(self, keys: Iterable[Any], default: Any = None) -> list[Any]:
        """The value of exactly each prefix (``default`` where absent): exact lookups, one at a time."""
        return [self._find_exact(key, default) for key in keys]

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """The value of exactly this prefix, inserting ``default`` first if absent."""
        while True:
            value = self._find_exact(key, MISSING)
            if value is not MISSING:
                return value
            elements = self._elements
            try:
                elements.update(key, default, int(UpdateFlags.NOEXIST))
            except FileExistsError:
                continue
            return elements.value.decode(elements.encode_value(default))
