"""The Python values BTF structs, unions and enums decode to: one class made per type and per BTF."""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable
from typing import Any, ClassVar

from .types import BTF, BTFType

__all__ = ["BTFStruct"]


def _plain(value: Any) -> Any:
    if isinstance(value, BTFStruct):
        return value._asdict()
    if type(value) is tuple:
        return [_plain(v) for v in value]
    return value


class BTFStruct(tuple[Any, ...]):
    """Base of the classes made for BTF structs and unions: an immutable, hashable tuple of the members.

    Attributes name the members (those of anonymous members are reachable directly too, as in C);
    ``_asdict()`` gives nested plain dicts (arrays as lists); two instances are equal when they are of the
    same BTF type and hold equal members.
    """

    __slots__ = ()
    #: Member names in order; anonymous members are named ``_anon0``, ``_anon1``, ...
    _fields: ClassVar[tuple[str, ...]] = ()
    #: Which of :attr:`_fields` are anonymous members whose own members belong to this one.
    _anonymous: ClassVar[frozenset[str]] = frozenset()
    #: The BTF type the class was made for.
    _btf_type: ClassVar[BTFType]

    def _asdict(self) -> dict[str, Any]:
        """The members as a dict (nested structs as dicts, arrays as lists, anonymous members merged)."""
        out: dict[str, Any] = {}
        anonymous = self._anonymous
        for name, value in zip(self._fields, self, strict=True):
            if name in anonymous:
                out.update(value._asdict())
            else:
                out[name] = _plain(value)
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}({inner})"

    # Only values of the same BTF type compare equal: not a plain tuple, nor another struct with equal members.
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    def __reduce__(self) -> Any:
        raise TypeError(f"{type(self).__name__} instances are made per BTF and cannot be pickled; use _asdict()")


def struct_class(btf: BTF, t: BTFType) -> type[BTFStruct]:
    cls = btf._classes.get(t.id)
    if cls is not None:
        return cls
    fields: list[str] = []
    anonymous: list[str] = []
    ns: dict[str, Any] = {"__slots__": (), "_btf_type": t, "__doc__": f"Values of BTF {t.kind} {t.name!r}."}
    for i, m in enumerate(t.members):
        name = m.name or f"_anon{len(anonymous)}"
        if not m.name:
            anonymous.append(name)
        fields.append(name)
        ns[name] = property(operator.itemgetter(i), doc=f"member {name!r}")
    for i, name in enumerate(fields):
        if name in anonymous:
            inner = struct_class(btf, t.members[i].type.resolved())
            for promoted in all_names(inner):
                if promoted not in ns:
                    ns[promoted] = property(_promoted_getter(i, promoted), doc=f"member {promoted!r}")
    ns["_fields"] = tuple(fields)
    ns["_anonymous"] = frozenset(anonymous)
    cls = type(t.name.lstrip(".") or f"anon_{t.kind}_{t.id}", (BTFStruct,), ns)
    btf._classes[t.id] = cls
    return cls


def _promoted_getter(index: int, name: str) -> Callable[[BTFStruct], Any]:
    def get(self: BTFStruct) -> Any:
        return getattr(self[index], name)

    return get


def all_names(cls: type[BTFStruct]) -> set[str]:
    """Member names reachable on instances of ``cls``: its own, and those of its anonymous members."""
    names = set()
    t = cls._btf_type
    for name, m in zip(cls._fields, t.members, strict=True):
        if name in cls._anonymous:
            names |= all_names(struct_class(t.btf, m.type.resolved()))
        else:
            names.add(name)
    return names


def enum_class(btf: BTF, t: BTFType) -> type[enum.IntEnum] | None:
    if t.id in btf._enums:
        return btf._enums[t.id]
    cls: type[enum.IntEnum] | None = None
    names = [(n, v) for n, v in t.enumerators if n]
    if names and len({n for n, _ in names}) == len(names):
        make: Any = enum.IntEnum  # the functional API, with names only known at run time
        cls = make(t.name or f"anon_enum_{t.id}", names)
    btf._enums[t.id] = cls
    return cls
