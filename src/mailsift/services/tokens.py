"""API token use cases: create (shown once), verify into a principal, revoke."""

from __future__ import annotations

from mailsift.services.access import NotFound, Principal, require
from mailsift.store import Store, TokenInfo

__all__ = ["TokenService"]


class TokenService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, actor: Principal, role: str, *, name: str = "", subject: str | None = None,
               expires_at: float | None = None) -> tuple[str, TokenInfo]:
        require(actor, "token.write")
        token, info = self.store.tokens.create(role, name=name, subject=subject,
                                               created_by=actor.name, expires_at=expires_at)
        self.store.audit.append(actor.name, "token.create", info.id,
                                {"role": role, "name": name, "subject": info.subject})
        return token, info

    def revoke(self, actor: Principal, token_id: str) -> None:
        require(actor, "token.write")
        if not self.store.tokens.revoke(token_id):
            raise NotFound(f"no active token {token_id}")
        self.store.audit.append(actor.name, "token.revoke", token_id)

    def list(self, actor: Principal) -> list[TokenInfo]:
        require(actor, "token.write")
        return self.store.tokens.list()

    def authenticate(self, token: str) -> Principal | None:
        info = self.store.tokens.verify(token)
        if info is None:
            return None
        return Principal(info.principal, info.role, info.subject)
