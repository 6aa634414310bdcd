"""Users: the console's accounts (admins only). List them with their role, mailbox, state, live
sessions and sign-in lockout; create one, disable or enable it, give it a new password or
another role, end its sessions. Every button is a call on ``UserService``, which checks the
permission (``users.read``/``users.write``), keeps the last enabled admin and audits the change.

Passwords travel only in POST bodies (never in a URL, a flash message or the audit log) and are
typed twice, as with ``mailsift user``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mailsift.core.errors import InputError
from mailsift.interfaces.web.confirm import Preview, confirmed
from mailsift.interfaces.web.context import Viewer, WebContext, page
from mailsift.store.users import MIN_PASSWORD, ROLES, normalise_username

__all__ = ["register"]


def _password(form: Mapping[str, Any]) -> str:
    password = str(form.get("password", ""))
    if password != str(form.get("repeat", "")):
        raise InputError("the passwords do not match")
    return password


def _sessions(n: int) -> str:
    return f"{n} session{'s' if n != 1 else ''} ended"


def register(router: APIRouter, ctx: WebContext) -> None:
    users = ctx.services.users

    @router.get("/users")
    @page(ctx)
    def user_list(request: Request) -> Response:
        who = ctx.require(request)
        return ctx.render(request, "users.html", who, users=users.list(who.principal),
                          roles=ROLES, min_password=MIN_PASSWORD,
                          throttle=ctx.settings.http.login_throttle)

    @router.post("/users/create")
    @page(ctx)
    async def user_create(request: Request) -> Response:
        who, form = await ctx.posted(request)
        # scrypt takes ~60 ms of CPU: off the event loop
        info = await run_in_threadpool(
            users.create, who.principal, str(form.get("username", "")), _password(form),
            str(form.get("role", "")), mailbox=str(form.get("mailbox", "")) or None)
        return ctx.redirect("/users", f"created {info.role} {info.username}"
                            + (f" (mailbox {info.mailbox})" if info.mailbox else ""))

    def live_sessions(who: Viewer, name: str) -> int:
        return users.get(who.principal, name).sessions

    @router.post("/users/{username}/disable")
    @page(ctx)
    async def user_disable(request: Request, username: str) -> Response:
        who, form = await ctx.posted(request)
        name = normalise_username(username)
        live = live_sessions(who, name)
        answer = confirmed(ctx, request, who, form, Preview(
            title=f"Disable {name}", verb="disable", count=1, noun="user",
            note=f"{name} is signed out at once ({live} live session{'s' if live != 1 else ''}) "
                 "and cannot sign in until enabled again.", back="/users"))
        if not isinstance(answer, str):
            return answer
        ended = users.set_disabled(who.principal, username, True, reason=answer)
        return ctx.redirect("/users", f"disabled {name} ({_sessions(ended)})")

    @router.post("/users/{username}/enable")
    @page(ctx)
    async def user_enable(request: Request, username: str) -> Response:
        who, _ = await ctx.posted(request)
        users.set_disabled(who.principal, username, False)
        return ctx.redirect("/users", f"enabled {normalise_username(username)}")

    @router.post("/users/{username}/password")
    @page(ctx)
    async def user_password(request: Request, username: str) -> Response:
        who, form = await ctx.posted(request)
        ended = await run_in_threadpool(users.set_password, who.principal, username,
                                        _password(form))
        return ctx.redirect("/users", f"new password for {normalise_username(username)} "
                            f"({_sessions(ended)})")

    @router.post("/users/{username}/role")
    @page(ctx)
    async def user_role(request: Request, username: str) -> Response:
        who, form = await ctx.posted(request)
        info = users.set_role(who.principal, username, str(form.get("role", "")),
                              mailbox=str(form.get("mailbox", "")) or None)
        return ctx.redirect("/users", f"{info.username} is now {info.role}"
                            + (f" (mailbox {info.mailbox})" if info.mailbox else ""))

    @router.post("/users/{username}/sessions/end")
    @page(ctx)
    async def user_sessions_end(request: Request, username: str) -> Response:
        who, form = await ctx.posted(request)
        name = normalise_username(username)
        answer = confirmed(ctx, request, who, form, Preview(
            title=f"End the sessions of {name}", verb="end",
            count=live_sessions(who, name), noun="live sessions",
            note=f"{name} is signed out everywhere and can sign in again.", back="/users"))
        if not isinstance(answer, str):
            return answer
        ended = users.end_sessions(who.principal, username, reason=answer)
        return ctx.redirect("/users", f"{name}: {_sessions(ended)}")
