"""Console user management (``UserService``): admins only, every change audited without the
password, sessions ended where they must be, and the last enabled admin kept."""

from __future__ import annotations

import json

import pytest

from mailsift.core.errors import InputError, StoreError
from mailsift.services.access import AccessDenied, NotFound, Principal
from mailsift.services.signin import SignInService, Throttled
from mailsift.services.users import UserService
from mailsift.store import Store
from mailsift.testing.storekit import FakeClock

ADMIN = Principal("alice", "admin")
ANALYST = Principal("sam", "analyst")
ANN = Principal("ann", "recipient", "ann@corp.example")
SECRET = "a long secret phrase"

pytestmark = pytest.mark.usefixtures("fast_passwords")


def test_admin_manages_users_and_every_change_is_audited(store: Store, clock: FakeClock) -> None:
    svc = UserService(store)
    info = svc.create(ADMIN, "Ann@Corp.Example", SECRET, "recipient", mailbox="ANN@corp.example")
    assert (info.username, info.mailbox) == ("ann@corp.example", "ann@corp.example")
    svc.create(ADMIN, "sam", SECRET, "analyst")
    with pytest.raises(StoreError, match="already exists"):
        svc.create(ADMIN, "SAM", SECRET, "admin")
    for bad, match in (({"password": "short"}, "at least 8"),
                       ({"role": "root"}, "unknown role"),
                       ({"role": "recipient"}, "mailbox"),
                       ({"mailbox": "x@corp.example"}, "only recipient"),
                       ({"username": "a/b"}, "invalid username")):
        args = {"username": "new", "password": SECRET, "role": "analyst", **bad}
        with pytest.raises(InputError, match=match):  # bad input (400), not a conflict
            svc.create(ADMIN, args.pop("username"), args.pop("password"), args.pop("role"),
                       **args)
    for _ in range(2):
        store.users.start_session("sam")
    listed = {s.user.username: s for s in svc.list(ADMIN)}
    assert set(listed) == {"ann@corp.example", "sam"}
    assert listed["sam"].sessions == 2 and listed["sam"].user.role == "analyst"
    assert listed["ann@corp.example"].to_dict()["mailbox"] == "ann@corp.example"

    assert svc.set_password(ADMIN, "SAM", "another long one") == 2  # ends both sessions
    assert store.users.authenticate("sam", "another long one") is not None
    token, _ = store.users.start_session("sam")
    assert svc.set_disabled(ADMIN, "sam", True) == 1
    assert store.users.session(token) is None and svc.get(ADMIN, "sam").user.disabled
    assert svc.set_disabled(ADMIN, "sam", False) == 0
    store.users.start_session("sam")
    assert svc.end_sessions(ADMIN, "sam") == 1 and svc.get(ADMIN, "sam").sessions == 0
    moved = svc.set_role(ADMIN, "ann@corp.example", "analyst")
    assert (moved.role, moved.mailbox) == ("analyst", None)
    with pytest.raises(NotFound):
        svc.set_disabled(ADMIN, "nobody", True)

    entries = [e for e in store.audit.entries() if e.actor == "alice"]
    assert [e.action for e in reversed(entries)] == [
        "user.create", "user.create", "user.password", "user.disable", "user.enable",
        "user.sessions_end", "user.role"]
    assert entries[0].detail == {"from": "recipient", "to": "analyst", "mailbox": None}
    assert entries[3].detail == {"sessions_ended": 1}
    logged = json.dumps([e.to_dict() for e in store.audit.entries()])
    assert SECRET not in logged and "another long one" not in logged


def test_only_admins_may_see_or_change_users(store: Store) -> None:
    svc = UserService(store)
    svc.create(ADMIN, "sam", SECRET, "analyst")
    for actor in (ANALYST, ANN):
        for call in (lambda a: svc.list(a), lambda a: svc.get(a, "sam"),
                     lambda a: svc.create(a, "eve", SECRET, "admin"),
                     lambda a: svc.set_disabled(a, "sam", True),
                     lambda a: svc.set_password(a, "sam", SECRET + "!"),
                     lambda a: svc.set_role(a, "sam", "admin"),
                     lambda a: svc.end_sessions(a, "sam")):
            with pytest.raises(AccessDenied):
                call(actor)
    assert [u.username for u in store.users.list()] == ["sam"]
    assert store.users.get("sam") is not None and not store.users.get("sam").disabled
    assert [e.action for e in store.audit.entries()] == ["user.create"]


def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(store: Store) -> None:
    svc = UserService(store)
    svc.create(ADMIN, "root", SECRET, "admin")
    root = Principal("root", "admin")
    with pytest.raises(StoreError, match="last enabled admin"):
        svc.set_disabled(root, "root", True)
    with pytest.raises(StoreError, match="last enabled admin"):
        svc.set_role(root, "root", "analyst")
    svc.create(root, "ops", SECRET, "admin")
    svc.set_disabled(root, "ops", True)  # a disabled admin does not count...
    with pytest.raises(StoreError, match="last enabled admin"):
        svc.set_role(root, "ROOT", "recipient", mailbox="root@corp.example")
    svc.set_disabled(root, "ops", False)  # ...an enabled one does
    svc.set_disabled(root, "root", True)
    ops = Principal("ops", "admin")
    with pytest.raises(StoreError, match="ops is the last enabled admin"):
        svc.set_disabled(ops, "ops", True)
    svc.set_role(ops, "root", "analyst")
    svc.set_disabled(ops, "root", False)
    assert {u.username: (u.role, u.disabled) for u in store.users.list()} == {
        "ops": ("admin", False), "root": ("analyst", False)}
    assert not any(e.action == "user.disable" and e.target == "ops"
                   for e in store.audit.entries() if e.actor == "ops")


def test_a_new_password_lifts_a_sign_in_lockout(store: Store, clock: FakeClock) -> None:
    svc = UserService(store)
    svc.create(ADMIN, "sam", SECRET, "analyst")
    signin = SignInService(store)
    for _ in range(5):
        assert signin.sign_in("sam", "not it at all", "192.0.2.3") is None
    with pytest.raises(Throttled):
        signin.sign_in("sam", SECRET, "192.0.2.3")
    summary = svc.get(ADMIN, "sam")
    assert summary.locked_until == clock.now() + 300  # the default first lockout
    svc.set_password(ADMIN, "sam", "a brand new phrase")
    assert svc.get(ADMIN, "sam").locked_until is None
    assert signin.sign_in("sam", "a brand new phrase", "192.0.2.3") is not None
