"""A release whose original cannot be read ends ``failed`` with the reason (not ``claimed``,
not ``uncertain``); bulk and incident releases carry on past it with exact counts, and a
re-run once the original is back sends what is left, exactly once."""

from __future__ import annotations

import asyncio

from mailsift.config.schema import Settings
from mailsift.services.access import Principal
from mailsift.services.rollout import RolloutService
from mailsift.services.store_services import StoreServices
from mailsift.store import Recordable, Store, TraceQuery
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import FakeClock, make_result

ADMIN = Principal("alice", "admin")
RCPTS = ("bob@corp.example", "carol@corp.example")


def _services(store: Store, sink: SmtpSink) -> StoreServices:
    settings = store.settings.model_copy(update={"release_port": sink.port,
                                                 "release_host": sink.host})
    object.__setattr__(store, "settings", settings)
    return StoreServices.build(store)


def _quarantine(store: Store, n: int) -> dict[str, bytes]:
    raws = {f"u{i:03d}": make_message(message_id=f"<u{i}@example.org>", subject=f"Lunch {i}",
                                      text="Shall we meet at noon?\n") for i in range(n)}
    store.trace.record_many([Recordable(make_result(m, raw, recipients=RCPTS), raw)
                             for m, raw in raws.items()])
    return raws


def _lose(store: Store, raw: bytes) -> None:
    assert store.blobs.delete(store.blobs.digest(raw))


def _ledger(store: Store, message: str) -> set[str]:
    return {state for state, _ in store.releases.states(message).values()}


def test_single_release_of_a_missing_original_fails_with_the_reason(store: Store,
                                                                    sink: SmtpSink) -> None:
    svc = _services(store, sink)
    raws = _quarantine(store, 1)
    _lose(store, raws["u000"])
    report = asyncio.run(svc.release.release(ADMIN, "u000"))
    assert report.sent == [] and set(report.failed) == set(RCPTS)
    assert all("original unreadable" in why and "not found" in why
               for why in report.failed.values())
    assert _ledger(store, "u000") == {"failed"}  # never left claimed (or later uncertain)
    store.releases.expire_leases()
    assert _ledger(store, "u000") == {"failed"}
    assert sink.messages == []
    # the console and `mailsift quarantine show` read the reason from the ledger
    view = svc.quarantine.show(ADMIN, "u000")
    assert {s for s, _ in view.releases.values()} == {"failed"}
    assert all("original unreadable" in view.release_notes[r] for r in RCPTS)
    assert "cannot be read" in view.text
    # the original is back (restored from a backup, or the node that had it): a re-run sends
    store.blobs.put_many([raws["u000"]])
    again = asyncio.run(svc.release.release(ADMIN, "u000"))
    assert sorted(again.sent) == sorted(RCPTS) and again.already == []
    assert _ledger(store, "u000") == {"sent"}
    assert len(sink.messages) == 1


def test_bulk_release_carries_on_past_missing_originals(store: Store, sink: SmtpSink,
                                                        clock: FakeClock) -> None:
    svc = _services(store, sink)
    raws = _quarantine(store, 8)
    lost = ["u002", "u005"]
    for m in lost:
        _lose(store, raws[m])
    clock.advance(1)  # a job covers what was received before it started
    job = svc.bulk.start(ADMIN, TraceQuery(action="quarantine"))
    done = asyncio.run(svc.bulk.run(ADMIN, job.id, page_size=3))
    assert done.state == "done"
    assert (done.sent, done.failed, done.skipped) == (12, 4, 0)
    for m in lost:
        assert _ledger(store, m) == {"failed"}
    assert sum(len(m.rcpt_to) for m in sink.messages) == 12
    for m in lost:
        store.blobs.put_many([raws[m]])
    clock.advance(1)
    again = svc.bulk.start(ADMIN, TraceQuery(action="quarantine"))
    second = asyncio.run(svc.bulk.run(ADMIN, again.id))
    assert (second.sent, second.failed) == (4, 0)
    copies = [(m.message_id, r) for m in sink.messages for r in m.rcpt_to]
    assert sorted(copies) == sorted((f"<u{i}@example.org>", r) for i in range(8) for r in RCPTS)


def test_incident_release_carries_on_and_counts_exactly(store: Store, sink: SmtpSink) -> None:
    svc = _services(store, sink)
    raws = _quarantine(store, 4)
    _lose(store, raws["u001"])
    settings = Settings.model_validate({"store": store.settings.model_dump()})
    rollout = RolloutService(store, settings)
    incident = store.rollout.open_incident("rule:TEST_MISFIRE", reason="test",
                                           messages=list(raws))
    first = asyncio.run(rollout.release_incident(ADMIN, incident, offline=True))
    assert (first["released"], first["failed"], first["sent"]) == (3, 1, 6), first
    assert _ledger(store, "u001") == {"failed"}
    assert store.rollout.incident(incident).state == "open"  # type: ignore[union-attr]
    outcomes = dict(store.rollout.incident_messages(incident))
    assert outcomes["u001"].startswith("failed:") and "original unreadable" in outcomes["u001"]
    store.blobs.put_many([raws["u001"]])
    second = asyncio.run(rollout.release_incident(ADMIN, incident, offline=True))
    assert (second["released"], second["already"], second["failed"], second["sent"]) \
        == (1, 3, 0, 2), second
    assert store.rollout.incident(incident).state == "released"  # type: ignore[union-attr]
    assert len(sink.messages) == 4
    assert svc.release.store is store
