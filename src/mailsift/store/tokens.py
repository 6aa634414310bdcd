"""API tokens: only a sha256 of each token is stored, so a database dump grants nothing.

Tokens are 256-bit random strings; a plain sha256 (not a slow password hash) is enough because
they are not guessable, and it keeps each API request to one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update

from mailsift.core.errors import StoreError
from mailsift.core.protocols import Clock
from mailsift.store.db import read_only
from mailsift.store.models import ApiToken

__all__ = ["ROLES", "TokenInfo", "TokenStore", "hash_token"]

ROLES = ("admin", "analyst", "recipient")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    role: str
    subject: str | None
    created_by: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    @property
    def principal(self) -> str:
        """How the token's holder appears in the audit log."""
        return f"token:{self.name or self.id[:8]}" + (f"<{self.subject}>" if self.subject else "")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "subject": self.subject,
                "created_by": self.created_by, "created_at": self.created_at,
                "expires_at": self.expires_at, "revoked_at": self.revoked_at}


class TokenStore:
    def __init__(self, engine: Engine, clock: Clock, *, prefix: str = "msk_") -> None:
        self.engine = engine
        self.clock = clock
        self.prefix = prefix

    def create(self, role: str, *, name: str = "", subject: str | None = None,
               created_by: str = "cli", expires_at: float | None = None) -> tuple[str, TokenInfo]:
        """Returns the token (shown once) and its record."""
        if role not in ROLES:
            raise StoreError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        if role == "recipient" and not subject:
            raise StoreError("a recipient token needs the mailbox it may see (subject)")
        token = self.prefix + secrets.token_urlsafe(32)
        info = TokenInfo(uuid.uuid4().hex, name, role, subject.lower() if subject else None,
                         created_by, self.clock.now(), expires_at, None)
        with self.engine.begin() as conn:
            conn.execute(insert(ApiToken), {
                "id": info.id, "name": name, "token_hash": hash_token(token), "role": role,
                "subject": info.subject, "created_by": created_by,
                "created_at": info.created_at, "expires_at": expires_at, "revoked_at": None,
            })
        return token, info

    def verify(self, token: str) -> TokenInfo | None:
        """The token's record if it is known, not revoked and not expired."""
        with read_only(self.engine) as conn:
            row = conn.execute(
                select(ApiToken).where(ApiToken.token_hash == hash_token(token))
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and row.expires_at <= self.clock.now():
            return None
        return _info(row)

    def revoke(self, token_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=self.clock.now())
            ).rowcount)

    def list(self) -> list[TokenInfo]:
        with read_only(self.engine) as conn:
            return [_info(r) for r in conn.execute(
                select(ApiToken).order_by(ApiToken.created_at)
            ).all()]


def _info(r: Any) -> TokenInfo:
    return TokenInfo(r.id, r.name, r.role, r.subject, r.created_by, r.created_at, r.expires_at,
                     r.revoked_at)
