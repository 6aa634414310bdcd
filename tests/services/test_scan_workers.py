"""The scan worker pool: real spawned processes, fed over their sockets from the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from mailsift.core.errors import DetectorTimeout
from mailsift.services.scan_workers import ScanWorkerError, WorkerPool
from mailsift.testing.waiting import await_until
from mailsift.testing.workers import scripted_worker


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _run(body: Callable[[WorkerPool], Awaitable[None]]) -> None:
    pool = WorkerPool(2, scripted_worker, ())

    async def main() -> list[int]:
        try:
            await body(pool)
        finally:
            pids = pool.pids()
            await pool.aclose()
        return pids

    pids = asyncio.run(main())
    assert pids and not [p for p in pids if _alive(p)]  # closing ends every worker


def test_calls_are_answered_by_both_workers_and_large_payloads_pass() -> None:
    async def body(pool: WorkerPool) -> None:
        big = b"x" * (3 << 20)  # larger than the stream limit and a socket buffer
        answers = await asyncio.gather(*(pool.call(("echo", big if i == 0 else i), 30)
                                         for i in range(8)))
        assert answers[0][1] == big
        assert [a[1] for a in answers[1:]] == list(range(1, 8))
        assert len({pid for pid, _ in answers}) == 2  # both workers took part
    _run(body)


def test_an_error_in_the_worker_is_reported_and_the_worker_kept() -> None:
    async def body(pool: WorkerPool) -> None:
        await asyncio.gather(*(pool.call(("echo", i), 30) for i in range(2)))
        before = set(pool.pids())
        with pytest.raises(ScanWorkerError, match="ValueError: bad rule"):
            await pool.call(("raise", "bad rule"), 30)
        await pool.call(("echo", 1), 30)
        assert set(pool.pids()) == before
    _run(body)


def test_a_worker_that_dies_fails_only_its_message_and_is_replaced() -> None:
    async def body(pool: WorkerPool) -> None:
        await asyncio.gather(*(pool.call(("echo", i), 30) for i in range(2)))
        before = set(pool.pids())
        with pytest.raises(ScanWorkerError, match="died"):
            await pool.call(("exit", 3), 30)
        answers = await asyncio.gather(*(pool.call(("echo", i), 30) for i in range(4)))
        assert [a for _, a in answers] == [0, 1, 2, 3]
        assert len(set(pool.pids()) - before) == 1 and len(pool.pids()) == 2
    _run(body)


def test_a_worker_past_the_timeout_is_killed_and_replaced() -> None:
    async def body(pool: WorkerPool) -> None:
        await asyncio.gather(*(pool.call(("echo", i), 30) for i in range(2)))
        before = set(pool.pids())
        started = time.monotonic()
        with pytest.raises(DetectorTimeout):
            await pool.call(("sleep", 60), 0.5)
        assert time.monotonic() - started < 5
        (stuck,) = await await_until(lambda: before - set(pool.pids()), timeout=10,
                                     what="the stuck worker to be replaced")
        await await_until(lambda: not _alive(stuck), timeout=10,
                          what=f"the stuck worker {stuck} to end")
        assert (await pool.call(("echo", "next"), 30))[1] == "next"
    _run(body)


def test_a_caller_that_gives_up_leaves_the_worker_to_finish() -> None:
    async def body(pool: WorkerPool) -> None:
        await asyncio.gather(*(pool.call(("echo", i), 30) for i in range(2)))
        before = set(pool.pids())
        call = asyncio.ensure_future(pool.call(("sleep", 0.3), 30))
        await await_until(lambda: len(pool._running) == 1, what="the call to reach a worker")
        call.cancel()  # the SMTP client went away mid-scan
        await asyncio.gather(*(pool.call(("echo", i), 30) for i in range(4)))
        # the abandoned scan runs to its end and its worker goes back to the pool
        await await_until(lambda: not pool._running, timeout=10,
                          what="the abandoned scan to finish")
        assert set(pool.pids()) == before  # nobody was killed
    _run(body)


def test_no_free_worker_within_the_queue_timeout_is_a_timeout() -> None:
    async def body(pool: WorkerPool) -> None:
        slow = [asyncio.ensure_future(pool.call(("sleep", 1.0), 30)) for _ in range(2)]
        await await_until(lambda: len(pool._running) == 2, what="both workers busy")
        with pytest.raises(DetectorTimeout, match="free"):
            await pool.call(("echo", 1), 30, queue_timeout=0.3)
        await asyncio.gather(*slow)
    _run(body)


def test_retiring_starts_new_workers_and_lets_running_calls_finish() -> None:
    async def body(pool: WorkerPool) -> None:
        await asyncio.gather(*(pool.call(("echo", i), 30) for i in range(2)))
        old = set(pool.pids())
        running = asyncio.ensure_future(pool.call(("sleep", 0.5), 30))
        await await_until(lambda: len(pool._running) == 1, what="the call to reach a worker")
        pool.retire_all()
        pid, _ = await running  # finished on an old worker
        assert pid in old
        answers = await asyncio.gather(*(pool.call(("echo", i), 30) for i in range(4)))
        assert not {p for p, _ in answers} & old
        await await_until(lambda: not [p for p in old if _alive(p)], timeout=10,
                          what=f"the retired workers {sorted(old)} to end")
    _run(body)


def test_a_worker_that_cannot_start_says_why_and_is_not_restarted_in_a_loop() -> None:
    pool = WorkerPool(1, scripted_worker, (True,))

    async def main() -> None:
        try:
            for _ in range(3):
                with pytest.raises(ScanWorkerError, match=r"could not start: .*bad pattern"):
                    await pool.call(("echo", 1), 30)
            assert len(pool.pids()) == 1
        finally:
            await pool.aclose()
    asyncio.run(main())


def test_the_context_is_sent_to_a_worker_only_when_its_key_changes() -> None:
    async def main(pool: WorkerPool) -> None:
        first = await asyncio.gather(*(pool.call(("context", None), 30, ("v1", ["a"]))
                                       for _ in range(4)))
        assert {tuple(c) for _, c in first} == {("a",)}
        # same key: the workers keep what they have (the key names the content), so a
        # different value under the same key is not even sent
        same = await asyncio.gather(*(pool.call(("context", None), 30, ("v1", ["changed"]))
                                      for _ in range(4)))
        assert {tuple(c) for _, c in same} == {("a",)}
        fresh = await asyncio.gather(*(pool.call(("context", None), 30, ("v2", ["b"]))
                                       for _ in range(4)))
        assert {tuple(c) for _, c in fresh} == {("b",)}
        assert {p for p, _ in first} == {p for p, _ in fresh}  # both workers, kept
        assert (await pool.call(("context", None), 30))[1] is None  # no context: none
    _run(main)


def test_a_replacement_worker_is_sent_the_context() -> None:
    async def main(pool: WorkerPool) -> None:
        await asyncio.gather(*(pool.call(("context", None), 30, ("v1", ["a"]))
                               for _ in range(4)))
        with pytest.raises(ScanWorkerError):
            await pool.call(("exit", 1), 30, ("v1", ["a"]))
        answers = await asyncio.gather(*(pool.call(("context", None), 30, ("v1", ["a"]))
                                         for _ in range(6)))
        assert {tuple(c) for _, c in answers} == {("a",)}
    _run(main)


def test_a_burst_does_not_get_healthy_workers_killed() -> None:
    """Issue 18.7: the scan deadline included the wait for a free worker, so under a burst a
    healthy worker that took a queued message late was killed as "stuck". Six 0.6 s scans on
    two workers with a 1 s scan timeout: each scan is well inside it, the waits are not."""
    async def body(pool: WorkerPool) -> None:
        await asyncio.gather(*(pool.call(("echo", i), 30) for i in range(2)))  # started
        before = set(pool.pids())
        answers = await asyncio.gather(*(pool.call(("sleep", 0.6), 1.0)
                                         for _ in range(6)))
        assert [a[1] for a in answers] == ["slept"] * 6
        assert set(pool.pids()) == before  # nobody was killed
    _run(body)


def test_waiting_too_long_for_a_worker_defers_without_killing_anyone() -> None:
    async def body(pool: WorkerPool) -> None:
        await asyncio.gather(*(pool.call(("echo", i), 30) for i in range(2)))
        before = set(pool.pids())
        busy = [asyncio.ensure_future(pool.call(("sleep", 1.0), 5)) for _ in range(2)]
        await await_until(lambda: len(pool._running) == 2, what="both workers busy")
        with pytest.raises(DetectorTimeout, match="no scan worker free"):
            await pool.call(("echo", 1), 5, queue_timeout=0.3)
        assert [a[1] for a in await asyncio.gather(*busy)] == ["slept", "slept"]
        assert set(pool.pids()) == before
    _run(body)
