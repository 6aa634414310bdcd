"""Pages for recipients without a password: digest action links and sign-in links.

``/q/<purpose>/<message>?t=<token>``: a GET only *shows* what the link would do (mail
scanners and link previews fetch every URL in a message, so a GET must change nothing); the
person confirms with a POST carrying the same token, which is then used once
(``services.self_service``, ``services.magic_link``). A link that is tampered with, expired,
already used, for another message or no longer allowed by the quarantine policy gets a page
that says so, and nothing happens. The token is the only credential: no session or CSRF token
is needed, and the pages are never cached nor sent as a Referer.

``/signin/link``: a recipient asks for a sign-in link; the answer is the same whether or not
the address is known, and the mail is sent in the background.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mailsift.interfaces.web.context import WebContext
from mailsift.interfaces.web.signin_csrf import form_token, new_token, set_token
from mailsift.services.links import PURPOSES, LinkError, LinkProblem
from mailsift.services.magic_link import MagicLinkService
from mailsift.services.self_service import LinkRetry, SelfService

__all__ = ["register"]

_CSRF = "mailsift_link_csrf"
_BUTTON = {"release": "Release it", "request": "Send the request", "notjunk": "Report not junk",
           "optout": "Stop the notices", "signin": "Sign in"}
_STATUS = {LinkProblem.EXPIRED: 410, LinkProblem.USED: 410, LinkProblem.NOT_ALLOWED: 403}


def register(router: APIRouter, ctx: WebContext, self_service: SelfService,
             magic: MagicLinkService) -> None:
    def client(request: Request) -> str:
        return request.client.host if request.client else ""

    def refused(request: Request, exc: LinkError) -> Response:
        return ctx.render(request, "link.html", None, http_status=_STATUS.get(exc.problem, 400),
                          refused=str(exc))

    def action_url(purpose: str, message: str) -> str:
        return f"/q/{purpose}/{quote(message, safe='')}"

    @router.get("/q/{purpose}/{message}")
    def link_page(request: Request, purpose: str, message: str, t: str = "") -> Response:
        if purpose not in PURPOSES:
            return refused(request, LinkError(LinkProblem.WRONG_ACTION))
        try:
            if purpose == "signin":
                values: dict[str, Any] = {"question": "Sign in to see your quarantined mail",
                                          "recipient": magic.check(t)}
            else:
                p = self_service.preview(t, purpose, message)
                values = {"question": p.question, "recipient": p.link.recipient,
                          "sender": p.sender, "subject": p.subject, "category": p.category}
        except LinkError as exc:
            return refused(request, exc)
        return ctx.render(request, "link.html", None, token=t, button=_BUTTON[purpose],
                          action=action_url(purpose, message), **values)

    @router.post("/q/{purpose}/{message}")
    async def link_confirm(request: Request, purpose: str, message: str) -> Response:
        form = await request.form()
        # RFC 8058 one-click unsubscribe posts to the List-Unsubscribe URL itself
        token = str(form.get("t") or request.query_params.get("t") or "")
        if purpose not in PURPOSES:
            return refused(request, LinkError(LinkProblem.WRONG_ACTION))
        try:
            if purpose == "signin":
                user = magic.confirm(token, client(request))
                session, _ = ctx.users.start_session(user.username, ttl=ctx.session_ttl)
                response = RedirectResponse("/quarantine", status_code=303)
                response.set_cookie(ctx.COOKIE, session, max_age=int(ctx.session_ttl),
                                    httponly=True, samesite="lax", secure=ctx.secure(request),
                                    path="/")
                return response
            outcome = await self_service.confirm(token, purpose, message,
                                                 client=client(request))
        except LinkError as exc:
            return refused(request, exc)
        except LinkRetry as exc:
            return ctx.render(request, "link.html", None, http_status=503, refused=str(exc))
        return ctx.render(request, "link.html", None, done=outcome.done)

    @router.get("/signin/link")
    def signin_form(request: Request) -> Response:
        token = new_token()
        return set_token(ctx.render(request, "signin_link.html", None, link_csrf=token),
                         _CSRF, token, path="/signin", secure=ctx.secure(request))

    @router.post("/signin/link")
    async def signin_request(request: Request) -> Response:
        form = await request.form()
        if form_token(request, form, _CSRF) is None:
            return ctx.redirect("/signin/link", err="the form expired: try again")
        address = str(form.get("address", ""))[:320]
        # answered before anything is checked: the reply and its timing are the same for
        # every address (known, unknown, throttled)
        task = asyncio.create_task(magic.deliver(address, client(request)))
        ctx.jobs.add(task)
        task.add_done_callback(ctx.jobs.discard)
        return ctx.render(request, "signin_link.html", None, asked=address.strip(),
                          minutes=int(magic.conf.link_ttl_minutes))
