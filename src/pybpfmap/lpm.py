"""The key layout of LPM tries: a prefix length and the prefix's bytes, as ``ipaddress`` networks or raw.

The kernel's key (``struct bpf_lpm_trie_key_u8``) is a 4-byte prefix length in host byte order followed by
``data_size`` bytes of data in network byte order (most significant bit first, since the trie compares bit by
bit from the front). :class:`LpmKeyCodec` converts between that and

* :class:`ipaddress.IPv4Network` / :class:`ipaddress.IPv6Network` for 4-byte and 16-byte tries (strings such
  as ``"10.0.0.0/8"`` and single addresses, meaning a host route, are accepted when encoding);
* ``(prefixlen, bytes)`` for any data size (accepted by the IP layouts too).

Bits beyond the prefix length must be zero, as ``ipaddress`` insists on for strict networks: the kernel would
store them and hand them back from ``get_next_key`` although no lookup ever looks at them.
"""

from __future__ import annotations

import ipaddress
import operator
import struct
from typing import Any

from .codec import Buffer, Codec

__all__ = ["IPV4", "IPV6", "RAW", "LpmKeyCodec", "address_bytes"]

#: The layouts a trie's data can have.
IPV4 = "ipv4"
IPV6 = "ipv6"
RAW = "raw"

_PREFIXLEN = struct.Struct("=I")
_NETWORK_TYPES: dict[str, type[ipaddress.IPv4Network] | type[ipaddress.IPv6Network]] = {
    IPV4: ipaddress.IPv4Network,
    IPV6: ipaddress.IPv6Network,
}
_ADDRESS_TYPES: dict[str, type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]] = {
    IPV4: ipaddress.IPv4Address,
    IPV6: ipaddress.IPv6Address,
}
_FAMILY_SIZES = {IPV4: 4, IPV6: 16}
# The kernel's bounds on the data part of an LPM key (LPM_DATA_SIZE_MIN / LPM_DATA_SIZE_MAX).
MIN_DATA_SIZE = 1
MAX_DATA_SIZE = 256


def _data_bytes(data: Any, size: int, what: str) -> bytes:
    try:
        raw = bytes(memoryview(data))
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object of {size} bytes, got {type(data).__name__}") from None
    if len(raw) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


def address_bytes(address: Any, family: str, size: int) -> bytes:
    """The ``size`` data bytes of one address: an ``ipaddress`` address or string for IP tries, else bytes."""
    if family in _ADDRESS_TYPES and not isinstance(address, (bytes, bytearray, memoryview)):
        address_type = _ADDRESS_TYPES[family]
        if isinstance(address, str):
            try:
                return address_type(address).packed
            except ValueError as exc:
                raise ValueError(f"not an {family} address: {exc}") from None
        if isinstance(address, address_type):
            return address.packed
        raise TypeError(
            f"an {family} trie looks up an {address_type.__name__}, a str or {size} bytes, "
            f"got {type(address).__name__}"
        )
    return _data_bytes(address, size, "an address")


