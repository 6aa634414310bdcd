"""Signing in with a password: throttled per username and per client address, in the store,
with nothing that tells an unknown username from a known one (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest

from mailsift.config.gateway import LoginThrottleSettings
from mailsift.services.signin import SignInService, Throttled, address_key
from mailsift.store import Store
from mailsift.testing.storekit import FakeClock

PASSWORD = "correct horse battery"
WRONG = "tr0ub4dor&3"

pytestmark = pytest.mark.usefixtures("fast_passwords")


def _signin(store: Store, **settings: object) -> SignInService:
    values: dict[str, object] = {"user_attempts": 3, "address_attempts": 50,
                                 "lockout_seconds": 60, "max_lockout_seconds": 600}
    return SignInService(store, LoginThrottleSettings.model_validate({**values, **settings}))


def test_a_locked_username_is_refused_even_with_the_right_password(
        store: Store, clock: FakeClock) -> None:
    store.users.create("ops", PASSWORD, "admin")
    signin = _signin(store)
    assert signin.sign_in(" OPS", PASSWORD, "192.0.2.1") is not None  # names are normalised
    for _ in range(2):
        assert signin.sign_in("ops", WRONG, "192.0.2.1") is None
    assert signin.sign_in("ops", PASSWORD, "192.0.2.1") is not None  # clears the counter
    for _ in range(3):
        assert signin.sign_in("Ops", WRONG, "192.0.2.1") is None
    with pytest.raises(Throttled) as caught:
        signin.sign_in("ops", PASSWORD, "192.0.2.1")
    assert caught.value.retry_after == 60
    assert "try again in 60 seconds" in str(caught.value) and "UTC" in str(caught.value)
    clock.advance(30)
    with pytest.raises(Throttled) as caught:
        signin.sign_in("ops", PASSWORD, "198.51.100.7")  # another address: still the name
    assert caught.value.retry_after == 30
    clock.advance(30)
    assert signin.sign_in("ops", PASSWORD, "192.0.2.1") is not None
    # the success reset the back-off too: the next lockout is the first one again
    for _ in range(3):
        signin.sign_in("ops", WRONG, "192.0.2.1")
    with pytest.raises(Throttled) as caught:
        signin.sign_in("ops", WRONG, "192.0.2.1")
    assert caught.value.retry_after == 60

    entries = store.audit.entries()
    throttled = [e for e in entries if e.action == "web.login_throttled"]
    assert len(throttled) == 3  # every refusal is audited
    assert throttled[0].actor == "ops" and throttled[0].detail["locked"] == "user"
    assert throttled[0].detail["address"] == "192.0.2.1"
    failed = [e for e in entries if e.action == "web.login_failed"]
    assert len(failed) == 8 and sum("locked_until" in e.detail for e in failed) == 2
    logged = json.dumps([e.to_dict() for e in entries])
    assert PASSWORD not in logged and WRONG not in logged


def test_unknown_usernames_are_throttled_like_known_ones(store: Store, clock: FakeClock) -> None:
    store.users.create("ops", PASSWORD, "admin")
    signin = _signin(store)

    def outcomes(name: str) -> list[object]:
        seen: list[object] = []
        for _ in range(4):
            try:
                seen.append(signin.sign_in(name, WRONG, "192.0.2.1"))
            except Throttled as exc:
                seen.append(("429", exc.retry_after, str(exc)))
        return seen

    assert outcomes("ops") == outcomes("nobody")
    actions = [(e.actor, e.action) for e in store.audit.entries()]
    assert [a for who, a in actions if who == "ops"] == [a for who, a in actions
                                                          if who == "nobody"]


def test_one_address_cannot_spray_many_usernames(store: Store, clock: FakeClock) -> None:
    store.users.create("ops", PASSWORD, "admin")
    signin = _signin(store, address_attempts=4)
    for i in range(4):  # one try per name: no username reaches its limit
        assert signin.sign_in(f"user{i}", WRONG, "2001:db8::1") is None
    with pytest.raises(Throttled):  # the same /64, even for a right password
        signin.sign_in("ops", PASSWORD, "2001:db8::2")
    assert signin.sign_in("ops", PASSWORD, "2001:db8:1::1") is not None  # another network
    refusal = next(e for e in store.audit.entries() if e.action == "web.login_throttled")
    assert refusal.detail["locked"] == "address"
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1", 64) == "192.0.2.1"


def test_throttling_can_be_switched_off(store: Store, clock: FakeClock) -> None:
    store.users.create("ops", PASSWORD, "admin")
    signin = _signin(store, enabled=False, user_attempts=1)
    assert signin.sign_in("ops", WRONG, "192.0.2.1") is None
    assert signin.sign_in("ops", WRONG, "192.0.2.1") is None
    assert signin.sign_in("ops", PASSWORD, "192.0.2.1") is not None


def test_settings_refuse_a_shrinking_back_off() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_lockout_seconds"):
        LoginThrottleSettings(lockout_seconds=600, max_lockout_seconds=60)
