"""Request plumbing shared by the routers: the services bundle, the caller, trace queries."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mailsift.services.access import Principal
from mailsift.services.store_services import StoreServices
from mailsift.store import TraceQuery

__all__ = ["Caller", "PathId", "QueryId", "Services", "TraceFilter", "get_services"]

#: A database id: a 64-bit integer. A larger one used to reach the driver, which fails (SQLite:
#: OverflowError; PostgreSQL: bigint out of range) and was answered 500; now it is a 422.
_ID_MIN, _ID_MAX = -(2**63), 2**63 - 1
PathId = Annotated[int, Path(ge=_ID_MIN, le=_ID_MAX)]
QueryId = Annotated[int | None, Query(ge=_ID_MIN, le=_ID_MAX)]

_bearer = HTTPBearer(auto_error=False, description="an API token from `mailsift token create`")


def get_services(request: Request) -> StoreServices:
    services: StoreServices = request.app.state.services
    return services


def get_caller(
    services: Annotated[StoreServices, Depends(get_services)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "an API token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    who = services.tokens.authenticate(creds.credentials)
    if who is None:
        raise HTTPException(401, "invalid, expired or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    return who


def trace_filter(
    sender: str | None = None,
    recipient: str | None = None,
    subject: str | None = None,
    since: Annotated[float | None, Query(description="epoch seconds, inclusive")] = None,
    until: Annotated[float | None, Query(description="epoch seconds, exclusive")] = None,
    category: str | None = None,
    action: str | None = None,
    status: str | None = None,
    finding: Annotated[str | None, Query(description="finding code, e.g. RULE_X")] = None,
    artifact: str | None = None,
    version: str | None = None,
    listed: Annotated[str | None, Query(description="IP or domain a DNS list named")] = None,
    message_id: Annotated[str | None, Query(description="Message-ID header (exact)")] = None,
    ref: Annotated[str | None, Query(description="mailsift reference or its beginning")] = None,
    client_ip: Annotated[str | None, Query(description="connecting client (exact)")] = None,
    url_domain: Annotated[str | None, Query(description="host or domain linked to")] = None,
    attachment: Annotated[str | None, Query(description="SHA-256 of an attachment")] = None,
) -> TraceQuery:
    """``sender``/``recipient``: a whole address matches exactly, ``@domain`` a domain, any
    other text (``paypal``, ``ann@``) a case-insensitive part (the sender's display name too)."""
    return TraceQuery(sender=sender, recipient=recipient, subject=subject, since=since,
                      until=until, category=category, action=action, status=status,
                      finding=finding, artifact=artifact, version=version, listed=listed,
                      message_id=message_id, ref=ref, client_ip=client_ip,
                      url_domain=url_domain, attachment=attachment)


Services = Annotated[StoreServices, Depends(get_services)]
Caller = Annotated[Principal, Depends(get_caller)]
TraceFilter = Annotated[TraceQuery, Depends(trace_filter)]
