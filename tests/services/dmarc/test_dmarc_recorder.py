"""The gateway observer that records evaluations: one flush per batch, rows in the store, a
failing store costs the rows (counted and logged), never the message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailsift.services.dmarc.evaluations import EvaluationRecorder
from mailsift.store import Store
from mailsift.store.dmarc import DmarcStore

DAY0 = 1_799_971_200


def test_one_flush_per_batch(store: Store, evaluation: Any) -> None:
    scheduled: list[Callable[[], None]] = []
    dmarc = DmarcStore(store.engine, store.clock)
    rec = EvaluationRecorder(dmarc, scheduled.append, discovery="psl",
                             clock=lambda: DAY0 + 10.0)
    for i in range(5):
        rec.observe(evaluation(msg_id=f"m{i}"))
    rec.observe(evaluation(policy_domain="", msg_id="none"))  # no record: nothing to report
    assert len(scheduled) == 1
    scheduled.pop()()
    assert rec.written == 5
    rows = dmarc.aggregate("example.com", DAY0, DAY0 + 86400)
    assert [r.count for r in rows] == [5]
    assert dmarc.latest_record("example.com", DAY0, DAY0 + 86400)[1] == "psl"
    rec.observe(evaluation(msg_id="late"))
    assert len(scheduled) == 1  # a new batch, a new flush


def test_a_failing_store_loses_rows_not_messages(store: Store, evaluation: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    scheduled: list[Callable[[], None]] = []
    dmarc = DmarcStore(store.engine, store.clock)
    rec = EvaluationRecorder(dmarc, scheduled.append)
    rec.observe(evaluation())
    with store.engine.begin() as conn:  # a real database error: the table is gone
        conn.exec_driver_sql("DROP TABLE dmarc_evaluations")
    scheduled.pop()()
    assert rec.lost == 1 and rec.written == 0
    assert "could not record 1 DMARC evaluation" in caplog.text


def test_recorded_but_not_sent_is_still_purged(store: Store, clock: Any,
                                               evaluation: Any) -> None:
    import asyncio

    from mailsift.config.dmarc import DmarcReportSettings
    from mailsift.services.dmarc.evaluations import evaluation_row
    from mailsift.services.dmarc.sending import run_purge

    dmarc = DmarcStore(store.engine, store.clock)
    old, new = (evaluation_row(evaluation(msg_id=m), t) for m, t in
                (("old", clock.now() - 20 * 86400), ("new", clock.now() - 3600)))
    assert old is not None and new is not None
    dmarc.record_many([old, new])

    async def once() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_purge(dmarc, DmarcReportSettings(keep_days=14),
                                             store.clock, stop))
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(once())
    assert dmarc.policy_domains(0, clock.now()) == ["example.com"]
    assert sum(r.count for r in dmarc.aggregate("example.com", 0, clock.now())) == 1
