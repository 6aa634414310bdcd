"""Lists snapshot, API tokens, holds and retention purge at the store level."""

from __future__ import annotations

import pytest

from mailsift.core.errors import StoreError
from mailsift.core.lists import ListEntry
from mailsift.core.verdict import Action
from mailsift.store import Store, TraceQuery
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import FakeClock, make_result


def test_snapshot_version_tracks_content(store: Store, clock: FakeClock) -> None:
    assert store.lists.snapshot().version == "empty"
    e = store.lists.add(ListEntry("sender", "a@x.example", "allow"))
    v1 = store.lists.snapshot().version
    store.lists.add(ListEntry("domain", "bad.example", "block", expires_at=clock.now() + 10))
    v2 = store.lists.snapshot()
    assert v2.version != v1 and len(v2.entries) == 2
    clock.advance(11)
    assert store.lists.snapshot().version == v1  # the expired entry no longer counts
    assert store.lists.remove(e.entry_id) is not None
    assert store.lists.remove(e.entry_id) is None
    with pytest.raises(StoreError, match="already exists"):
        store.lists.add(ListEntry("domain", "bad.example", "block"))


def test_tokens_hashed_verify_revoke_expire(store: Store, clock: FakeClock) -> None:
    token, info = store.tokens.create("analyst", name="soc")
    assert token.startswith("msk_")
    from sqlalchemy import text

    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalar()
    assert stored != token and token not in str(stored)
    got = store.tokens.verify(token)
    assert got is not None and got.role == "analyst"
    assert store.tokens.verify(token + "x") is None
    assert store.tokens.revoke(info.id)
    assert store.tokens.verify(token) is None
    t2, _ = store.tokens.create("admin", expires_at=clock.now() + 5)
    assert store.tokens.verify(t2) is not None
    clock.advance(6)
    assert store.tokens.verify(t2) is None
    with pytest.raises(StoreError):
        store.tokens.create("recipient")  # needs a mailbox
    with pytest.raises(StoreError):
        store.tokens.create("root")


def test_purge_respects_hold_and_shared_blobs(store: Store, clock: FakeClock) -> None:
    raw = make_message(subject="same bytes")
    store.trace.record(make_result("old1", raw), raw, received_at=clock.now() - 40 * 86400)
    store.trace.record(make_result("old2", raw, subject="incident"), raw,
                       received_at=clock.now() - 40 * 86400)
    store.trace.record(make_result("new", raw), raw)
    other = make_message(subject="delivered")
    store.trace.record(make_result("oldd", other, recipients={"x@y.example": Action.DELIVER}),
                       other, received_at=clock.now() - 40 * 86400)
    hold = store.retention.place_hold("INC-1", TraceQuery(message="old2"), actor="ir")
    assert hold.messages == 1
    report = store.retention.purge(30)
    assert report.messages == 2 and report.held == 1
    assert store.trace.get("old1") is None and store.trace.get("oldd") is None
    held = store.trace.get("old2")
    assert held is not None and held.holds == ("INC-1",)
    sha = store.blobs.digest(raw)
    assert store.blobs.exists(sha)  # still referenced by old2 and new
    with pytest.raises(StoreError, match="hold"):
        store.retention.delete_raw("old2")
    assert store.retention.release_hold(hold.id)
    assert store.retention.purge(30).messages == 1
    assert store.blobs.exists(sha)  # "new" still needs it
    assert store.retention.delete_raw("new")
    assert not store.blobs.exists(sha)
