"""Failed sign-in counters in the store (SQLite and PostgreSQL), driven by a fake clock.

The counters need only their table: one migrated store per backend serves the whole module
(emptied before each test), which keeps these tests fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from mailsift.store import Store
from mailsift.store.throttle import ADDRESS, USER, Key, Limit, LoginThrottle, ThrottleRow
from mailsift.testing.storekit import FakeClock, pg_unavailable, temp_store_settings

LIMIT = Limit(attempts=3, window=900, lockout=60, max_lockout=300, forget=3600)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Store]:
    if request.param == "postgresql" and (why := pg_unavailable()):
        pytest.skip(why)
    tmp: Path = tmp_path_factory.mktemp("throttle")
    with temp_store_settings(request.param, tmp) as settings, Store.open(settings) as s:
        yield s


@pytest.fixture
def throttle(shared: Store, clock: FakeClock) -> LoginThrottle:
    """The shared store's counters, emptied, on this test's clock."""
    with shared.engine.begin() as conn:
        conn.execute(delete(ThrottleRow))
    return LoginThrottle(shared.engine, clock)


def _fail(throttle: LoginThrottle, *keys: Key) -> float | None:
    assert throttle.begin(keys) is None
    return throttle.failed(keys)


def test_locks_after_the_limit_and_backs_off(throttle: LoginThrottle, clock: FakeClock) -> None:
    key = Key(USER, "ops", LIMIT)
    assert _fail(throttle, key) is None and _fail(throttle, key) is None
    until = _fail(throttle, key)  # the third failure within the window locks
    assert until == clock.now() + 60
    refusal = throttle.begin([key])
    assert refusal is not None and (refusal.kind, refusal.until) == (USER, until)
    assert throttle.locked(USER) == {"ops": until}
    clock.advance(59)
    assert throttle.begin([key]) is not None
    clock.advance(1)  # the lockout is over: three more tries, then twice as long
    lengths = []
    for _ in range(4):
        for _ in range(2):
            assert _fail(throttle, key) is None
        again = _fail(throttle, key)
        assert again is not None
        lengths.append(again - clock.now())
        clock.advance(again - clock.now())
    assert lengths == [120, 240, 300, 300]  # doubled, capped at max_lockout


def test_refused_attempts_do_not_count(throttle: LoginThrottle, clock: FakeClock) -> None:
    key = Key(USER, "ops", LIMIT)
    for _ in range(3):
        _fail(throttle, key)
    for _ in range(10):
        assert throttle.begin([key]) is not None
    clock.advance(60)
    assert _fail(throttle, key) is None  # the refusals did not fill the next window


def test_window_expiry_and_forgetting(throttle: LoginThrottle, clock: FakeClock) -> None:
    key = Key(USER, "ops", LIMIT)
    _fail(throttle, key)
    _fail(throttle, key)
    clock.advance(900)  # the window is over: counting starts again
    assert _fail(throttle, key) is None and _fail(throttle, key) is None
    assert _fail(throttle, key) == clock.now() + 60
    clock.advance(60 + 3600)  # quiet for `forget`: the back-off starts from the beginning
    for _ in range(2):
        _fail(throttle, key)
    assert _fail(throttle, key) == clock.now() + 60


def test_success_clears_the_username_but_not_the_address(throttle: LoginThrottle,
                                                         clock: FakeClock) -> None:
    user = Key(USER, "ops", LIMIT)
    addr = Key(ADDRESS, "192.0.2.7", Limit(5, 900, 60, 300, 3600))
    for _ in range(2):
        _fail(throttle, user, addr)
    assert throttle.begin([user, addr]) is None
    throttle.succeeded([user], [addr])
    for _ in range(2):  # the username starts afresh...
        assert _fail(throttle, user, addr) is None
    # ...the address kept its two failures (and got back the successful attempt): 4 so far
    assert _fail(throttle, Key(USER, "other", LIMIT), addr) is not None
    assert throttle.locked(ADDRESS) == {"192.0.2.7": clock.now() + 60}


def test_one_address_cannot_spray_many_usernames(throttle: LoginThrottle, clock: FakeClock) -> None:
    addr = Key(ADDRESS, "2001:db8::/64", Limit(5, 900, 60, 300, 3600))
    for i in range(4):
        assert _fail(throttle, Key(USER, f"user{i}", LIMIT), addr) is None
    assert _fail(throttle, Key(USER, "user4", LIMIT), addr) is not None
    refusal = throttle.begin([Key(USER, "user5", LIMIT), addr])
    assert refusal is not None and refusal.kind == ADDRESS
    assert throttle.locked(USER) == {}  # no single username was locked
    # another address may still try those names
    assert throttle.begin([Key(USER, "user5", LIMIT),
                                 Key(ADDRESS, "198.51.100.1", addr.limit)]) is None


def test_attempts_in_flight_count_before_they_fail(throttle: LoginThrottle,
                                                   clock: FakeClock) -> None:
    """Guesses fired at once: only `attempts` of them get a password check."""
    key = Key(USER, "ops", LIMIT)
    started = [throttle.begin([key]) is None for _ in range(10)]
    assert started.count(True) == 3
    locks = [throttle.failed([key]) for _ in range(3)]
    assert locks[-1] is None and locks[0] == clock.now() + 60  # one lockout, not three
    assert throttle.begin([key]) is not None


def test_quiet_rows_are_pruned(throttle: LoginThrottle, clock: FakeClock) -> None:
    for i in range(20):
        _fail(throttle, Key(USER, f"spray{i}", LIMIT))
    clock.advance(3601)
    _fail(throttle, Key(USER, "ops", LIMIT))
    with throttle.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ThrottleRow)).scalar() == 1
    assert throttle.clear(USER, "ops") and not throttle.clear(USER, "ops")


def test_nodes_racing_on_a_new_name_count_every_attempt(throttle: LoginThrottle) -> None:
    """Several nodes (connections) take attempts on a name nobody tried yet, all at once: the
    first insert must not be lost, nor may two of them both see "no failures yet"."""
    from concurrent.futures import ThreadPoolExecutor

    key = Key(USER, "fresh", LIMIT)
    with ThreadPoolExecutor(8) as pool:
        started = list(pool.map(lambda _: throttle.begin([key]) is None, range(8)))
    assert started.count(True) == LIMIT.attempts
