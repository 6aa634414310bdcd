"""The polling helpers: the truthy value comes back, ignored errors mean "not yet", and the
failure names what was awaited and what was seen last."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from mailsift.testing.waiting import WaitTimeout, await_until, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "ready", what="three", interval=0) == "ready"


def test_wait_until_counts_ignored_errors_as_not_yet() -> None:
    calls = iter([OSError("refused"), OSError("refused"), 7])

    def poll() -> int:
        item = next(calls)
        if isinstance(item, BaseException):
            raise item
        return item

    assert wait_until(poll, what="a listener", interval=0, ignore=(OSError,)) == 7


def test_wait_until_names_the_last_value_or_error() -> None:
    with pytest.raises(WaitTimeout, match=r"waiting for nothing \(last value: 0\)"):
        wait_until(lambda: 0, what="nothing", timeout=0.05, interval=0.01)

    def refused() -> int:
        raise OSError("refused")

    with pytest.raises(WaitTimeout, match=r"last error: OSError\('refused'\)"):
        wait_until(refused, what="a port", timeout=0.05, interval=0.01, ignore=(OSError,))


def test_wait_until_does_not_swallow_other_errors() -> None:
    def broken() -> int:
        raise KeyError("x")

    with pytest.raises(KeyError):
        wait_until(broken, what="x", ignore=(OSError,))


def test_await_until_takes_plain_and_async_conditions() -> None:
    async def main() -> None:
        counter = itertools.count()

        async def later() -> int:
            return next(counter) if next(counter) > 2 else 0

        assert await await_until(later, what="later", interval=0) > 2
        assert await await_until(lambda: "now", what="now") == "now"
        with pytest.raises(WaitTimeout, match=r"waiting for never \(last value: ''\)"):
            await await_until(lambda: "", what="never", timeout=0.05, interval=0.01)

    asyncio.run(main())
