"""HTTP scanning endpoints: ``POST /v1/scan`` (mailsift's JSON) and ``POST /checkv2``
(Rspamd's protocol, so tools that speak it can use mailsift), plus ``/healthz`` and ``/metrics``.

Scanning over HTTP reports what the gateway would do (``Gateway.preview``: the same cleaning, lists
and rollout state as the mail flow); it does not store, deliver or count the message (the caller
acts on the answer, as with Rspamd), so the circuit breaker and sender history only learn from
mail that went through the flow.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mailsift.core.envelope import Connection, Envelope
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, Category
from mailsift.services.gateway import Gateway

__all__ = ["RSPAMD_ACTIONS", "build_scan_router"]

#: mailsift action -> Rspamd action name (Rspamd >= 1.9 knows quarantine and discard)
RSPAMD_ACTIONS = {
    Action.DELIVER: "no action",
    Action.TAG: "add header",
    Action.JUNK: "add header",
    Action.QUARANTINE: "quarantine",
    Action.TEMPFAIL: "soft reject",
    Action.REJECT: "reject",
}


def _ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise HTTPException(400, f"not an IP address: {value!r}") from exc


async def _body(request: Request, limit: int, *, allow_empty: bool = False) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"message larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if _zstd(request):
        raw = _unzstd(raw, limit)
    if not raw.strip() and not allow_empty:
        raise HTTPException(400, "empty message")
    return raw


def _zstd(request: Request) -> bool:
    """``rspamc -z``: the message is zstd-compressed and the reply must be too."""
    return request.headers.get("compression", "").strip().lower() == "zstd"


def _unzstd(data: bytes, limit: int) -> bytes:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - the server extra installs it
        raise HTTPException(415, "Compression: zstd needs the zstandard package "
                            "(pip install 'mailsift[server]')") from exc
    try:
        # read at most limit + 1 bytes whatever the frame claims: a zstd bomb stops here
        with zstandard.ZstdDecompressor().stream_reader(data) as reader:
            raw = reader.read(limit + 1)
    except zstandard.ZstdError as exc:
        raise HTTPException(400, f"Compression: zstd, but the body is not zstd ({exc})") from exc
    if len(raw) > limit:
        raise HTTPException(413, f"message larger than {limit} bytes")
    return raw


def _required_score(result: ScanResult, gateway: Gateway) -> float:
    thresholds = gateway.scans.settings.policy.thresholds
    category = result.verdict.category
    if category is Category.CLEAN:
        return float(thresholds.spam)
    return float(getattr(thresholds, category.value))


def _rspamd(result: ScanResult, gateway: Gateway, started: float) -> dict[str, Any]:
    symbols = {
        f.code: {
            "name": f.code,
            "score": f.weight if f.acts else 0.0,
            "metric_score": f.weight,
            "description": f.description,
            "options": list(f.evidence[:5]),
        }
        for f in result.findings
    }
    v = result.verdict
    return {
        "is_skipped": False,
        "score": round(v.score, 3),
        "required_score": _required_score(result, gateway),
        "action": RSPAMD_ACTIONS[v.action],
        "symbols": symbols,
        "messages": {"smtp_message": v.explanation} if not v.action.accepts else {},
        "message-id": result.message.message_id.strip("<>"),
        "time_real": round(time.perf_counter() - started, 4),
        "milter": {"add_headers": {"X-Mailsift-Category": v.category.value,
                                   "X-Mailsift-Ref": result.id}},
        "mailsift": {"category": v.category.value, "action": v.action.value,
                     "decided_by": v.decided_by.value},
    }


def build_scan_router(gateway: Gateway, *, max_bytes: int,
                      scan_guard: Callable[..., Any] | None = None) -> APIRouter:
    """``scan_guard`` is a FastAPI dependency that authenticates the caller for scanning."""
    deps = [Depends(scan_guard)] if scan_guard is not None else []
    router = APIRouter()

    @router.post("/v1/scan", dependencies=deps, tags=["scan"],
                 summary="Scan a raw message and explain the verdict")
    async def scan(request: Request, client_ip: str | None = None, helo: str | None = None,
                   mail_from: str | None = None,
                   rcpt: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
        raw = await _body(request, max_bytes)
        env = Envelope(mail_from=mail_from, rcpt_to=tuple(rcpt or ()),
                       connection=Connection(client_ip=_ip(client_ip), helo=helo))
        result = await gateway.preview(raw, env)
        return result.to_dict()

    @router.api_route("/checkv2", methods=["POST", "GET"], dependencies=deps, tags=["scan"],
                      summary="Rspamd-compatible scan (headers IP, Helo, From, Rcpt; "
                      "Compression: zstd)")
    async def checkv2(request: Request) -> Any:
        started = time.perf_counter()
        # Rspamd scans an empty message (rspamc -E sends GET /checkv2 without a body)
        raw = await _body(request, max_bytes, allow_empty=True)
        h = request.headers
        env = Envelope(
            mail_from=h.get("from"),
            rcpt_to=tuple(v for v in h.getlist("rcpt") for v in v.split(",") if v.strip()),
            connection=Connection(client_ip=_ip(h.get("ip")), helo=h.get("helo"),
                                  client_name=h.get("hostname")),
        )
        result = await gateway.preview(raw, env)
        reply = _rspamd(result, gateway, started)
        if not _zstd(request):
            return reply
        import zstandard

        body = zstandard.ZstdCompressor().compress(json.dumps(reply).encode())
        return Response(body, media_type="application/json", headers={"Compression": "zstd"})

    @router.get("/healthz", tags=["ops"], summary="Liveness and readiness")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "scan": gateway.scans.describe(),
                "spool": len(gateway.deliverer.spool)}

    @router.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics() -> Response:
        gateway.stats.spool.set(len(gateway.deliverer.spool))
        return Response(generate_latest(gateway.stats.registry), media_type=CONTENT_TYPE_LATEST)

    return router