class LpmKeyCodec(Codec[Any]):
    """An LPM trie key: ``LpmKeyCodec("ipv4")``, ``LpmKeyCodec("ipv6")`` or ``LpmKeyCodec(data_size)``.

    IP layouts decode to :class:`ipaddress.IPv4Network` / :class:`ipaddress.IPv6Network`; a raw layout decodes
    to ``(prefixlen, bytes)``. Encoding refuses a prefix longer than the data and bits set beyond the prefix
    (ValueError, as ``ipaddress`` does for ``10.0.0.1/8``).
    """

    def __init__(self, layout: str | int = IPV4) -> None:
        if isinstance(layout, str):
            if layout not in _FAMILY_SIZES:
                raise ValueError(f"an LPM prefix is 'ipv4', 'ipv6' or a data size in bytes, got {layout!r}")
            self.family = layout
            self.data_size = _FAMILY_SIZES[layout]
        else:
            try:
                size = operator.index(layout)
            except TypeError:
                raise TypeError(
                    f"an LPM prefix is 'ipv4', 'ipv6' or a data size in bytes, got {type(layout).__name__}"
                ) from None
            if not MIN_DATA_SIZE <= size <= MAX_DATA_SIZE:
                raise ValueError(f"an LPM data size is {MIN_DATA_SIZE}..{MAX_DATA_SIZE} bytes, got {size}")
            self.family = RAW
            self.data_size = size
        #: The longest prefix the layout holds (the trie's ``max_prefixlen``), in bits.
        self.max_prefixlen = 8 * self.data_size
        self.size = 4 + self.data_size
        self._network = _NETWORK_TYPES.get(self.family)

    @classmethod
    def for_key_size(cls, key_size: int) -> LpmKeyCodec:
        """The default layout of an existing trie: IPv4 for 4 data bytes, IPv6 for 16, raw otherwise."""
        data_size = key_size - 4
        return cls({4: IPV4, 16: IPV6}.get(data_size, data_size))

    def full_key(self, address: Any) -> bytes:
        """The key that asks the kernel for the longest prefix holding ``address`` (prefix length = all bits)."""
        return _PREFIXLEN.pack(self.max_prefixlen) + address_bytes(address, self.family, self.data_size)

    def encode(self, obj: Any) -> bytes:
        """Pack a network, a string, an address (a host route) or ``(prefixlen, bytes)``."""
        if isinstance(obj, tuple):
            if len(obj) != 2:
                raise self._error(ValueError, f"a raw LPM key is (prefixlen, bytes), got {len(obj)} items")
            prefixlen, data = obj
            return self._pack(self._prefixlen(prefixlen), _data_bytes(data, self.data_size, "the prefix data"))
        network = self._network
        if network is None:
            raise self._error(
                TypeError,
                f"a key of a raw LPM trie is (prefixlen, bytes of {self.data_size}), got {type(obj).__name__}",
            )
        if not isinstance(obj, network):
            if not isinstance(obj, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)):
                raise self._error(
                    TypeError,
                    f"an {self.family} trie key is an {network.__name__}, a str such as "
                    f"{'10.0.0.0/8' if self.family == IPV4 else '2001:db8::/32'!r} or (prefixlen, bytes), "
                    f"got {type(obj).__name__}",
                )
            try:
                obj = network(obj)  # strict: host bits set raise ValueError
            except (ValueError, TypeError) as exc:
                raise self._error(ValueError, f"not an {self.family} network: {exc}") from None
        return _PREFIXLEN.pack(obj.prefixlen) + bytes(obj.network_address.packed)

    def _prefixlen(self, prefixlen: Any) -> int:
        try:
            n = operator.index(prefixlen)
        except TypeError:
            raise self._error(TypeError, f"a prefix length is an int, got {type(prefixlen).__name__}") from None
        if not 0 <= n <= self.max_prefixlen:
            raise self._error(ValueError, f"prefix length {n} is out of range 0..{self.max_prefixlen}")
        return n

    def _pack(self, prefixlen: int, data: bytes) -> bytes:
        value = int.from_bytes(data, "big")
        if value & ((1 << (self.max_prefixlen - prefixlen)) - 1):
            raise self._error(ValueError, f"{data.hex()}/{prefixlen} has bits set beyond the prefix length")
        return _PREFIXLEN.pack(prefixlen) + data

    def decode(self, data: Buffer) -> Any:
        """A network (IP layouts) or ``(prefixlen, bytes)``; bits beyond the prefix are cleared."""
        (prefixlen,) = _PREFIXLEN.unpack_from(data)
        raw = bytes(data[4 : self.size])
        if self._network is not None:
            # strict=False: a program may have stored bits beyond the prefix, which no lookup looks at.
            return self._network((raw, prefixlen), strict=False)
        if prefixlen > self.max_prefixlen:
            return prefixlen, raw
        host_bits = (1 << (self.max_prefixlen - prefixlen)) - 1
        return prefixlen, (int.from_bytes(raw, "big") & ~host_bits).to_bytes(self.data_size, "big")

    def __repr__(self) -> str:
        return f"LpmKeyCodec({self.family!r})" if self.family != RAW else f"LpmKeyCodec({self.data_size})"
