"""Pickling of the core dataclasses (results cross the scan-worker boundary this way)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, fields

import pytest

from mailsift.core.state import compact_state
from mailsift.core.verdict import Action
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import make_result


@compact_state
@dataclass(frozen=True, slots=True)
class _One:
    only: int


@compact_state
@dataclass(frozen=True, slots=True)
class _Two:
    a: int
    b: tuple[_One, ...] = ()

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("negative")


@pytest.mark.parametrize("obj", [_One(1), _Two(2, (_One(3),)), _Two(0)])
def test_round_trip_keeps_every_field(obj: object) -> None:
    assert pickle.loads(pickle.dumps(obj)) == obj


def test_restoring_does_not_run_init_and_refuses_a_wrong_shape() -> None:
    two = _Two(1)
    object.__setattr__(two, "a", -1)  # a state __init__ would refuse, as the default allows
    assert pickle.loads(pickle.dumps(two)).a == -1
    with pytest.raises(ValueError):
        _Two.__new__(_Two).__setstate__((1,))  # type: ignore[attr-defined]


def test_a_scan_result_survives_the_trip() -> None:
    result = make_result("m1", make_message(subject="Hello"), mail_from="a@example.org",
                         recipients={"b@example.com": Action.QUARANTINE, "c@example.com":
                                     Action.DELIVER})
    back = pickle.loads(pickle.dumps(result, protocol=5))
    for f in fields(result):
        if f.name != "message":
            assert getattr(back, f.name) == getattr(result, f.name), f.name
    assert back.message.subject == result.message.subject
    assert back.message.from_addr == result.message.from_addr
