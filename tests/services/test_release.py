"""Releasing quarantined mail: single, by request, by query; never twice to anyone."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from mailsift.core.envelope import Envelope
from mailsift.core.errors import InputError
from mailsift.core.findings import Finding
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, Category
from mailsift.services.access import AccessDenied, Principal
from mailsift.services.store_services import StoreServices
from mailsift.store import Recordable, Store, TraceQuery
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import FakeClock, SmtpSinkProcess, make_result

ADMIN = Principal("alice", "admin")
ANALYST = Principal("sam", "analyst")
BOB = Principal("bob-token", "recipient", "bob@corp.example")


def _services(store: Store, sink: SmtpSink | SmtpSinkProcess, **kw: object) -> StoreServices:
    settings = store.settings.model_copy(update={"release_port": sink.port,
                                                 "release_host": sink.host})
    object.__setattr__(store, "settings", settings)
    return StoreServices.build(store, **kw)  # type: ignore[arg-type]


def _rule(version: str) -> Finding:
    return Finding("RULE_FP", 7.0, ("x",), "rules", "phish", artifact="rules/default",
                   version=version)


def _quarantine(store: Store, n: int, *, start: int = 0, version: str = "7",
                rcpts: tuple[str, ...] = ("bob@corp.example", "carol@corp.example"),
                at: float | None = None) -> None:
    items = []
    template = make_message(message_id="<qTEMPLATE@example.org>", subject="qTEMPLATE")
    for i in range(start, start + n):
        raw = template.replace(b"TEMPLATE", str(i).encode())
        res = make_result(f"q{i:05d}", raw, recipients=rcpts, findings=[_rule(version)],
                          versions={"rules/default": version})
        items.append(Recordable(res, raw, received_at=at))
    for k in range(0, len(items), 500):
        store.trace.record_many(items[k:k + 500])


def test_release_one_message_with_original_envelope(store: Store, sink: SmtpSink) -> None:
    svc = _services(store, sink)
    raw = make_message(message_id="<orig@example.org>")
    store.trace.record(make_result("m1", raw, mail_from="Sender@Example.org",
                                   recipients=("Bob@Corp.example", "carol@corp.example")), raw)
    report = asyncio.run(svc.release.release(ANALYST, "m1", ["bob@corp.example"]))
    assert report.sent == ["bob@corp.example"]
    (got,) = sink.messages
    assert got.mail_from == "Sender@Example.org"
    assert got.rcpt_to == ("Bob@Corp.example",)  # the original case
    assert got.header("X-Mailsift-Release-Id") == [report.release_ids[0]]
    assert got.data.endswith(raw.split(b"\n", 1)[1][-50:].replace(b"\n", b"\r\n"))
    # again, by someone else: nothing is sent twice
    again = asyncio.run(svc.release.release(ADMIN, "m1"))
    assert again.already == ["bob@corp.example"] and again.sent == ["carol@corp.example"]
    assert asyncio.run(svc.release.release(ADMIN, "m1")).sent == []
    assert len(sink.deliveries()) == 2
    rec = store.trace.get("m1")
    assert rec is not None and {r.status for r in rec.recipients} == {"released"}
    actions = [e.action for e in store.audit.entries()]
    assert actions.count("quarantine.release") == 3


def test_release_permissions_and_validation(store: Store, sink: SmtpSink) -> None:
    svc = _services(store, sink)
    _quarantine(store, 1)
    with pytest.raises(AccessDenied):
        asyncio.run(svc.release.release(BOB, "q00000"))
    with pytest.raises(InputError, match="not a quarantined recipient"):
        asyncio.run(svc.release.release(ADMIN, "q00000", ["eve@corp.example"]))
    with pytest.raises(InputError, match="no scanner"):
        asyncio.run(svc.release.release(ADMIN, "q00000", rescan=True))
    assert sink.messages == []


def test_refused_recipient_can_be_retried(store: Store, sink: SmtpSink) -> None:
    svc = _services(store, sink)
    _quarantine(store, 1)
    sink.refuse.add("carol@corp.example")
    report = asyncio.run(svc.release.release(ADMIN, "q00000"))
    assert report.sent == ["bob@corp.example"]
    assert "550" in report.failed["carol@corp.example"]
    sink.refuse.clear()
    assert asyncio.run(svc.release.release(ADMIN, "q00000")).sent == ["carol@corp.example"]
    assert sorted(r for _, r in sink.deliveries()) == ["bob@corp.example", "carol@corp.example"]


def test_connection_lost_during_data_is_uncertain_not_resent(store: Store,
                                                             sink: SmtpSink) -> None:
    svc = _services(store, sink)
    _quarantine(store, 1, rcpts=("bob@corp.example",))
    sink.drop_data_for.add("bob@corp.example")
    report = asyncio.run(svc.release.release(ADMIN, "q00000"))
    assert report.uncertain == ["bob@corp.example"] and report.sent == []
    sink.drop_data_for.clear()
    assert asyncio.run(svc.release.release(ADMIN, "q00000")).already == ["bob@corp.example"]
    assert len(sink.messages) == 1
    # at-least-once on explicit request, with the same id so the next hop can dedupe
    forced = asyncio.run(svc.release.release(ADMIN, "q00000", reclaim_uncertain=True))
    assert forced.sent == ["bob@corp.example"]
    ids = {m.header("X-Mailsift-Release-Id")[0] for m in sink.messages}
    assert len(ids) == 1


def test_rescan_keeps_what_is_still_bad(store: Store, sink: SmtpSink) -> None:
    seen: list[Envelope] = []

    def rescan(raw: bytes, env: Envelope) -> ScanResult:
        seen.append(env)
        return make_result("rescan", raw, recipients={
            "bob@corp.example": Action.DELIVER, "carol@corp.example": Action.QUARANTINE})

    svc = _services(store, sink, rescan=rescan)
    _quarantine(store, 1)
    report = asyncio.run(svc.release.release(ADMIN, "q00000", rescan=True))
    assert report.sent == ["bob@corp.example"]
    assert "re-scan" in report.kept["carol@corp.example"]
    assert seen[0].mail_from == "sender@example.org"
    assert set(seen[0].rcpt_to) == {"bob@corp.example", "carol@corp.example"}
    assert [r for _, r in sink.deliveries()] == ["bob@corp.example"]


def test_release_request_flow(store: Store, sink: SmtpSink) -> None:
    svc = _services(store, sink)
    _quarantine(store, 1)
    req = svc.quarantine.request_release(BOB, "q00000", reason="it is my invoice")
    assert req.recipient == "bob@corp.example" and req.state == "pending"
    assert [r.id for r in svc.quarantine.requests(BOB)] == [req.id]
    with pytest.raises(AccessDenied):
        asyncio.run(svc.release.decide_request(ANALYST, req.id, approve=True))
    info, report = asyncio.run(svc.release.decide_request(ADMIN, req.id, approve=True))
    assert info.state == "approved" and report is not None
    assert [r for _, r in sink.deliveries()] == ["bob@corp.example"]
    req2 = svc.quarantine.request_release(ADMIN, "q00000", recipient="carol@corp.example")
    info2, report2 = asyncio.run(svc.release.decide_request(ADMIN, req2.id, approve=False))
    assert info2.state == "denied" and report2 is None
    assert len(sink.messages) == 1


def test_bulk_release_by_rule_version_and_window(store: Store, sink: SmtpSink,
                                                 clock: FakeClock) -> None:
    svc = _services(store, sink)
    t0 = clock.now()
    _quarantine(store, 30, version="7", at=t0 + 10)
    _quarantine(store, 5, start=100, version="6", at=t0 + 10)  # other version
    _quarantine(store, 5, start=200, version="7", at=t0 + 5000)  # outside the window
    q = TraceQuery(finding="RULE_FP", version="7", since=t0, until=t0 + 1000)
    preview = svc.bulk.preview(ANALYST, q)
    assert (preview.recipients, preview.messages, preview.already_released) == (60, 30, 0)
    job = svc.bulk.start(ANALYST, q)
    done = asyncio.run(svc.bulk.run(ANALYST, job.id, page_size=7))
    assert (done.state, done.total, done.sent, done.skipped) == ("done", 60, 60, 0)
    assert len(sink.deliveries()) == 60
    assert all(n == 1 for n in sink.copies().values())
    assert svc.bulk.preview(ANALYST, q).already_released == 60
    # the same release again, as a new job and as a re-run of the old one: nothing moves
    job2 = svc.bulk.start(ADMIN, q)
    assert job2.total == 0
    assert asyncio.run(svc.bulk.run(ADMIN, job2.id)).sent == 0
    assert asyncio.run(svc.bulk.run(ADMIN, job.id)).sent == 60  # counters accumulate only
    assert len(sink.deliveries()) == 60


def test_bulk_release_resumes_after_interruption(store: Store, sink: SmtpSink,
                                                 clock: FakeClock) -> None:
    svc = _services(store, sink)
    _quarantine(store, 120, rcpts=("bob@corp.example",))
    clock.advance(1)  # the job covers what was received before it started
    job = svc.bulk.start(ADMIN, TraceQuery(finding="RULE_FP"))

    async def interrupted() -> None:
        task = asyncio.create_task(svc.bulk.run(ADMIN, job.id, page_size=10))
        while len(sink.messages) < 35:
            assert not task.done(), task.result()
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    mid = store.jobs.get(job.id)
    assert mid is not None and mid.state == "interrupted"
    assert 0 < len(sink.messages) < 120
    clock.advance(store.settings.release_lease_seconds + 1)  # in-flight claims expire
    final = asyncio.run(svc.bulk.run(ADMIN, job.id, page_size=10))
    assert final.state == "done"
    copies = sink.copies()
    assert all(n == 1 for n in copies.values())
    counts = store.releases.job_counts(job.id)
    # every recipient is either delivered once or (cut mid-transaction) uncertain, never twice;
    # claims never handed to SMTP were given back and sent on resume
    assert counts.get("sent", 0) + counts.get("uncertain", 0) == 120
    assert counts.get("uncertain", 0) <= store.settings.release_connections
    assert len(copies) >= counts.get("sent", 0)


def test_two_bulk_jobs_racing_never_double_send(store: Store, sink: SmtpSink,
                                                clock: FakeClock) -> None:
    svc = _services(store, sink)
    _quarantine(store, 80)
    clock.advance(1)
    q = TraceQuery(finding="RULE_FP")
    j1, j2 = svc.bulk.start(ADMIN, q), svc.bulk.start(ANALYST, q)

    async def both() -> None:
        await asyncio.gather(svc.bulk.run(ADMIN, j1.id, page_size=9),
                             svc.bulk.run(ANALYST, j2.id, page_size=13))

    asyncio.run(both())
    assert len(sink.deliveries()) == 160
    assert all(n == 1 for n in sink.copies().values())


# Ten thousand on PostgreSQL, the store of large and multi-node sites. SQLite runs the same
# batched path (claims, sends, mark-sent batches, the second job finding nothing) on 2,500,
# still many batches and far past the 100-at-a-time limit the gateway exists to lift; the
# second 10,000 cost about 25 s of the suite's CPU (docs/testing.md, *Timings*).
BULK_SCALE = {"postgresql": 10_000, "sqlite": 2_500}


@pytest.mark.slow
def test_bulk_release_ten_thousand(store: Store, clock: FakeClock, tmp_path: Path,
                                   backend: str) -> None:
    n = BULK_SCALE[backend]
    # The sink runs in its own process: sharing the GIL with it would halve the rate.
    sink = SmtpSinkProcess(tmp_path / "sink.jsonl").start()
    try:
        svc = _services(store, sink)  # type: ignore[arg-type]
        _quarantine(store, n, rcpts=("bob@corp.example",))
        clock.advance(1)
        q = TraceQuery(finding="RULE_FP", version="7")
        assert svc.bulk.preview(ADMIN, q).messages == n
        job = svc.bulk.start(ADMIN, q)
        done = asyncio.run(svc.bulk.run(ADMIN, job.id))
        assert done.sent == n and done.failed == 0
        again = svc.bulk.start(ADMIN, q)
        assert again.total == 0
        assert asyncio.run(svc.bulk.run(ADMIN, again.id)).sent == 0
        copies = sink.copies()
        assert len(copies) == n and set(copies.values()) == {1}
    finally:
        sink.stop()


def test_category_is_recorded_for_dataclass_replace() -> None:
    # guard the helper itself: per-recipient verdicts carry the category asked for
    res = make_result("x", b"raw", category=Category.SPAM)
    assert {v.category for v in res.recipients.values()} == {Category.SPAM}
    assert dataclasses.is_dataclass(res)
