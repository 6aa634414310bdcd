"""``/v1/users``: console accounts over the API (admin tokens only; same ``UserService`` as the
CLI and the console's Users page, so the same rules and the same audit entries).

Passwords travel only in request bodies and are never sent back. The API itself authenticates
with tokens (256-bit random, not guessable), never with these passwords.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mailsift.interfaces.http.deps import Caller, Services
from mailsift.store.users import normalise_username

__all__ = ["router"]

router = APIRouter(tags=["users"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewUser(_Body):
    username: str
    role: str = Field(description="admin, analyst or recipient")
    mailbox: str | None = Field(None, description="the one mailbox a recipient user sees")
    password: SecretStr


class PasswordBody(_Body):
    password: SecretStr


class RoleBody(_Body):
    role: str
    mailbox: str | None = None


@router.get("/users", summary="Console users with their live sessions and sign-in lockout")
def list_users(svc: Services, caller: Caller) -> list[dict[str, Any]]:
    return [s.to_dict() for s in svc.users.list(caller)]


@router.post("/users", status_code=201, summary="Create a console user")
def create_user(svc: Services, caller: Caller, body: NewUser) -> dict[str, Any]:
    info = svc.users.create(caller, body.username, body.password.get_secret_value(), body.role,
                            mailbox=body.mailbox)
    return info.to_dict()


@router.get("/users/{username}")
def get_user(svc: Services, caller: Caller, username: str) -> dict[str, Any]:
    return svc.users.get(caller, username).to_dict()


@router.post("/users/{username}/disable", summary="Disable a user (ends its sessions)")
def disable_user(svc: Services, caller: Caller, username: str) -> dict[str, Any]:
    ended = svc.users.set_disabled(caller, username, True)
    return {**svc.users.get(caller, username).to_dict(), "sessions_ended": ended}


@router.post("/users/{username}/enable", summary="Enable a user again")
def enable_user(svc: Services, caller: Caller, username: str) -> dict[str, Any]:
    svc.users.set_disabled(caller, username, False)
    return svc.users.get(caller, username).to_dict()


@router.put("/users/{username}/password",
            summary="Set a new password (ends the user's sessions, lifts a sign-in lockout)")
def set_password(svc: Services, caller: Caller, username: str,
                 body: PasswordBody) -> dict[str, Any]:
    ended = svc.users.set_password(caller, username, body.password.get_secret_value())
    return {**svc.users.get(caller, username).to_dict(), "sessions_ended": ended}


@router.put("/users/{username}/role", summary="Change a user's role (and mailbox)")
def set_role(svc: Services, caller: Caller, username: str, body: RoleBody) -> dict[str, Any]:
    svc.users.set_role(caller, username, body.role, mailbox=body.mailbox)
    return svc.users.get(caller, username).to_dict()


@router.delete("/users/{username}/sessions", summary="End every session of a user")
def end_sessions(svc: Services, caller: Caller, username: str) -> dict[str, Any]:
    return {"username": normalise_username(username),
            "sessions_ended": svc.users.end_sessions(caller, username)}
