"""Console users and their login sessions: the web UI's accounts, kept in the store.

Passwords are hashed with scrypt (``hashlib.scrypt``, RFC 7914: memory-hard, in the standard
library) with a per-user random salt; the encoded hash carries its parameters so they can be
raised later without breaking existing accounts. Sessions are random 256-bit tokens of which only
a sha256 is stored (as with API tokens: a database dump opens no session); each session carries
its own CSRF token. Keeping sessions in the database rather than in signed cookies is what makes
logout, disabling a user and several gateway nodes behind one name work without a shared secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Engine, Float, String, Text, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from mailsift.core.errors import StoreError
from mailsift.core.protocols import Clock
from mailsift.store.models import ADDR, Base

__all__ = [
    "ROLES",
    "SessionInfo",
    "SessionRow",
    "UserInfo",
    "UserRow",
    "UserStore",
    "hash_password",
    "verify_password",
]

ROLES = ("admin", "analyst", "recipient")
# 2**15 * 8 * 128 bytes = 32 MiB and ~60 ms per hash here: slow for a guesser, fine for a login.
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD = 8


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


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str
    role: str
    mailbox: str | None
    created_at: float
    disabled: bool


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
        name = username.strip().lower()
        if not name or any(c.isspace() for c in name):
            raise StoreError(f"invalid username {username!r}")
        if role not in ROLES:
            raise StoreError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        if role == "recipient" and not mailbox:
            raise StoreError("a recipient user needs the mailbox it may see (--mailbox)")
        if len(password) < MIN_PASSWORD:
            raise StoreError(f"the password needs at least {MIN_PASSWORD} characters")
        info = UserInfo(name, role, mailbox.strip().lower() if mailbox else None,
                        self.clock.now(), False)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(UserRow).values(
                    username=info.username, role=role, mailbox=info.mailbox,
                    password_hash=hash_password(password), created_at=info.created_at,
                    disabled=False))
        except IntegrityError as exc:
            raise StoreError(f"user {name} already exists") from exc
        return info

    def get(self, username: str) -> UserInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(UserRow).where(
                UserRow.username == username.strip().lower())).first()
        return _user(row) if row is not None else None

    def list(self) -> list[UserInfo]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(UserRow).order_by(UserRow.username))]

    def authenticate(self, username: str, password: str) -> UserInfo | None:
        """The user if the password matches and the account is enabled."""
        with self.engine.connect() as conn:
            row = conn.execute(select(UserRow).where(
                UserRow.username == username.strip().lower())).first()
        ok = verify_password(password, row.password_hash if row is not None else _DUMMY)
        if row is None or not ok or row.disabled:
            return None
        return _user(row)

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise StoreError(f"the password needs at least {MIN_PASSWORD} characters")
        self._update(username, password_hash=hash_password(password))
        self.end_sessions(username)

    def set_disabled(self, username: str, disabled: bool) -> None:
        self._update(username, disabled=disabled)
        if disabled:
            self.end_sessions(username)

    def _update(self, username: str, **values: object) -> None:
        with self.engine.begin() as conn:
            n = conn.execute(update(UserRow).where(
                UserRow.username == username.strip().lower()).values(**values)).rowcount
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
            return conn.execute(delete(SessionRow).where(
                SessionRow.username == username.strip().lower())).rowcount
