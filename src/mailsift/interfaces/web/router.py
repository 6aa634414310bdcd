"""``build_web_router``: the web console's routes, mounted at ``/`` beside the ``/v1/`` API.

It needs only the store and the rollout registry, never the scan pool: when detection is broken
(workers crashing, a bad pack) the console still shows what happened and still releases mail.

Sessions are server-side (``store.users``): the cookie holds a random token and is HttpOnly,
SameSite=Lax and Secure when the console is served over TLS. Every POST carries the session's
CSRF token in a hidden field; the login form, which has no session yet, uses a double-submit
cookie. Every page is sent with a strict Content-Security-Policy (no script at all: the console
works with plain forms and links) and may not be framed by another site.

Passwords are checked by ``SignInService`` only, which throttles failed sign-ins per username
and per client address in the store: a throttled sign-in is answered 429 with ``Retry-After``.
The client address is the connection's (``request.client``); behind a reverse proxy list it in
``[http] trusted_proxies`` (uvicorn then believes its X-Forwarded-For, and nobody else's), or
every user shares the proxy's counter.
"""

from __future__ import annotations

import hmac
import secrets
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mailsift.config.schema import Settings
from mailsift.interfaces.web.context import WebContext, page
from mailsift.services.rollout import RolloutService
from mailsift.services.signin import SignInService, Throttled
from mailsift.services.store_services import StoreServices

__all__ = ["build_web_router"]

_LOGIN_CSRF = "mailsift_login_csrf"


def _safe_next(target: str) -> str:
    # Only same-site paths: "//evil.example" or "https://..." would make login an open redirect.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def build_web_router(parts_or_services: Any, *, settings: Settings | None = None,
                     rollout: RolloutService | None = None, secure_cookies: bool | None = None,
                     session_ttl: float = 12 * 3600) -> APIRouter:
    """The console's router. Give the gateway's ``GatewayParts`` (its store, settings and
    rollout service are used) or a ``StoreServices`` (then ``settings``; the rollout service is
    built on the same store)."""
    if isinstance(parts_or_services, StoreServices):
        services = parts_or_services
        settings = settings or Settings()
    else:
        parts = parts_or_services
        settings = settings or parts.settings
        services = StoreServices.build(parts.store, settings=parts.settings)
        rollout = rollout or parts.rollout
    assert settings is not None
    store = services.store
    ctx = WebContext(services=services, rollout=rollout or RolloutService(store, settings),
                     users=store.users, settings=settings,
                     signin=SignInService(store, settings.http.login_throttle),
                     secure_cookies=secure_cookies, session_ttl=session_ttl)
    router = APIRouter(include_in_schema=False)
    _session_routes(router, ctx)

    from mailsift.interfaces.web import (
        pages_admin,
        pages_dashboard,
        pages_dmarc,
        pages_mailflow,
        pages_messages,
        pages_reports,
        pages_users,
    )

    pages_dashboard.register(router, ctx)
    pages_dmarc.register(router, ctx)
    pages_messages.register(router, ctx)
    pages_admin.register(router, ctx)
    pages_users.register(router, ctx)
    pages_reports.register(router, ctx)
    pages_mailflow.register(router, ctx)
    _enduser_routes(router, ctx)
    return router


def _enduser_routes(router: APIRouter, ctx: WebContext) -> None:
    """Digest action links and sign-in links (issue 22): pages without a session."""
    from mailsift.interfaces.web import pages_enduser
    from mailsift.services.links import LinkSigner
    from mailsift.services.magic_link import MagicLinkService
    from mailsift.services.self_service import SelfService

    services, settings = ctx.services, ctx.settings
    signer = LinkSigner.for_settings(settings)
    self_service = SelfService(services.store, signer, quarantine=services.quarantine,
                               release=services.release, reports=services.reports,
                               policies=services.quarantine.policies)
    magic = MagicLinkService(services.store, settings, signer=signer,
                             relay_factory=services.release.relay_factory)
    pages_enduser.register(router, ctx, self_service, magic)


def _session_routes(router: APIRouter, ctx: WebContext) -> None:
    css = files("mailsift.interfaces.web").joinpath("static/ui.css").read_bytes()

    @router.get("/static/ui.css")
    def stylesheet() -> Response:
        return Response(css, media_type="text/css",
                        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options":
                                 "nosniff"})

    @router.get("/login", response_class=HTMLResponse)
    @page(ctx)
    def login_form(request: Request, next: str = "/") -> Response:
        token = secrets.token_urlsafe(24)
        response = ctx.render(request, "login.html", None, next=_safe_next(next),
                              login_csrf=token)
        response.set_cookie(_LOGIN_CSRF, token, httponly=True, samesite="strict",
                            secure=ctx.secure(request), path="/login")
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        expected = request.cookies.get(_LOGIN_CSRF, "")
        sent = str(form.get("csrf", ""))
        target = _safe_next(str(form.get("next", "/")))
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return ctx.redirect("/login", err="the login form expired: try again")
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        address = request.client.host if request.client else None
        try:
            user = await run_in_threadpool(ctx.signin.sign_in, username, password, address)
        except Throttled as exc:
            response = ctx.render(request, "login.html", None, http_status=429, next=target,
                                  login_csrf=expected, login_error=str(exc))
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        if user is None:
            return ctx.render(request, "login.html", None, http_status=401, next=target,
                              login_csrf=expected, login_error="wrong username or password")
        token, _ = ctx.users.start_session(user.username, ttl=ctx.session_ttl)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(ctx.COOKIE, token, max_age=int(ctx.session_ttl), httponly=True,
                            samesite="lax", secure=ctx.secure(request), path="/")
        response.delete_cookie(_LOGIN_CSRF, path="/login")
        return response

    @router.post("/logout")
    @page(ctx)
    async def logout(request: Request) -> Response:
        who, _ = await ctx.posted(request)
        ctx.users.end_session(who.token)
        ctx.store.audit.append(who.session.user.username, "web.logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(ctx.COOKIE, path="/")
        return response
