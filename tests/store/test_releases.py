"""The release ledger: atomic claims, final states, leases."""

from __future__ import annotations

import threading

from mailsift.store import Store
from mailsift.testing.messages import make_message
from mailsift.testing.storekit import FakeClock, make_result


def _quarantine(store: Store, msg_id: str, rcpts: tuple[str, ...]) -> None:
    raw = make_message(message_id=f"<{msg_id}@example.org>")
    store.trace.record(make_result(msg_id, raw, recipients=rcpts), raw)


def test_claim_once_then_never_again_after_sent(store: Store) -> None:
    _quarantine(store, "m1", ("a@x.example", "b@x.example"))
    claims = store.releases.claim([("m1", ["a@x.example", "b@x.example"])], actor="t")
    assert len(claims) == 1 and sorted(claims[0].recipients) == ["a@x.example", "b@x.example"]
    assert store.releases.claim([("m1", ["a@x.example"])], actor="other") == []
    store.releases.mark_sent(claims[0], ["a@x.example"], "250 ok")
    store.releases.mark_failed(claims[0], ["b@x.example"], "450 later")
    again = store.releases.claim([("m1", ["a@x.example", "b@x.example"])], actor="t2")
    assert [c.recipients for c in again] == [("b@x.example",)]
    assert again[0].release_id != claims[0].release_id
    states = store.releases.states("m1")
    assert states["a@x.example"][0] == "sent"
    assert states["b@x.example"][0] == "claimed"
    rec = store.trace.get("m1")
    assert rec is not None
    assert {r.recipient: r.status for r in rec.recipients}["a@x.example"] == "released"


def test_uncertain_is_final_unless_reclaimed_with_same_id(store: Store) -> None:
    _quarantine(store, "m2", ("a@x.example",))
    (claim,) = store.releases.claim([("m2", ["a@x.example"])], actor="t")
    store.releases.mark_uncertain(claim, ["a@x.example"], "lost during DATA")
    assert store.releases.claim([("m2", ["a@x.example"])], actor="t") == []
    (again,) = store.releases.claim([("m2", ["a@x.example"])], actor="t", reclaim_uncertain=True)
    assert again.release_id == claim.release_id


def test_expired_lease_becomes_uncertain(store: Store, clock: FakeClock) -> None:
    _quarantine(store, "m3", ("a@x.example",))
    (claim,) = store.releases.claim([("m3", ["a@x.example"])], actor="crashed")
    clock.advance(store.settings.release_lease_seconds + 1)
    assert store.releases.expire_leases() == 1
    assert store.releases.states("m3")["a@x.example"][0] == "uncertain"
    assert store.releases.claim([("m3", ["a@x.example"])], actor="t") == []
    # a late 250 from the crashed releaser still wins: the truth is "sent"
    assert store.releases.mark_sent(claim, ["a@x.example"], "250") == 1


def test_concurrent_claims_have_one_winner(store: Store) -> None:
    ids = [f"c{i}" for i in range(40)]
    for m in ids:
        _quarantine(store, m, ("a@x.example", "b@x.example"))
    wanted = [(m, ["a@x.example", "b@x.example"]) for m in ids]
    won: list[list[tuple[str, str]]] = [[] for _ in range(4)]
    barrier = threading.Barrier(4)

    def grab(i: int) -> None:
        barrier.wait()
        for start in range(0, len(wanted), 5):
            for c in store.releases.claim(wanted[start:start + 5], actor=f"w{i}"):
                won[i].extend((c.message, r) for r in c.recipients)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [pair for w in won for pair in w]
    assert len(everything) == len(set(everything)) == 80
