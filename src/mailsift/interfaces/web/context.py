"""What every page of the console shares: the services it adapts, who is asking, rendering,
form and query parsing, and the mapping of service errors to pages.

The console is an adapter: it turns forms into calls on ``StoreServices`` and
``RolloutService`` and their answers into HTML. Permissions are the services' (``Principal``);
the pages only hide buttons a role cannot use, they never decide access themselves.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import inspect
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from mailsift.config.schema import Settings
from mailsift.core.errors import (
    DeliveryError,
    InputError,
    MailsiftError,
    Overridable,
    StoreError,
)
from mailsift.core.verdict import Action, Category
from mailsift.services.access import AccessDenied, NotFound, Principal
from mailsift.services.rollout import RolloutService
from mailsift.services.signin import SignInService, Throttled
from mailsift.services.store_services import StoreServices
from mailsift.store import TraceQuery
from mailsift.store.users import SessionInfo, UserStore

__all__ = ["CSP", "QUERY_FIELDS", "Viewer", "WebContext", "fmt_time", "page", "parse_time",
           "time_tag"]

#: Every console page: no script but the console's own static file (``localtime.js``, which
#: only shows times in the viewer's zone; every page works without it), nothing from
#: elsewhere, and never framed by another site. The message preview has its own, stricter
#: policy.
CSP = ("default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'; img-src 'self' data:; style-src 'self'; "
       "frame-src 'self'")
#: Trace query fields a search form may carry (``message`` is internal).
QUERY_FIELDS = ("sender", "recipient", "subject", "since", "until", "category", "action",
                "status", "finding", "artifact", "version", "listed", "message_id", "ref",
                "client_ip", "url_domain", "attachment")
#: Form fields that shape the query without being one: a quick time range and the viewer's
#: time zone (set by ``localtime.js``; typed times are read in it, UTC without it).
FORM_EXTRAS = ("range", "tz")
#: The quick time ranges of the search form.
RANGES = {"1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days"}
PAGE_SIZES = (25, 50, 100, 200)
CATEGORIES = tuple(c.value for c in Category)
ACTIONS = tuple(a.value for a in Action)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# An error page per service error, as the REST API maps them to statuses.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (AccessDenied, 403), (NotFound, 404), (InputError, 400), (StoreError, 409), (Throttled, 429),
    (DeliveryError, 502), (MailsiftError, 500),
)


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def time_tag(ts: float | None) -> Markup:
    """A time as ``<time datetime="...Z">... UTC</time>``: readable without script, and shown
    in the viewer's own zone by ``localtime.js``."""
    if ts is None:
        return Markup("-")
    dt = datetime.fromtimestamp(ts, UTC)
    return Markup('<time datetime="{}">{} UTC</time>').format(
        dt.isoformat(timespec="seconds").replace("+00:00", "Z"),
        dt.strftime("%Y-%m-%d %H:%M:%S"))


def _zone(name: str | None) -> Any:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone {name!r}") from exc


