"""The FastAPI app factory of the ``/v1/`` API.

``create_app`` takes ready-made store services (tests, the gateway's composition root) or
settings (it then opens the store itself and closes it at shutdown). Service errors map to HTTP
statuses in one place: not allowed 403, not found 404, bad input 400, store conflict 409, next
hop trouble 502. Other routers (``/v1/scan``) can be mounted on the returned app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mailsift import __version__
from mailsift.config.schema import Settings
from mailsift.core.errors import (
    DeliveryError,
    InputError,
    MailsiftError,
    Overridable,
    StoreError,
)
from mailsift.services.access import AccessDenied, NotFound
from mailsift.services.release import RescanFn
from mailsift.services.store_services import StoreServices

__all__ = ["create_app"]

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (AccessDenied, 403),
    (NotFound, 404),
    (InputError, 400),
    (StoreError, 409),
    (DeliveryError, 502),
    (MailsiftError, 500),
)


def create_app(services: StoreServices | None = None, *, settings: Settings | None = None,
               rescan: RescanFn | None = None, routers: Sequence[APIRouter] = (),
               api_docs: bool | None = None) -> FastAPI:
    """The API app. Give ``services`` (kept open) or ``settings`` (opened and closed here);
    ``routers`` are mounted under ``/v1`` too (e.g. the scan router of the gateway).

    ``/docs`` and ``/redoc`` (``[http] api_docs``, default off) load their scripts from a
    public CDN, on the console's own origin: off unless asked. ``/openapi.json`` stays."""
    if api_docs is None:
        api_docs = settings.http.api_docs if settings is not None else False
    if services is None and settings is None:
        settings = Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = None
        if getattr(app.state, "services", None) is None:
            assert settings is not None
            owned = StoreServices.open(settings, rescan=rescan)
            app.state.services = owned
        try:
            yield
        finally:
            if owned is not None:
                owned.close()

    app = FastAPI(
        title="mailsift API",
        version=__version__,
        description="Message trace, quarantine (with idempotent release), allow/block lists, "
        "user reports, the audit log and console users. Authenticate with "
        "`Authorization: Bearer <token>`.",
        lifespan=lifespan,
        docs_url="/docs" if api_docs else None,
        redoc_url="/redoc" if api_docs else None,
    )
    app.state.services = services
    app.state.jobs = set()

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in _STATUS if isinstance(exc, kind))
        detail = exc.how('"force": true', 'a "reason"') if isinstance(exc, Overridable) \
            else str(exc)
        return JSONResponse({"detail": detail, "error": type(exc).__name__}, status)

    app.add_exception_handler(MailsiftError, on_error)

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's default answer echoes each invalid field's input, and a request body can
        # hold a password (``/v1/users``): say where and what, never the value.
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""),
                   "type": e.get("type", "")} for e in exc.errors()]
        return JSONResponse({"detail": errors, "error": "RequestValidationError"}, 422)

    app.add_exception_handler(RequestValidationError, on_invalid)

    from mailsift.interfaces.http.routes_admin import router as admin_router
    from mailsift.interfaces.http.routes_quarantine import router as quarantine_router
    from mailsift.interfaces.http.routes_reports import router as reports_router
    from mailsift.interfaces.http.routes_trace import router as trace_router
    from mailsift.interfaces.http.routes_users import router as users_router

    for router in (trace_router, quarantine_router, admin_router, users_router, reports_router,
                   *routers):
        app.include_router(router, prefix="/v1")
    return app
