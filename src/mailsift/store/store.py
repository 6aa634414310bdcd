"""The ``Store`` facade: one engine, one blob store, and the typed parts built on them."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mailsift.config.store import StoreSettings
from mailsift.core.errors import StoreError
from mailsift.core.protocols import Clock, SystemClock
from mailsift.store.audit import AuditLog
from mailsift.store.blobs import Blobs, BlobStore, FallbackBlobs
from mailsift.store.db import create_store_engine, upgrade
from mailsift.store.jobs import JobStore, RequestStore
from mailsift.store.lists import ListStore
from mailsift.store.releases import ReleaseLedger
from mailsift.store.reports import ReportStore
from mailsift.store.retention import Retention
from mailsift.store.rollout import RolloutStore
from mailsift.store.throttle import LoginThrottle
from mailsift.store.tokens import TokenStore
from mailsift.store.trace import TraceStore
from mailsift.store.users import UserStore

__all__ = ["Store", "open_blobs"]


def open_blobs(settings: StoreSettings, engine: Engine, backend: str | None = None) -> Blobs:
    """The blob backend ``backend`` (default: the configured one, with its read fallback)."""
    name = backend or settings.blob_backend_name()
    if name == "local":
        blobs: Blobs = BlobStore(settings.blob_path())
    elif name == "postgresql":
        from mailsift.store.blobs_db import DatabaseBlobs

        blobs = DatabaseBlobs(engine)
    elif name == "s3":
        from mailsift.store.blobs_s3 import S3Blobs

        blobs = S3Blobs(settings.s3_bucket, endpoint=settings.s3_endpoint,
                        region=settings.s3_region, prefix=settings.s3_prefix)
    else:
        raise StoreError(f"unknown blob backend {name!r} (local, postgresql or s3)")
    if backend is not None:
        return blobs
    fallback = settings.blob_read_fallback
    if not fallback and settings.blob_backend == "auto" and name == "postgresql" \
            and settings.blob_path().is_dir():
        # a PostgreSQL site from before the postgresql backend: its originals are still in
        # blob_dir until `mailsift store migrate-blobs --to postgresql` has moved them
        fallback = "local"
    if fallback and fallback != name:
        return FallbackBlobs(blobs, open_blobs(settings, engine, fallback))
    return blobs


class Store:
    """Everything persistent: trace, quarantine originals, releases, lists, tokens, audit,
    console users and their failed sign-in counters, user reports."""

    def __init__(self, engine: Engine, blobs: Blobs, settings: StoreSettings,
                 clock: Clock | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.blobs = blobs
        self.trace = TraceStore(engine, blobs, self.clock, keep_raw=settings.keep_raw)
        self.releases = ReleaseLedger(engine, self.clock,
                                      lease_seconds=settings.release_lease_seconds)
        self.jobs = JobStore(engine, self.clock)
        self.requests = RequestStore(engine, self.clock)
        self.lists = ListStore(engine, self.clock)
        self.audit = AuditLog(engine, self.clock)
        self.tokens = TokenStore(engine, self.clock, prefix=settings.api_token_prefix)
        self.retention = Retention(engine, blobs, self.clock)
        self.rollout = RolloutStore(engine, self.clock)
        self.users = UserStore(engine, self.clock)
        self.throttle = LoginThrottle(engine, self.clock)
        self.reports = ReportStore(engine, self.clock)

    @classmethod
    def open(cls, settings: StoreSettings, *, clock: Clock | None = None,
             migrate: bool | None = None) -> Store:
        """Open (and by default migrate) the store the settings describe."""
        try:
            engine = create_store_engine(settings.database_url(), schema=settings.db_schema)
            if settings.auto_migrate if migrate is None else migrate:
                upgrade(engine, schema=settings.db_schema)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the store: {exc}") from exc
        return cls(engine, open_blobs(settings, engine), settings, clock)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def analyze(self) -> None:
        """Refresh the planner's statistics (before big queries over freshly loaded rows).

        Right after a large batch insert PostgreSQL still believes the tables are nearly
        empty (autovacuum analyses later) and picks nested loops that rescan the findings
        index per trace row; a bulk release over thousands of rows then crawls.
        """
        with self.engine.begin() as conn:
            if self.backend == "postgresql":
                for table in ("trace", "findings", "artifact_versions", "releases"):
                    conn.exec_driver_sql(f"ANALYZE {table}")
            else:
                conn.exec_driver_sql("ANALYZE")

    def close(self) -> None:
        self.blobs.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
