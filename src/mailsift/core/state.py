"""Cheaper pickling for the frozen, slotted dataclasses a scan result is made of.

A result crosses a process boundary for every message (scan worker -> gateway). The
``__getstate__``/``__setstate__`` that ``dataclass(slots=True)`` generates call
``dataclasses.fields()`` for every object, and a result holds about thirty of them: unpickling
one cost the gateway ~0.18 ms, a twentieth of its CPU per message. These look the field names
up once per class; what is pickled (every field, in order) and how it is restored (no
``__init__``, no ``__post_init__``) stay the same.
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

__all__ = ["compact_state"]

T = TypeVar("T")


def compact_state(cls: type[T]) -> type[T]:
    """Class decorator, above ``@dataclass(frozen=True, slots=True)``."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    get = attrgetter(*names) if len(names) > 1 else (lambda obj: (getattr(obj, names[0]),))

    def __getstate__(self: object) -> tuple[Any, ...]:
        state: tuple[Any, ...] = get(self)
        return state

    def __setstate__(self: object, state: tuple[Any, ...]) -> None:
        for name, value in zip(names, state, strict=True):
            object.__setattr__(self, name, value)

    setattr(cls, "__getstate__", __getstate__)  # noqa: B010 (replacing the generated one)
    setattr(cls, "__setstate__", __setstate__)  # noqa: B010
    return cls
