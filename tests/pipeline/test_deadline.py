"""Per-detector deadlines: the timer interrupts an overrun, and leaves others' alarms alone."""

from __future__ import annotations

import signal
import time

import pytest

from mailsift.pipeline.deadline import DeadlineExceeded, deadline


def test_an_overrun_is_interrupted_and_a_quick_block_is_not() -> None:
    with deadline("quick", 1.0):
        pass
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught, deadline("slow", 0.05):
        while time.monotonic() - started < 5:
            pass
    assert caught.value.args == ("slow", 0.05)
    assert time.monotonic() - started < 1


def test_an_alarm_outside_any_deadline_reaches_the_previous_handler() -> None:
    seen: list[int] = []
    old = signal.signal(signal.SIGALRM, lambda signum, frame: seen.append(signum))
    try:
        with deadline("detector", 1.0):
            pass
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        time.sleep(0.1)
        assert seen == [signal.SIGALRM]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_a_handler_installed_over_ours_is_replaced_again() -> None:
    # The installed-handler check uses the raw getsignal (no enum conversion): it must still
    # notice that someone replaced our handler between two deadlines.
    old = signal.getsignal(signal.SIGALRM)
    try:
        with deadline("first", 1.0):
            pass
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded), deadline("second", 0.05):
            while time.monotonic() - started < 5:
                pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
