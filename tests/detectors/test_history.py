"""Sender history: both implementations behind one protocol (bounded, persistent for SQLite),
learning only from delivered clean/bulk mail, and the history detector's signals."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailsift.config.schema import Settings
from mailsift.core.auth import AuthResults, AuthStatus, DmarcResult
from mailsift.core.context import ScanContext
from mailsift.core.envelope import Envelope
from mailsift.core.errors import ConfigError
from mailsift.core.findings import Stage
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, Category, DecisionStep, Verdict
from mailsift.detectors.base import Detector, Services
from mailsift.detectors.history import CODES, HistoryDetector, build
from mailsift.history import (
    MemoryHistory,
    SenderHistory,
    SqliteHistory,
    learn,
    learn_many,
    open_history,
    shared_history,
)
from mailsift.history.base import Learned
from mailsift.history.sql import SqlHistory
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import PG_URL, pg_unavailable


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A throw-away PostgreSQL schema (skipped when the server is unreachable)."""
    if why := pg_unavailable():
        pytest.skip(why)
    schema = f"mailsift_h_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        import psycopg

        with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["memory", "sqlite", "database"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SenderHistory]:
    if request.param == "memory":
        yield MemoryHistory(max_entries=100)
    elif request.param == "database":
        schema = request.getfixturevalue("pg_schema")
        sql = SqlHistory(PG_URL, schema=schema, max_entries=100, prune_every=10)
        yield sql
        sql.close()
    else:
        hist = SqliteHistory(str(tmp_path / "h.db"), max_entries=100, prune_every=10)
        yield hist
        hist.close()


def test_protocol_and_counts(history: SenderHistory) -> None:
    assert isinstance(history, SenderHistory)
    assert history.pair("a@x.test", "b@y.test") is None and history.learned() == 0
    history.record("A@x.test", "x.test", ["b@y.test", "c@y.test"], 100.0, "Alice Smith",
                   link_domains=["docs.test"])
    history.record("a@x.test", "x.test", ["b@y.test"], 200.0, "Smith, Alice")
    pair = history.pair("a@x.test", "B@y.test")
    assert pair is not None and (pair.first_seen, pair.last_seen, pair.count) == (100, 200, 2)
    stats = history.sender("a@x.test")
    assert stats is not None and stats.count == 2 and stats.recipients == 2
    dom = history.domain("x.test")
    assert dom is not None and dom.recipients == 2
    assert history.domain_pair("x.test", "c@y.test") is not None
    assert history.addresses_for_name("alice smith") == ("a@x.test",)
    assert history.domain_first_seen("docs.test") == 100.0
    assert history.domain_first_seen("x.test") == 100.0
    assert history.domain_first_seen("never.test") is None
    assert history.learned() == 2


def test_record_many_equals_records_one_by_one(history: SenderHistory,
                                               tmp_path: Path) -> None:
    """The gateway learns a writer batch at a time (one transaction on SQLite): the same
    history as recording each message on its own."""
    entries = [Learned("A@x.test", "x.test", ["b@y.test", "c@y.test"], 100.0, "Alice Smith",
                       ["docs.test"]),
               Learned("a@x.test", "x.test", ["b@y.test"], 200.0, "Smith, Alice"),
               Learned("z@w.test", "w.test", ["b@y.test"], 150.0)]
    history.record_many(entries)
    history.record_many([])
    one = SqliteHistory(str(tmp_path / "one.db"))
    for entry in entries:
        one.record(*entry)
    for h in (history, one):
        assert h.learned() == 3
        pair = h.pair("a@x.test", "b@y.test")
        assert pair is not None and (pair.first_seen, pair.last_seen, pair.count) == (100, 200, 2)
        assert h.sender("a@x.test") == one.sender("a@x.test")
        assert h.domain("x.test") == one.domain("x.test")
        assert h.addresses_for_name("alice smith") == ("a@x.test",)
        assert h.domain_first_seen("docs.test") == 100.0
    one.close()


def test_sqlite_record_many_is_one_transaction(tmp_path: Path) -> None:
    """A failing entry rolls the whole batch back: nothing half-learned."""
    hist = SqliteHistory(str(tmp_path / "h.db"))
    bad = Learned("b@x.test", "x.test", [None], 1.0)  # type: ignore[list-item]
    with pytest.raises(AttributeError):
        hist.record_many([Learned("a@x.test", "x.test", ["r@y.test"], 1.0), bad])
    assert hist.learned() == 0 and hist.pair("a@x.test", "r@y.test") is None
    hist.close()


