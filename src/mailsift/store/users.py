"""Console users and their login sessions: the web UI's accounts, kept in the store.

Passwords are hashed with scrypt (``hashlib.scrypt``, RFC 7914: memory-hard, in the standard
library) with a per-user random salt; the encoded hash carries its parameters so they can be
raised later without breaking existing accounts. Sessions are random 256-bit tokens of which only
a sha256 is stored (as with API tokens: a database dump opens no session); each session carries
its own CSRF token. Keeping sessions in the database rather than in signed cookies is what makes
logout, disabling a user and several gateway nodes behind one name work without a shared secret.

Invariants kept here, inside the writing transaction (so two admins acting at once on two nodes
cannot both pass the check): usernames and mailboxes are normalised (``normalise_username``),
passwords have at least ``MIN_PASSWORD`` characters, and the last enabled admin can be neither
disabled nor given another role.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    Float,
    String,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from mailsift.core.errors import InputError, StoreError
from mailsift.core.protocols import Clock
from mailsift.store.base import ADDR, Base

__all__ = [
    "MIN_PASSWORD",
    "ROLES",
    "InvalidAccount",
    "SessionInfo",
    "SessionRow",
    "UserInfo",
    "UserRow",
    "UserStore",
    "check_password",
    "hash_password",
    "normalise_username",
    "verify_password",
]

ROLES = ("admin", "analyst", "recipient")
# 2**15 * 8 * 128 bytes = 32 MiB and ~60 ms per hash here: slow for a guesser, fine for a login.
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD = 8
# Usernames end up in URLs (/users/NAME, /v1/users/NAME): nothing that splits or escapes a path.
_BAD_NAME = re.compile(r"[\s/\\?#%\x00-\x1f\x7f]")
_MAILBOX = re.compile(r"^[^@\s]+@[^@\s]+$")


class UserRow(Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(ADDR), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    mailbox: Mapped[str | None] = mapped_column(String(ADDR))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class SessionRow(Base):
    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie value
    username: Mapped[str] = mapped_column(String(ADDR), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64url): self-describing, so parameters can change."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM,
                            dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, want = encoded.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r),
                             p=int(p), maxmem=_MAXMEM, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(want))


# Verified against when the user does not exist, so a login takes as long either way and does
# not reveal which usernames exist.
_DUMMY = hash_password(secrets.token_urlsafe(16))


class InvalidAccount(StoreError, InputError):
    """A username, role, mailbox or password the rules refuse: bad input (400 over HTTP), not a
    conflict with the stored state like a duplicate name or the last admin (409)."""


def normalise_username(username: str) -> str:
    """How usernames are compared everywhere (accounts, sign-in, throttling): case-folded."""
    return username.strip().lower()


def check_password(password: str) -> None:
    """The password rules (the same for the CLI, the console and the API)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidAccount(f"the password needs at least {MIN_PASSWORD} characters")


def _mailbox(role: str, mailbox: str | None) -> str | None:
    box = (mailbox or "").strip().lower() or None
    if role == "recipient" and box is None:
        raise InvalidAccount("a recipient user needs the mailbox it may see")
    if role != "recipient" and box is not None:
        raise InvalidAccount("only recipient users have a mailbox")
    if box is not None and not _MAILBOX.match(box):
        raise InvalidAccount(f"not a mailbox address: {mailbox!r}")
    return box


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str
    role: str
    mailbox: str | None
    created_at: float
    disabled: bool

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role, "mailbox": self.mailbox,
                "created_at": self.created_at, "disabled": self.disabled}


@dataclass(frozen=True, slots=True)
class SessionInfo:
    user: UserInfo
    csrf: str
    expires_at: float


def _user(r: Any) -> UserInfo:
    return UserInfo(r.username, r.role, r.mailbox, r.created_at, bool(r.disabled))


