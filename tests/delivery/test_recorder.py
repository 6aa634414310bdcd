"""The store writer's group commit: what one batch holds lands in one transaction, and one bad
item does not fail the others (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest

from mailsift.core.errors import StoreError
from mailsift.core.verdict import Action
from mailsift.delivery.recorder import AsyncRecorder
from mailsift.store import Store
from mailsift.store.deliveries import Attempt, DeliveryLog
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import make_result


def _result(ref: str):  # type: ignore[no-untyped-def]
    raw = make_message(message_id=f"<{ref}@example.org>")
    return make_result(ref, raw, recipients={"a@example.net": Action.DELIVER}), raw


def test_a_record_and_its_status_in_one_batch_both_land(store: Store) -> None:
    recorder = AsyncRecorder(store.trace)

    async def main() -> None:
        res, raw = _result("ms-one")
        recorded = asyncio.ensure_future(recorder.record(res, raw, 1.0))
        await asyncio.sleep(0)  # queued: the writer takes it and the status below together
        status = recorder.set_status_soon("ms-one", "delivered", ["a@example.net"])
        await asyncio.gather(recorded, status)
        assert await recorder.statuses("ms-one") == {"a@example.net": "delivered"}
        await recorder.close()
    asyncio.run(main())


def test_one_bad_item_fails_alone(store: Store) -> None:
    recorder = AsyncRecorder(store.trace)

    async def main() -> None:
        first, raw = _result("ms-dup")
        await recorder.record(first, raw, 1.0)
        again, raw2 = _result("ms-dup")  # the same id twice: refused by the store
        fine, raw3 = _result("ms-fine")
        outcomes = await asyncio.gather(
            recorder.record(again, raw2, 2.0), recorder.record(fine, raw3, 2.0),
            recorder.set_status("ms-dup", "delivered", ["a@example.net"]),
            return_exceptions=True)
        assert isinstance(outcomes[0], StoreError)
        assert outcomes[1] is None and outcomes[2] is None
        assert await recorder.statuses("ms-fine") == {"a@example.net": "accepted"}
        assert await recorder.statuses("ms-dup") == {"a@example.net": "delivered"}
        await recorder.close()
    asyncio.run(main())


def test_close_commits_what_nobody_waited_for(store: Store) -> None:
    recorder = AsyncRecorder(store.trace)

    async def main() -> None:
        res, raw = _result("ms-late")
        await recorder.record(res, raw, 1.0)
        recorder.set_status_soon("ms-late", "delivered", ["a@example.net"])
        await recorder.close()
    asyncio.run(main())
    assert store.trace.statuses("ms-late") == {"a@example.net": "delivered"}


@pytest.mark.parametrize("status", ["bogus"])
def test_an_unknown_status_is_refused_without_losing_the_batch(store: Store, status: str) -> None:
    recorder = AsyncRecorder(store.trace)

    async def main() -> None:
        res, raw = _result("ms-ok")
        outcomes = await asyncio.gather(recorder.record(res, raw, 1.0),
                                        recorder.set_status("ms-ok", status),
                                        return_exceptions=True)
        assert outcomes[0] is None and isinstance(outcomes[1], StoreError)
        assert await recorder.statuses("ms-ok") == {"a@example.net": "accepted"}
        await recorder.close()
    asyncio.run(main())


def _count_transactions(store: Store) -> list[int]:
    """Wrap the store's batch write to count its calls (each one is one transaction)."""
    calls: list[int] = []
    write = store.trace.write_batch

    def counted(items, changes, attempts=()):  # type: ignore[no-untyped-def]
        calls.append(len(items) + len(changes) + len(attempts))
        return write(items, changes, attempts)
    store.trace.write_batch = counted  # type: ignore[method-assign]
    return calls


def test_a_status_nobody_waits_for_rides_with_the_next_write(store: Store) -> None:
    recorder = AsyncRecorder(store.trace)
    calls = _count_transactions(store)

    async def main() -> None:
        first, raw = _result("ms-first")
        await recorder.record(first, raw, 1.0)
        status = recorder.set_status_soon("ms-first", "delivered", ["a@example.net"])
        await asyncio.sleep(0.005)  # the writer holds the status back ...
        second, raw2 = _result("ms-second")
        await recorder.record(second, raw2, 2.0)  # ... until a write somebody waits for
        await status
        await recorder.close()
    asyncio.run(main())
    assert calls == [1, 2]
    assert store.trace.statuses("ms-first") == {"a@example.net": "delivered"}


def test_delivery_attempts_ride_with_the_status_they_explain(store: Store) -> None:
    first, raw = _result("ms-first")
    store.trace.record(first, raw)  # recorded earlier, as the gateway does before relaying
    recorder = AsyncRecorder(store.trace)
    calls = _count_transactions(store)
    attempt = Attempt("A@example.net", 5.0, "failed", "550 5.1.1 no such user")

    async def relay_refused() -> None:
        noted = recorder.note_attempts("ms-first", [attempt])
        await recorder.set_status("ms-first", "failed", ["a@example.net"])
        await noted
        await recorder.close()
    asyncio.run(relay_refused())
    assert calls == [2]  # the attempt and the status: one transaction
    (kept,) = DeliveryLog(store.engine).of("ms-first")
    assert (kept.recipient, kept.outcome, kept.code, kept.text) == (
        "a@example.net", "failed", 550, "5.1.1 no such user")


def test_a_status_alone_is_written_after_a_short_wait(store: Store) -> None:
    recorder = AsyncRecorder(store.trace)

    async def main() -> None:
        res, raw = _result("ms-alone")
        await recorder.record(res, raw, 1.0)
        await asyncio.wait_for(recorder.set_status_soon("ms-alone", "delivered"), 5)
        assert store.trace.statuses("ms-alone") == {"a@example.net": "delivered"}
        await recorder.close()
    asyncio.run(main())


def test_close_commits_a_status_that_was_waiting_to_ride(store: Store) -> None:
    recorder = AsyncRecorder(store.trace)

    async def main() -> None:
        res, raw = _result("ms-riding")
        await recorder.record(res, raw, 1.0)
        recorder.set_status_soon("ms-riding", "delivered", ["a@example.net"])
        await asyncio.sleep(0.01)  # taken by the writer, waiting for company
        await recorder.close()
    asyncio.run(main())
    assert store.trace.statuses("ms-riding") == {"a@example.net": "delivered"}
