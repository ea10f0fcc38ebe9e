"""Every kind offers what its kernel map can do and refuses the rest up front, from one table.

For each map kind and each element method of Map: where the type's abilities (MapType.abilities) cover what
the method needs (pybpfmap._internal.refusal.METHOD_NEEDS), the call reaches the kernel and is never answered "not
supported"; where they do not, the call raises TypeError before it touches the map's elements at all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from needs import needs
from test_all_types import btf, map_args  # noqa: F401  (btf is a fixture the kinds below need)

from pybpfmap import HashMap, Map, MapType, NotSupportedError, features
from pybpfmap._internal.refusal import METHOD_NEEDS
from pybpfmap.enums import Ability
from pybpfmap.errors import BPFError
from pybpfmap.fdmaps import FdCodec, InnerMapCodec
from pybpfmap.map import _KINDS

KINDS = sorted(_KINDS.items())

#: The public callables of Map that do not reach elements: creation, opening, lifetime, pinning, metadata.
NOT_ELEMENTS = {
    "create", "from_fd", "from_id", "from_pin", "from_name", "close", "fileno", "pin", "unpin", "freeze",
}  # fmt: skip
ELEMENT_DUNDERS = {"__getitem__", "__setitem__", "__delitem__", "__contains__", "__iter__", "__len__"}


def calls(key: Any, value: Any) -> dict[str, Callable[[Map[Any, Any]], object]]:
    """One call of each element method with arguments of the map's own codecs."""
    return {
        "__getitem__": lambda m: m[key],
        "__contains__": lambda m: key in m,
        "get": lambda m: m.get(key),
        "get_many": lambda m: m.get_many([key]),
        "__setitem__": lambda m: m.__setitem__(key, value),
        "set": lambda m: m.set(key, value),
        "update": lambda m: m.update([(key, value)]),
        "update_batch": lambda m: m.update_batch([key], [value]),
        "setdefault": lambda m: m.setdefault(key, value),
        "__delitem__": lambda m: m.__delitem__(key),
        "delete_batch": lambda m: m.delete_batch([key]),
        "pop": lambda m: m.pop(key, None),
        "__iter__": lambda m: list(iter(m)),
        "__len__": lambda m: len(m),
        "keys": lambda m: list(m.keys()),
        "_iter_items": lambda m: list(m._iter_items()),
        "_iter_values": lambda m: list(m._iter_values()),
        "items": lambda m: list(m.items()),
        "values": lambda m: list(m.values()),
        "snapshot": lambda m: m.snapshot(),
        "snapshot_arrays": lambda m: m.snapshot_arrays(),
        "snapshot_bytes": lambda m: m.snapshot_bytes(),
        "iter_batches": lambda m: list(m.iter_batches()),
        "clear": lambda m: m.clear(),
        "popitem": lambda m: m.popitem(),
        "drain": lambda m: m.drain(),
        "drain_arrays": lambda m: m.drain_arrays(),
    }


class Untouchable:
    """Stands in for a map's element layer: anything but the closed-map check fails the test."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def live_fd(self) -> int:
        return int(self._real.live_fd())

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a refused call reached the element layer ({name})")


def test_every_element_method_of_map_is_in_the_table() -> None:
    public = {
        name
        for name, member in inspect.getmembers(Map)
        # m[k], m[k] = v and del m[k] are slots holding the element layer's methods.
        if (callable(member) and (not name.startswith("_") or name in ELEMENT_DUNDERS))
        or (name in ELEMENT_DUNDERS and inspect.ismemberdescriptor(member))
    }
    assert public - NOT_ELEMENTS == set(METHOD_NEEDS) - {"_iter_items", "_iter_values"}


def test_the_abilities_are_a_fact_of_the_type() -> None:
    assert MapType.HASH.abilities is Ability.ALL
    assert Ability.DELETE not in MapType.ARRAY.abilities
    assert MapType.RINGBUF.abilities is MapType.QUEUE.abilities is Ability.NONE
    assert Ability.LIST not in MapType.SK_STORAGE.abilities


#: Socket maps report a socket's cookie to user space only when their values have room for it (8 bytes); with
#: the 4 bytes of map_args the kernel answers every lookup with ENOSPC.
READABLE = {MapType.SOCKMAP: {"value_size": 8}, MapType.SOCKHASH: {"value_size": 8}}


@pytest.fixture
def kind_map(request: pytest.FixtureRequest, btf: dict[str, int]) -> Iterator[Map[Any, Any]]:  # noqa: F811
    map_type: MapType = request.param
    needs(features.map_type_feature(map_type))
    with (
        HashMap(key="u32", value="u32", max_entries=1) as inner,
        Map.create(
            map_type, name="refusals", **{**map_args(map_type, btf, inner), **READABLE.get(map_type, {})}
        ) as created,
        Map.from_fd(created) as m,  # opened: with the kind's own codecs (u32 indexes, fds), not raw bytes
    ):
        m._test_inner = inner  # type: ignore[attr-defined]
        yield m


def sample(m: Map[Any, Any]) -> tuple[Any, Any]:
    """A key and a value that the map's codecs accept (zeros; the inner template for maps of maps)."""
    key = m.key_codec.decode(bytes(m.key_size)) if m.key_size else None
    if isinstance(m.value_codec, InnerMapCodec):
        return key, m._test_inner  # type: ignore[attr-defined]
    if m.type in (MapType.DEVMAP, MapType.DEVMAP_HASH):
        return key, 1  # an ifindex: the loopback device, 1 in every network namespace
    return key, m.value_codec.decode(bytes(m.value_codec.size)) if m.value_size else None