def test_bounded(history: SenderHistory) -> None:
    for i in range(300):
        history.record(f"s{i}@x{i}.test", f"x{i}.test", ["r@y.test"], float(i))
    if isinstance(history, SqliteHistory):
        history.prune()
        (rows,) = history._db.execute("SELECT count(*) FROM hist_pair").fetchone()
        assert rows <= 100
    elif isinstance(history, SqlHistory):
        history.prune()
        with history.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM hist_pair").scalar_one() <= 100
    else:
        assert len(history) <= 100  # type: ignore[arg-type]
    assert history.pair("s299@x299.test", "r@y.test") is not None  # the newest survive
    assert history.pair("s0@x0.test", "r@y.test") is None  # the oldest went first


def test_sqlite_persists(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "hist.db")
    first = SqliteHistory(path)
    first.record("a@x.test", "x.test", ["b@y.test"], 1.0)
    first.close()
    again = SqliteHistory(path)
    assert again.learned() == 1 and again.pair("a@x.test", "b@y.test") is not None
    again.close()


def test_open_and_shared_history(tmp_path: Path) -> None:
    assert isinstance(open_history(Settings().history), MemoryHistory)
    with pytest.raises(ConfigError):
        open_history(Settings(history={"backend": "sqlite"}).history)
    assert shared_history(Settings().history) is shared_history(Settings().history)
    other = Settings(history={"max_entries": 500}).history
    assert shared_history(other) is not shared_history(Settings().history)


def test_history_detector_needs_a_history() -> None:
    """The history detector is nothing without one: building it without fails, loudly."""
    with pytest.raises(ConfigError, match="needs the sender history"):
        build(Settings(), Services())


def _result(action: Action, category: Category, auth: AuthResults | None = None,
            rcpt: tuple[str, ...] = ("bob@example.org",)) -> ScanResult:
    msg = parse_message(make_message(from_="Alice <alice@sender.test>",
                                     text="see https://docs.test/x\n"))
    verdict = Verdict(category=category, action=action, score=0.0,
                      decided_by=DecisionStep.DETECTION, explanation="test")
    return ScanResult(id="1", verdict=verdict, message=msg, envelope=Envelope(rcpt_to=rcpt),
                      auth=auth)


def test_learns_only_delivered_clean_or_bulk_mail() -> None:
    hist = MemoryHistory()
    assert not learn(hist, _result(Action.QUARANTINE, Category.PHISH), "sender.test", 5.0)
    assert not learn(hist, _result(Action.JUNK, Category.SPAM), "sender.test", 5.0)
    assert not learn(hist, _result(Action.DELIVER, Category.CLEAN,
                                   AuthResults(dmarc=DmarcResult(AuthStatus.FAIL, "sender.test"))),
                     "sender.test", 5.0)
    assert hist.learned() == 0
    assert learn(hist, _result(Action.DELIVER, Category.CLEAN), "sender.test", 5.0)
    assert learn(hist, _result(Action.TAG, Category.BULK), "sender.test", 6.0)
    assert hist.pair("alice@sender.test", "bob@example.org") is not None
    assert hist.domain_first_seen("docs.test") == 5.0
    # per-recipient verdicts: only the recipients whose copy was delivered are learned
    res = _result(Action.DELIVER, Category.CLEAN, rcpt=("a@example.org", "q@example.org"))
    ok = Verdict(category=Category.CLEAN, action=Action.DELIVER, score=0.0,
                 decided_by=DecisionStep.DETECTION, explanation="test")
    res = replace(res, recipients={"a@example.org": ok,
                                   "q@example.org": replace(ok, action=Action.QUARANTINE)})
    assert learn(hist, res, "sender.test", 7.0)
    assert hist.pair("alice@sender.test", "a@example.org") is not None
    assert hist.pair("alice@sender.test", "q@example.org") is None


def test_learn_many_learns_what_learn_would() -> None:
    hist = MemoryHistory()
    items = [(_result(Action.QUARANTINE, Category.PHISH), "sender.test"),
             (_result(Action.DELIVER, Category.CLEAN), "sender.test"),
             (_result(Action.TAG, Category.BULK, rcpt=("c@example.org",)), "sender.test")]
    assert learn_many(hist, items, 5.0) == 2
    assert hist.learned() == 2
    assert hist.pair("alice@sender.test", "bob@example.org") is not None
    assert hist.pair("alice@sender.test", "c@example.org") is not None
    assert learn_many(hist, [], 6.0) == 0


