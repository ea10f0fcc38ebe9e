"""Property tests of the LPM trie: the key codec round-trips random networks, and the kernel's longest match
agrees with a Python model on random tries."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybpfmap import KeyNotFoundError, LpmKeyCodec, LpmTrieMap

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def networks(version: int) -> st.SearchStrategy[Any]:
    """Random networks of one IP version, host bits cleared."""
    bits = 32 if version == 4 else 128
    network = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return st.builds(
        lambda address, prefixlen: network((address, prefixlen), strict=False),
        st.integers(0, (1 << bits) - 1),
        st.integers(0, bits),
    )


@pytest.mark.unprivileged
@SETTINGS
@given(st.one_of(networks(4), networks(6)))
def test_codec_round_trips_networks(net: Network) -> None:
    """encode then decode gives the network back, as an object, a string or (prefixlen, bytes)."""
    codec = LpmKeyCodec("ipv4" if net.version == 4 else "ipv6")
    raw = codec.encode(net)
    assert len(raw) == codec.size and struct.unpack("=I", raw[:4])[0] == net.prefixlen  # host byte order
    assert codec.decode(raw) == net
    assert codec.encode(str(net)) == raw
    assert codec.encode((net.prefixlen, net.network_address.packed)) == raw
    assert raw[4:] == net.network_address.packed  # data in network byte order


@pytest.mark.unprivileged
@SETTINGS
@given(st.integers(1, 8), st.data())
def test_codec_round_trips_raw_prefixes(size: int, data: st.DataObject) -> None:
    """Raw prefixes round-trip; bits beyond the prefix are refused on the way in."""
    codec = LpmKeyCodec(size)
    prefixlen = data.draw(st.integers(0, 8 * size))
    value = data.draw(st.integers(0, (1 << (8 * size)) - 1))
    masked = value & ~((1 << (8 * size - prefixlen)) - 1)
    key = (prefixlen, masked.to_bytes(size, "big"))
    assert codec.decode(codec.encode(key)) == key
    if masked != value:
        with pytest.raises(ValueError, match="bits set beyond the prefix length"):
            codec.encode((prefixlen, value.to_bytes(size, "big")))


def _model_match(trie: dict[Network, int], address: Any) -> int | None:
    """The value of the longest network holding ``address``, in plain Python."""
    best = None
    for net, value in trie.items():
        if address in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, value)
    return None if best is None else best[1]


def _nearby_networks(version: int) -> st.SearchStrategy[Any]:
    """Networks within a small address range, so that random tries nest and overlap."""
    bits = 32 if version == 4 else 128
    network = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    base = 10 << (bits - 8)
    return st.builds(
        lambda low, prefixlen: network((base | (low << (bits - 16)), prefixlen), strict=False),
        st.integers(0, 15),
        st.integers(0, bits),
    )


@pytest.mark.parametrize("version", [4, 6])
@SETTINGS
@given(data=st.data())
def test_longest_match_agrees_with_a_model(version: int, data: st.DataObject) -> None:
    """For random tries and addresses, the kernel's longest match, iteration and exact lookups agree with a
    dict and a linear scan."""
    trie = data.draw(st.dictionaries(_nearby_networks(version), st.integers(0, 2**32 - 1), max_size=24))
    bits = 32 if version == 4 else 128
    address_type = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    base = 10 << (bits - 8)
    address = st.builds(
        lambda low, host: address_type(base | (low << (bits - 16)) | host), st.integers(0, 15), st.integers(0, 255)
    )
    addresses = data.draw(st.lists(address, min_size=1, max_size=16))
    with LpmTrieMap("ipv4" if version == 4 else "ipv6", value="u32", max_entries=32) as t:
        for net, value in trie.items():
            t[net] = value
        assert dict(t.items()) == trie
        for address in addresses:
            expected = _model_match(trie, address)
            if expected is None:
                with pytest.raises(KeyNotFoundError):
                    t.longest_match(address)
            else:
                assert t.longest_match(address) == expected
            # Exact item access: the host route of the address is a key only if it was stored.
            host = ipaddress.ip_network(address)
            assert (host in t) == (host in trie)
            assert t.get(host) == trie.get(host)