def fd_elements(m: Map[Any, Any]) -> bool:
    """Whether the map's keys or values are fds (so the zero sample names no object of the right kind)."""
    fds = isinstance(m.key_codec, FdCodec) or isinstance(m.value_codec, (FdCodec, InnerMapCodec))
    return fds or m.type is MapType.PERF_EVENT_ARRAY  # perf event fds, written as plain u32


@pytest.mark.parametrize("kind_map", [t for t, _ in KINDS], ids=[c.__name__ for _, c in KINDS], indirect=True)
def test_each_kind_offers_what_its_map_can_do_and_refuses_the_rest_up_front(kind_map: Map[Any, Any]) -> None:
    m = kind_map
    assert type(m) is _KINDS[m.type]
    lacking = Ability.ALL & ~m.type.abilities
    key, value = sample(m)
    real = m._elements
    for name, call in calls(key, value).items():
        method = getattr(type(m), name)
        if getattr(method, "_own", False):
            continue  # the kind's own way (a queue's pop, a bloom filter's in): tested with the kind
        if METHOD_NEEDS[name] & lacking:
            m._elements = Untouchable(real)  # type: ignore[assignment]
            try:
                with pytest.raises(TypeError) as info:
                    call(m)
            finally:
                m._elements = real
            assert str(info.value) == m._why(), name
            continue
        try:
            call(m)
        except NotSupportedError as exc:
            pytest.fail(f"{type(m).__name__}.{name} offered but the kernel says: {exc}")
        except TypeError as exc:
            pytest.fail(f"{type(m).__name__}.{name} offered but raised TypeError: {exc}")
        except (KeyError, BPFError) as exc:
            # Only what the sample element itself gets: absent (ENOENT), or, where keys or values are fds of
            # kernel objects (sockets, tasks, programs, devices, perf events), fd 0 refused as not one of them.
            if isinstance(exc, KeyError) or fd_elements(m):
                continue
            pytest.fail(f"{type(m).__name__}.{name}: {exc}")


@pytest.mark.parametrize("kind_map", [MapType.RINGBUF], ids=["RingBufMap"], indirect=True)
def test_ring_buffer_refuses_every_whole_map_read_and_batch_up_front(kind_map: Map[Any, Any]) -> None:
    """The drift this table ended: these reached the kernel and came back NotSupportedError or EINVAL."""
    for call in (
        kind_map.snapshot_arrays,
        kind_map.snapshot_bytes,
        kind_map.drain,
        lambda: list(kind_map.iter_batches()),
        lambda: kind_map.update_batch([0], [0]),
    ):
        with pytest.raises(TypeError, match=r"RingBufMap has no keys or values .*RingBuffer\(map\)"):
            call()


def test_a_closed_map_says_closed_before_refusing() -> None:
    from pybpfmap import QueueMap

    q = QueueMap(value="u32", max_entries=2)
    q.close()
    with pytest.raises(ValueError, match="closed"):
        q.snapshot()
