"""Moving quarantined originals from one blob backend to another, without loss, resumably.

Each blob is read from the source (hash checked), written to the target (durably, as the target
defines it) and read back from the target (hash checked) before anything else happens to it;
only then, and only if asked, is the source copy deleted. Blobs the target already holds are
skipped, so a run cut short (Ctrl-C, a lost connection, a kill) is resumed by running it again.
At the end every original the store still references is looked up in the target; any that is
missing (it was written to the old backend after the walk started: switch the configuration
first, with the old backend as ``blob_read_fallback``) is reported and copied by the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from mailsift.core.errors import StoreError
from mailsift.store.blobs import Blobs
from mailsift.store.db import read_only
from mailsift.store.models import MessageRow

__all__ = ["MigrationReport", "migrate_blobs", "referenced_blobs"]


@dataclass(slots=True)
class MigrationReport:
    source: str
    target: str
    copied: int = 0
    present: int = 0  # already in the target (an earlier, interrupted run)
    deleted: int = 0  # source copies removed (--delete-source)
    failed: dict[str, str] = field(default_factory=dict)  # sha256 -> why
    missing: list[str] = field(default_factory=list)  # referenced but in neither backend

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "target": self.target, "copied": self.copied,
                "present": self.present, "deleted": self.deleted, "failed": self.failed,
                "missing": self.missing}


def referenced_blobs(engine: Engine) -> set[str]:
    """The originals rows still point at (purged ones excluded)."""
    with read_only(engine) as conn:
        return {sha for sha in conn.execute(
            select(MessageRow.blob_sha256).where(MessageRow.blob_sha256.is_not(None),
                                                 MessageRow.raw_deleted_at.is_(None))
            .distinct()).scalars() if sha}


def migrate_blobs(engine: Engine, source: Blobs, target: Blobs, *, delete_source: bool = False,
                  batch: int = 64,
                  progress: Callable[[MigrationReport], None] | None = None) -> MigrationReport:
    report = MigrationReport(source.name, target.name)
    todo: list[str] = []

    def flush() -> None:
        datas: list[bytes] = []
        shas: list[str] = []
        for sha in todo:
            try:
                datas.append(source.get(sha))
                shas.append(sha)
            except StoreError as exc:
                report.failed[sha] = str(exc)
        if datas:
            try:
                target.put_many(datas)
            except StoreError as exc:
                report.failed.update({s: str(exc) for s in shas})
                shas = []
        for sha in shas:
            try:
                target.get(sha)  # read back, hash checked, before the source copy may go
            except StoreError as exc:
                report.failed[sha] = f"not readable after the copy: {exc}"
                continue
            report.copied += 1
            if delete_source and source.delete(sha):
                report.deleted += 1
        todo.clear()
        if progress is not None:
            progress(report)

    for sha in source.ids():
        if target.exists(sha):
            report.present += 1
            if delete_source and source.delete(sha):
                report.deleted += 1
            continue
        todo.append(sha)
        if len(todo) >= batch:
            flush()
    flush()
    for sha in sorted(referenced_blobs(engine)):
        if not target.exists(sha) and sha not in report.failed:
            report.missing.append(sha)
    return report