def parse_time(text: str | None, now: float, tz: str | None = None) -> float | None:
    """``2026-11-20T09:30`` (in the zone ``tz``, UTC by default, as a datetime-local field
    sends it), epoch seconds, or a relative ``-2h``/``-7d``; empty means no bound."""
    t = (text or "").strip()
    if not t:
        return None
    if t[0] == "-" and t[-1:] in _UNITS:
        try:
            return now - float(t[1:-1]) * _UNITS[t[-1]]
        except ValueError:
            pass
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t)
    except ValueError as exc:
        raise InputError(f"not a time: {t!r} (use 2026-11-20T09:30, -24h or -7d)") from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=_zone(tz))).timestamp()


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of a request, as the services know it."""

    session: SessionInfo
    token: str

    @property
    def principal(self) -> Principal:
        u = self.session.user
        return Principal(u.username, u.role, u.mailbox)

    def can(self, permission: str) -> bool:
        return self.principal.can(permission)


@dataclass
class WebContext:
    services: StoreServices
    rollout: RolloutService
    users: UserStore
    settings: Settings
    signin: SignInService
    secure_cookies: bool | None = None  # None: Secure when the request came over https
    session_ttl: float = 12 * 3600
    jobs: set[asyncio.Task[Any]] = field(default_factory=set)
    env: Environment = field(init=False)
    #: signs the banner texts of redirects (per process: a redirect lands on the same node)
    flash_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        self.env = Environment(loader=PackageLoader("mailsift.interfaces.web", "templates"),
                               autoescape=select_autoescape(default=True), trim_blocks=True,
                               lstrip_blocks=True)
        self.env.filters["ts"] = fmt_time
        self.env.filters["when"] = time_tag
        self.env.filters["qs"] = lambda d: urlencode({k: v for k, v in d.items() if v})
        self.env.globals.update(categories=CATEGORIES, actions=ACTIONS, ranges=RANGES,
                                page_sizes=PAGE_SIZES)

    @property
    def store(self) -> Any:
        return self.services.store

    def now(self) -> float:
        return float(self.store.clock.now())

    # -- sessions -------------------------------------------------------------------------------
    COOKIE = "mailsift_session"

    def viewer(self, request: Request) -> Viewer | None:
        token = request.cookies.get(self.COOKIE, "")
        session = self.users.session(token) if token else None
        return Viewer(session, token) if session is not None else None

    def require(self, request: Request) -> Viewer:
        """The signed-in user, or a redirect to the login page."""
        who = self.viewer(request)
        if who is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "login required",
                                headers={"Location": "/login?" + urlencode({"next": target})})
        return who

    def secure(self, request: Request) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return request.url.scheme == "https"

    async def posted(self, request: Request) -> tuple[Viewer, Mapping[str, Any]]:
        """The signed-in user and the form of a POST whose CSRF token matches its session."""
        import hmac

        who = self.require(request)
        form = await request.form()
        sent = str(form.get("csrf", ""))
        if not hmac.compare_digest(sent.encode(), who.session.csrf.encode()):
            # an error page (403), not a bare JSON answer: the user just reloads the form
            raise AccessDenied("invalid or missing CSRF token: reload the page and try again")
        return who, form

    # -- rendering ------------------------------------------------------------------------------
    def render(self, request: Request, template: str, viewer: Viewer | None,
               http_status: int = 200, **values: Any) -> Response:
        flash = self._flash(request)
        html = self.env.get_template(template).render(
            request=request, viewer=viewer, user=viewer.session.user if viewer else None,
            csrf=viewer.session.csrf if viewer else "", path=request.url.path,
            **flash, **values)
        response = secure_headers(HTMLResponse(html, status_code=http_status))
        if self.FLASH in request.cookies:  # shown once
            response.delete_cookie(self.FLASH, path="/")
        return response

    FLASH = "mailsift_flash"

    def redirect(self, url: str, msg: str = "", *, err: str = "") -> RedirectResponse:
        """A redirect after a POST; its banner texts travel in a signed, short-lived cookie,
        never in the URL: the banner is trusted UI, and ``/login?msg=...`` once showed any
        text a link carried (a phishing aid on the console's own origin)."""
        response = RedirectResponse(url, status_code=303)
        if msg or err:
            payload = base64.urlsafe_b64encode(
                json.dumps([msg[:800], err[:800]]).encode()).decode()
            response.set_cookie(self.FLASH, f"{payload}.{self._sign(payload)}", max_age=120,
                                httponly=True, samesite="lax", path="/",
                                secure=bool(self.secure_cookies))
        return response

    def _sign(self, payload: str) -> str:
        return hmac.new(self.flash_key, payload.encode(), "sha256").hexdigest()[:32]

    def _flash(self, request: Request) -> dict[str, str | None]:
        """The banner texts of the last redirect, from its cookie when this console signed it
        (query parameters are never read)."""
        payload, _, sig = request.cookies.get(self.FLASH, "").partition(".")
        if not payload or not hmac.compare_digest(sig.encode(), self._sign(payload).encode()):
            return {"flash": None, "error": None}
        try:
            msg, err = json.loads(base64.urlsafe_b64decode(payload.encode()))
        except ValueError:
            return {"flash": None, "error": None}
        return {"flash": str(msg) or None, "error": str(err) or None}

    def query_from(self, params: Mapping[str, Any]) -> TraceQuery:
        values: dict[str, Any] = {}
        tz = str(params.get("tz") or "").strip() or None
        for name in QUERY_FIELDS:
            raw = str(params.get(name) or "").strip()
            if not raw:
                continue
            values[name] = parse_time(raw, self.now(), tz) if name in ("since", "until") \
                else raw
        quick = str(params.get("range") or "").strip()
        if quick:
            if quick not in RANGES:
                raise InputError(f"unknown time range {quick!r} ({', '.join(RANGES)})")
            if "since" not in values:  # a typed start wins over the quick range
                values["since"] = parse_time("-" + quick, self.now())
        return TraceQuery(**values)

    @staticmethod
    def form_values(params: Mapping[str, Any]) -> dict[str, str]:
        """The query fields as typed, to refill the search form and build links."""
        return {k: str(params.get(k) or "").strip() for k in (*QUERY_FIELDS, *FORM_EXTRAS)}

    @staticmethod
    def listing(params: Mapping[str, Any]) -> dict[str, Any]:
        """How a result list is shown: sort column, order and page size (from its links)."""
        sort = str(params.get("sort") or "received")
        order = "asc" if params.get("order") == "asc" else "desc"
        try:
            size = int(str(params.get("size") or 50))
        except ValueError:
            size = 50
        if size not in PAGE_SIZES:
            size = 50
        return {"sort": sort, "order": order, "size": size}


def secure_headers(response: Response, csp: str = CSP) -> Response:
    """Headers every console response carries (the preview passes its own CSP)."""
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    if "frame-ancestors 'none'" in csp:
        response.headers["X-Frame-Options"] = "DENY"
    return response


def page(ctx: WebContext) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a route: service errors become an error page with the matching status."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def error(request: Request, exc: MailsiftError) -> Response:
            status = next(code for kind, code in _STATUS if isinstance(exc, kind))
            # console wording: the command line's "--force" means nothing on a web page
            message = exc.how("ticking “force (audited)” on the form",
                              "a reason") if isinstance(exc, Overridable) else str(exc)
            return ctx.render(request, "error.html", ctx.viewer(request), http_status=status,
                              status_code=status, message=message)

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(request: Request, *args: Any, **kwargs: Any) -> Any:
                try:
                    return await fn(request, *args, **kwargs)
                except MailsiftError as exc:
                    return error(request, exc)

            return run_async

        @functools.wraps(fn)
        def run(request: Request, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(request, *args, **kwargs)
            except MailsiftError as exc:
                return error(request, exc)

        return run

    return wrap


def svg(markup: str) -> Markup:
    """Mark chart SVG (built from escaped parts in ``charts``) as safe for the templates."""
    return Markup(markup)
