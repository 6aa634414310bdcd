"""Bulk release jobs and recipients' release requests (the rows; the work is in services)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update

from mailsift.core.errors import StoreError
from mailsift.core.protocols import Clock
from mailsift.store.db import read_only
from mailsift.store.models import ReleaseJob, ReleaseRequest
from mailsift.store.query import TraceQuery

__all__ = ["JobInfo", "JobStore", "RequestInfo", "RequestStore"]


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: str
    created_at: float
    created_by: str
    query: TraceQuery
    recipients: tuple[str, ...] | None
    rescan: bool
    state: str
    total: int
    sent: int
    skipped: int
    failed: int
    kept: int
    cursor: str | None
    updated_at: float
    finished_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "created_at": self.created_at, "created_by": self.created_by,
            "query": self.query.to_dict(),
            "recipients": list(self.recipients) if self.recipients is not None else None,
            "rescan": self.rescan, "state": self.state, "total": self.total, "sent": self.sent,
            "skipped": self.skipped, "failed": self.failed, "kept": self.kept,
            "updated_at": self.updated_at, "finished_at": self.finished_at,
        }


class JobStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def create(self, query: TraceQuery, *, actor: str, recipients: tuple[str, ...] | None,
               rescan: bool, total: int) -> JobInfo:
        now = self.clock.now()
        job_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(insert(ReleaseJob), {
                "id": job_id, "created_at": now, "created_by": actor,
                "query_json": json.dumps(query.to_dict(), sort_keys=True),
                "recipients_json": json.dumps(list(recipients) if recipients else None),
                "rescan": rescan, "state": "pending", "total": total, "sent": 0, "skipped": 0,
                "failed": 0, "kept": 0, "cursor": None, "updated_at": now, "finished_at": None,
            })
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> JobInfo | None:
        with read_only(self.engine) as conn:
            row = conn.execute(select(ReleaseJob).where(ReleaseJob.id == job_id)).first()
        return _job(row) if row else None

    def list(self, limit: int = 50) -> list[JobInfo]:
        with read_only(self.engine) as conn:
            rows = conn.execute(
                select(ReleaseJob).order_by(ReleaseJob.created_at.desc()).limit(limit)
            ).all()
        return [_job(r) for r in rows]

    def progress(self, job_id: str, *, state: str | None = None, cursor: str | None = None,
                 sent: int = 0, skipped: int = 0, failed: int = 0, kept: int = 0,
                 finished: bool = False) -> None:
        """Add to the counters and move the resume cursor, in one short transaction."""
        values: dict[str, Any] = {
            "sent": ReleaseJob.sent + sent, "skipped": ReleaseJob.skipped + skipped,
            "failed": ReleaseJob.failed + failed, "kept": ReleaseJob.kept + kept,
            "updated_at": self.clock.now(),
        }
        if state:
            values["state"] = state
        if cursor is not None:
            values["cursor"] = cursor
        if finished:
            values["finished_at"] = self.clock.now()
        with self.engine.begin() as conn:
            conn.execute(update(ReleaseJob).where(ReleaseJob.id == job_id).values(**values))


def _job(r: Any) -> JobInfo:
    rcpts = json.loads(r.recipients_json or "null")
    return JobInfo(
        id=r.id, created_at=r.created_at, created_by=r.created_by,
        query=TraceQuery.from_dict(json.loads(r.query_json)),
        recipients=tuple(rcpts) if rcpts is not None else None, rescan=bool(r.rescan),
        state=r.state, total=r.total, sent=r.sent, skipped=r.skipped, failed=r.failed,
        kept=r.kept, cursor=r.cursor, updated_at=r.updated_at, finished_at=r.finished_at,
    )


@dataclass(frozen=True, slots=True)
class RequestInfo:
    id: int
    message: str
    recipient: str
    requested_by: str
    reason: str
    state: str
    created_at: float
    decided_by: str | None
    decided_at: float | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "message": self.message, "recipient": self.recipient,
            "requested_by": self.requested_by, "reason": self.reason, "state": self.state,
            "created_at": self.created_at, "decided_by": self.decided_by,
            "decided_at": self.decided_at, "note": self.note,
        }


class RequestStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def create(self, message: str, recipient: str, *, requested_by: str,
               reason: str = "") -> RequestInfo:
        with self.engine.begin() as conn:
            pending = conn.execute(
                select(ReleaseRequest.id).where(
                    ReleaseRequest.message_pk == message,
                    ReleaseRequest.recipient == recipient.lower(),
                    ReleaseRequest.state == "pending",
                )
            ).first()
            if pending is not None:
                raise StoreError(f"a release request for {recipient} is already pending")
            new_id = conn.execute(
                insert(ReleaseRequest).returning(ReleaseRequest.id),
                {"message_pk": message, "recipient": recipient.lower(),
                 "requested_by": requested_by, "reason": reason, "state": "pending",
                 "created_at": self.clock.now(), "decided_by": None, "decided_at": None,
                 "note": ""},
            ).scalar_one()
        got = self.get(int(new_id))
        assert got is not None
        return got

    def get(self, request_id: int) -> RequestInfo | None:
        with read_only(self.engine) as conn:
            row = conn.execute(
                select(ReleaseRequest).where(ReleaseRequest.id == request_id)
            ).first()
        return _request(row) if row else None

    def list(self, *, state: str | None = None, recipient: str | None = None,
             limit: int = 100) -> list[RequestInfo]:
        stmt = select(ReleaseRequest)
        if state:
            stmt = stmt.where(ReleaseRequest.state == state)
        if recipient:
            stmt = stmt.where(ReleaseRequest.recipient == recipient.lower())
        stmt = stmt.order_by(ReleaseRequest.created_at.desc()).limit(limit)
        with read_only(self.engine) as conn:
            return [_request(r) for r in conn.execute(stmt).all()]

    def decide(self, request_id: int, state: str, *, actor: str, note: str = "") -> RequestInfo:
        """Move a pending request to ``approved`` or ``denied`` (exactly once)."""
        if state not in ("approved", "denied"):
            raise StoreError(f"invalid decision {state!r}")
        with self.engine.begin() as conn:
            n = conn.execute(
                update(ReleaseRequest)
                .where(ReleaseRequest.id == request_id, ReleaseRequest.state == "pending")
                .values(state=state, decided_by=actor, decided_at=self.clock.now(), note=note)
            ).rowcount
        got = self.get(request_id)
        if got is None:
            raise StoreError(f"no release request {request_id}")
        if not n:
            raise StoreError(f"release request {request_id} is already {got.state}")
        return got


def _request(r: Any) -> RequestInfo:
    return RequestInfo(r.id, r.message_pk, r.recipient, r.requested_by, r.reason, r.state,
                       r.created_at, r.decided_by, r.decided_at, r.note)