def _det(hist: MemoryHistory, min_learned: int = 2) -> HistoryDetector:
    return build(Settings(history={"min_learned": min_learned, "established_messages": 2}),
                 Services(history=hist))


def _ctx(from_: str) -> ScanContext:
    return ScanContext(parse_message(make_message(from_=from_)),
                       Envelope(rcpt_to=("bob@example.org",)), None, True, 86400.0 * 10)


def test_detector_signals() -> None:
    hist = MemoryHistory()
    det = _det(hist)
    assert isinstance(det, Detector) and det.stage is Stage.REPUTATION
    assert det.codes == frozenset(CODES) and all(c.startswith("HIST_") for c in CODES)
    assert list(det.run(_ctx("New <new@fresh.test>"))) == []  # cold history: silent
    hist.record("ceo@corp.test", "corp.test", ["bob@example.org"], 0.0, "Carol Chief")
    hist.record("ceo@corp.test", "corp.test", ["bob@example.org"], 86400.0, "Carol Chief")
    assert det.run(_ctx("Carol Chief <ceo@corp.test>"))[0].code == "HIST_ESTABLISHED"
    found = {f.code: f for f in det.run(_ctx("Carol Chief <carol.chief.ceo@gmail.com>"))}
    assert set(found) == {"HIST_FIRST_CONTACT", "HIST_NEW_DOMAIN", "HIST_NAME_NEW_ADDRESS"}
    assert found["HIST_NAME_NEW_ADDRESS"].category == "impersonation_user"
    assert "ceo@corp.test" in found["HIST_NAME_NEW_ADDRESS"].evidence[0]
    assert found["HIST_FIRST_CONTACT"].weight == 0.0
    assert found["HIST_FIRST_CONTACT"].category is None


def _cold_until_learned(reader: SenderHistory, learner: SenderHistory) -> HistoryDetector:
    """A history detector reading ``reader`` is silent (too little learned) until ``learner``
    records three senders; returns it."""
    detector = build(Settings(history={"min_learned": 3}), Services(history=reader))
    assert list(detector.run(_ctx("New <new@fresh.test>"))) == []  # cold: silent
    for i in range(3):
        learner.record(f"s{i}@known.test", "known.test", ["bob@example.org"], 100.0 + i)
    return detector


def test_issue17_2_a_scan_worker_sees_what_the_gateway_learned_without_restarting(
        tmp_path: Path) -> None:
    """The gateway learns in its own process; scan workers open the same SQLite file at start.
    A worker that cached the learned count then stayed 'cold' (HIST_* silent) until restarted."""
    path = str(tmp_path / "history.sqlite3")
    worker = SqliteHistory(path)  # opened first, like a scan worker at startup
    gateway = SqliteHistory(path)
    try:
        detector = _cold_until_learned(worker, gateway)
        assert worker.learned() == 3
        assert "HIST_FIRST_CONTACT" in {f.code for f in detector.run(_ctx("New <new@fresh.test>"))}
    finally:
        worker.close()
        gateway.close()


def test_two_nodes_share_the_history_in_postgresql(pg_schema: str) -> None:
    """Issue 21.3: every node (and each node's scan workers) reads one history in the store's
    database; what node 1 learned counts on node 3 at once, and a worker's ``learned`` counter
    catches up within its one-second cache, without a restart."""
    node1 = SqlHistory(PG_URL, schema=pg_schema)
    node3_worker = SqlHistory(PG_URL, schema=pg_schema)  # started before anything was learned
    try:
        detector = _cold_until_learned(node3_worker, node1)
        pair = node3_worker.pair("s1@known.test", "bob@example.org")
        assert pair is not None and pair.count == 1  # no cache on look-ups
        deadline = time.monotonic() + 5
        while node3_worker.learned() < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert node3_worker.learned() == 3
        assert "HIST_FIRST_CONTACT" in {f.code for f in detector.run(_ctx("New <new@fresh.test>"))}
    finally:
        node1.close()
        node3_worker.close()


def test_gateway_picks_the_database_history_with_a_postgresql_store() -> None:
    from mailsift.history.backends import open_history as opened

    settings = Settings(history={"backend": "database"})
    with pytest.raises(ConfigError, match="needs a url"):
        opened(settings.history)
