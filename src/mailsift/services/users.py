"""Console user management: the use cases the CLI (``mailsift user``), the console's Users page
and ``/v1/users`` share.

Every call checks ``users.read`` / ``users.write`` (admins only) and every change is written to
the audit log under the actor's name, never with a password in it. The rules on the data (the
password's minimum length, a recipient's mailbox, the last enabled admin that may be neither
disabled nor demoted) live in ``store.users`` inside the writing transaction, so they hold for
two admins acting at once on two nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailsift.services.access import NotFound, Principal, require
from mailsift.store import Store
from mailsift.store.throttle import USER
from mailsift.store.users import UserInfo, normalise_username

__all__ = ["UserService", "UserSummary"]


@dataclass(frozen=True, slots=True)
class UserSummary:
    """A user as an admin sees it: the account, its live sessions, a sign-in lockout."""

    user: UserInfo
    sessions: int
    locked_until: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.user.to_dict(), "sessions": self.sessions,
                "locked_until": self.locked_until}


class UserService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.users = store.users

    def list(self, actor: Principal) -> list[UserSummary]:
        require(actor, "users.read")
        sessions = self.users.session_counts()
        locked = self.store.throttle.locked(USER)
        return [UserSummary(u, sessions.get(u.username, 0), locked.get(u.username))
                for u in self.users.list()]

    def get(self, actor: Principal, username: str) -> UserSummary:
        require(actor, "users.read")
        user = self._existing(username)
        return UserSummary(user, self.users.session_counts().get(user.username, 0),
                           self.store.throttle.locked(USER).get(user.username))

    def create(self, actor: Principal, username: str, password: str, role: str, *,
               mailbox: str | None = None) -> UserInfo:
        require(actor, "users.write")
        info = self.users.create(username, password, role, mailbox=mailbox)
        self.store.audit.append(actor.name, "user.create", info.username,
                                {"role": info.role, "mailbox": info.mailbox})
        return info

    def set_disabled(self, actor: Principal, username: str, disabled: bool, *,
                     reason: str = "") -> int:
        """Disable (ending every session of the user; returns how many) or enable again;
        ``reason`` goes into the audit entry."""
        require(actor, "users.write")
        user = self._existing(username)
        ended = self.users.set_disabled(user.username, disabled)
        detail = {"sessions_ended": ended} if disabled else {}
        self.store.audit.append(actor.name, "user.disable" if disabled else "user.enable",
                                user.username, _with_reason(detail, reason) or None)
        return ended

    def set_password(self, actor: Principal, username: str, password: str) -> int:
        """A new password: ends the user's sessions (returns how many) and lifts a sign-in
        lockout of the username (the admin has just given the user a way in)."""
        require(actor, "users.write")
        user = self._existing(username)
        ended = self.users.set_password(user.username, password)
        unlocked = self.store.throttle.clear(USER, user.username)
        self.store.audit.append(actor.name, "user.password", user.username,
                                {"sessions_ended": ended, "throttle_cleared": unlocked})
        return ended

    def set_role(self, actor: Principal, username: str, role: str, *,
                 mailbox: str | None = None) -> UserInfo:
        require(actor, "users.write")
        before = self._existing(username)
        after = self.users.set_role(before.username, role, mailbox=mailbox)
        self.store.audit.append(actor.name, "user.role", after.username, {
            "from": before.role, "to": after.role, "mailbox": after.mailbox})
        return after

    def end_sessions(self, actor: Principal, username: str, *, reason: str = "") -> int:
        require(actor, "users.write")
        user = self._existing(username)
        ended = self.users.end_sessions(user.username)
        self.store.audit.append(actor.name, "user.sessions_end", user.username,
                                _with_reason({"sessions_ended": ended}, reason))
        return ended

    def _existing(self, username: str) -> UserInfo:
        user = self.users.get(username)
        if user is None:
            raise NotFound(f"no user {normalise_username(username)}")
        return user


def _with_reason(detail: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**detail, "reason": reason} if reason else detail
