"""The CSRF check of the forms shown before there is a session (the login form, the sign-in
link form): a random token both in a strict cookie scoped to the form's path and in the form;
a post counts only when it carries the cookie's token."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["form_token", "new_token", "set_token"]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def set_token(response: Response, cookie: str, token: str, *, path: str,
              secure: bool) -> Response:
    """``response`` with ``token`` in the cookie ``cookie`` (HttpOnly, SameSite=Strict)."""
    response.set_cookie(cookie, token, httponly=True, samesite="strict", secure=secure,
                        path=path)
    return response


def form_token(request: Request, form: Any, cookie: str) -> str | None:
    """The cookie's token when the posted ``form`` carries the same one in ``csrf``; else
    None (no cookie, or the form is stale or forged)."""
    expected = request.cookies.get(cookie, "")
    sent = str(form.get("csrf", ""))
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return None
    return expected
