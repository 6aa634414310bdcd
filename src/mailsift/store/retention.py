"""Incident holds, deletion of quarantined originals and the retention purge.

A hold pins the messages matching a query at the moment it is placed (the evidence of an
incident); held messages survive both retention and deletion until the hold is released. Blobs
are shared by identical messages, so one is removed only when no remaining row still needs it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, delete, exists, insert, select, update

from mailsift.core.errors import StoreError
from mailsift.core.protocols import Clock
from mailsift.store.blobs import Blobs
from mailsift.store.db import read_only
from mailsift.store.deliveries import AttemptRow
from mailsift.store.models import (
    ArtifactVersion,
    FindingRow,
    Hold,
    HoldMember,
    MessageRow,
    ReleaseRequest,
    ReleaseRow,
    TraceRow,
)
from mailsift.store.query import TraceQuery
from mailsift.store.search import MessageAttachment, MessageUrl

__all__ = ["HoldInfo", "PurgeReport", "Retention"]


@dataclass(frozen=True, slots=True)
class HoldInfo:
    id: str
    name: str
    reason: str
    created_by: str
    created_at: float
    released_at: float | None
    messages: int


@dataclass(frozen=True, slots=True)
class PurgeReport:
    messages: int
    blobs: int
    held: int


def _held() -> object:
    return exists(
        select(HoldMember.hold_id)
        .join(Hold, Hold.id == HoldMember.hold_id)
        .where(HoldMember.message_pk == MessageRow.id, Hold.released_at.is_(None))
    )


class Retention:
    def __init__(self, engine: Engine, blobs: Blobs, clock: Clock) -> None:
        self.engine = engine
        self.blobs = blobs
        self.clock = clock

    def place_hold(self, name: str, query: TraceQuery, *, actor: str,
                   reason: str = "") -> HoldInfo:
        hold_id = uuid.uuid4().hex
        now = self.clock.now()
        with self.engine.begin() as conn:
            conn.execute(insert(Hold), {
                "id": hold_id, "name": name, "reason": reason,
                "query_json": json.dumps(query.to_dict(), sort_keys=True),
                "created_by": actor, "created_at": now, "released_at": None,
            })
            ids = conn.execute(
                select(TraceRow.message_pk).where(*query.conditions()).distinct()
            ).scalars().all()
            if ids:
                conn.execute(insert(HoldMember),
                             [{"hold_id": hold_id, "message_pk": m} for m in ids])
        return HoldInfo(hold_id, name, reason, actor, now, None, len(ids))

    def release_hold(self, hold_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(Hold).where(Hold.id == hold_id, Hold.released_at.is_(None))
                .values(released_at=self.clock.now())
            ).rowcount)

    def holds(self) -> list[HoldInfo]:
        from sqlalchemy import func

        with read_only(self.engine) as conn:
            rows = conn.execute(
                select(Hold.id, Hold.name, Hold.reason, Hold.created_by, Hold.created_at,
                       Hold.released_at, func.count(HoldMember.message_pk))
                .outerjoin(HoldMember, HoldMember.hold_id == Hold.id)
                .group_by(Hold.id, Hold.name, Hold.reason, Hold.created_by, Hold.created_at,
                          Hold.released_at)
                .order_by(Hold.created_at)
            ).all()
        return [HoldInfo(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows]

    def is_held(self, message: str) -> bool:
        with read_only(self.engine) as conn:
            return conn.execute(
                select(MessageRow.id).where(MessageRow.id == message, _held())  # type: ignore[arg-type]
            ).first() is not None

    def delete_raw(self, message: str) -> bool:
        """Forget a message's original (quarantine delete); refuses while it is held."""
        if self.is_held(message):
            raise StoreError(f"message {message} is under an incident hold")
        with self.engine.begin() as conn:
            sha = conn.execute(
                select(MessageRow.blob_sha256).where(
                    MessageRow.id == message, MessageRow.raw_deleted_at.is_(None)
                )
            ).scalar()
            if sha is None:
                return False
            conn.execute(update(MessageRow).where(MessageRow.id == message)
                         .values(raw_deleted_at=self.clock.now()))
        self._drop_unreferenced([sha])
        return True

    def purge(self, older_than_days: float, *, batch: int = 1000) -> PurgeReport:
        """Delete messages received before the cutoff, except held ones; returns counts."""
        cutoff = self.clock.now() - older_than_days * 86400.0
        purged = blobs = 0
        while True:
            with self.engine.begin() as conn:
                rows = conn.execute(
                    select(MessageRow.id, MessageRow.blob_sha256)
                    .where(MessageRow.received_at < cutoff, ~_held())  # type: ignore[operator]
                    .limit(batch)
                ).all()
                if not rows:
                    break
                ids = [r.id for r in rows]
                # Children first: SQLite only cascades with foreign_keys=ON, and stating it
                # keeps the purge correct whatever the connection's pragmas are.
                for model in (FindingRow, ArtifactVersion, TraceRow, ReleaseRow,
                              ReleaseRequest, HoldMember, MessageUrl, MessageAttachment,
                              AttemptRow):
                    conn.execute(delete(model).where(model.message_pk.in_(ids)))
                conn.execute(delete(MessageRow).where(MessageRow.id.in_(ids)))
            purged += len(ids)
            blobs += self._drop_unreferenced([r.blob_sha256 for r in rows if r.blob_sha256])
        with read_only(self.engine) as conn:
            held = conn.execute(
                select(MessageRow.id).where(MessageRow.received_at < cutoff, _held())  # type: ignore[arg-type]
            ).all()
        return PurgeReport(purged, blobs, len(held))

    def _drop_unreferenced(self, digests: Sequence[str]) -> int:
        dropped = 0
        for sha in set(digests):
            with read_only(self.engine) as conn:
                still = conn.execute(
                    select(MessageRow.id).where(
                        MessageRow.blob_sha256 == sha, MessageRow.raw_deleted_at.is_(None)
                    ).limit(1)
                ).first()
            if still is None and self.blobs.delete(sha):
                dropped += 1
        return dropped