def _sid(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    # -- accounts -------------------------------------------------------------------------------
    def create(self, username: str, password: str, role: str, *,
               mailbox: str | None = None) -> UserInfo:
        name = normalise_username(username)
        if not name or len(name) > 320 or _BAD_NAME.search(name):
            raise InvalidAccount(f"invalid username {username!r} (no spaces, /, \\, ?, # or %)")
        _role(role)
        box = _mailbox(role, mailbox)
        check_password(password)
        info = UserInfo(name, role, box, self.clock.now(), False)
        encoded = hash_password(password)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(UserRow).values(
                    username=info.username, role=role, mailbox=info.mailbox,
                    password_hash=encoded, created_at=info.created_at,
                    disabled=False))
        except IntegrityError as exc:
            raise StoreError(f"user {name} already exists") from exc
        return info

    def get(self, username: str) -> UserInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(UserRow).where(
                UserRow.username == normalise_username(username))).first()
        return _user(row) if row is not None else None

    def list(self) -> list[UserInfo]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(UserRow).order_by(UserRow.username))]

    def authenticate(self, username: str, password: str) -> UserInfo | None:
        """The user if the password matches and the account is enabled."""
        with self.engine.connect() as conn:
            row = conn.execute(select(UserRow).where(
                UserRow.username == normalise_username(username))).first()
        ok = verify_password(password, row.password_hash if row is not None else _DUMMY)
        if row is None or not ok or row.disabled:
            return None
        return _user(row)

    def set_password(self, username: str, password: str) -> int:
        """Returns how many sessions of the user it ended (all of them)."""
        check_password(password)
        encoded = hash_password(password)  # ~60 ms: not inside the write transaction
        with self.engine.begin() as conn:
            self._update(conn, username, password_hash=encoded)
            return self._end_sessions(conn, username)

    def set_disabled(self, username: str, disabled: bool) -> int:
        """Disabling ends the user's sessions (returns how many); the last enabled admin cannot
        be disabled."""
        with self.engine.begin() as conn:
            if disabled:
                self._keep_an_admin(conn, username)
            self._update(conn, username, disabled=disabled)
            return self._end_sessions(conn, username) if disabled else 0

    def set_role(self, username: str, role: str, *, mailbox: str | None = None) -> UserInfo:
        """A new role (and mailbox, for recipients); the last enabled admin keeps its role."""
        _role(role)
        box = _mailbox(role, mailbox)
        with self.engine.begin() as conn:
            if role != "admin":
                self._keep_an_admin(conn, username)
            self._update(conn, username, role=role, mailbox=box)
            row = conn.execute(select(UserRow).where(
                UserRow.username == normalise_username(username))).one()
        return _user(row)

    @staticmethod
    def _keep_an_admin(conn: Connection, username: str) -> None:
        # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers): two
        # admins demoting each other at once are taken in turn, so the second one sees that
        # only it is left.
        admins = set(conn.execute(select(UserRow.username).where(
            UserRow.role == "admin", UserRow.disabled.is_(False)).with_for_update()).scalars())
        if admins == {normalise_username(username)}:
            raise StoreError(f"{normalise_username(username)} is the last enabled admin: create "
                             "or enable another admin first")

    @staticmethod
    def _update(conn: Connection, username: str, **values: object) -> None:
        n = conn.execute(update(UserRow).where(
            UserRow.username == normalise_username(username)).values(**values)).rowcount
        if not n:
            raise StoreError(f"no user {username}")

    # -- sessions -------------------------------------------------------------------------------
    def start_session(self, username: str, *, ttl: float = 12 * 3600) -> tuple[str, SessionInfo]:
        """A new session; returns the cookie value (shown once) and the session."""
        user = self.get(username)
        if user is None or user.disabled:
            raise StoreError(f"no enabled user {username}")
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        info = SessionInfo(user, secrets.token_urlsafe(32), now + ttl)
        with self.engine.begin() as conn:
            conn.execute(delete(SessionRow).where(SessionRow.expires_at <= now))
            conn.execute(insert(SessionRow).values(
                id=_sid(token), username=user.username, csrf=info.csrf, created_at=now,
                expires_at=info.expires_at))
        return token, info

    def session(self, token: str) -> SessionInfo | None:
        """The live session of this cookie value (None: unknown, expired or user disabled)."""
        if not token:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(SessionRow.csrf, SessionRow.expires_at.label("session_expires"),
                       UserRow.username, UserRow.role, UserRow.mailbox, UserRow.created_at,
                       UserRow.disabled)
                .join(UserRow, UserRow.username == SessionRow.username)
                .where(SessionRow.id == _sid(token))).first()
        if row is None or row.session_expires <= self.clock.now() or row.disabled:
            return None
        return SessionInfo(_user(row), row.csrf, row.session_expires)

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(SessionRow).where(SessionRow.id == _sid(token)))

    def end_sessions(self, username: str) -> int:
        with self.engine.begin() as conn:
            return self._end_sessions(conn, username)

    @staticmethod
    def _end_sessions(conn: Connection, username: str) -> int:
        return conn.execute(delete(SessionRow).where(
            SessionRow.username == normalise_username(username))).rowcount

    def session_counts(self) -> dict[str, int]:
        """Live (unexpired) sessions per username."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(SessionRow.username, func.count())
                .where(SessionRow.expires_at > self.clock.now())
                .group_by(SessionRow.username)).all()
        return {name: int(n) for name, n in rows}


def _role(role: str) -> None:
    if role not in ROLES:
        raise InvalidAccount(f"unknown role {role!r} (one of {', '.join(ROLES)})")

