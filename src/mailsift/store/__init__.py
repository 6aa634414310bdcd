"""mailsift.store: trace, quarantine originals, release ledger, lists, tokens, audit and user
reports.

SQLAlchemy 2 over SQLite (default, WAL, under ``store.data_dir``) or PostgreSQL (by URL); raw
messages in a content-addressed blob store; schema managed by Alembic (``store/migrations``).
Only delivery, rollout and services touch it.
"""

from mailsift.store.audit import AuditEntry, AuditLog
from mailsift.store.blobs import Blobs, BlobStore
from mailsift.store.jobs import JobInfo, RequestInfo
from mailsift.store.query import TraceQuery
from mailsift.store.records import MessageRecord, Page, TraceRecord
from mailsift.store.releases import Claim, ReleaseLedger
from mailsift.store.reports import ReportInfo, ReportPage
from mailsift.store.retention import HoldInfo, PurgeReport
from mailsift.store.store import Store
from mailsift.store.tokens import ROLES, TokenInfo
from mailsift.store.trace import Recordable, TraceStore

__all__ = [
    "ROLES",
    "AuditEntry",
    "AuditLog",
    "BlobStore",
    "Blobs",
    "Claim",
    "HoldInfo",
    "JobInfo",
    "MessageRecord",
    "Page",
    "PurgeReport",
    "Recordable",
    "ReleaseLedger",
    "ReportInfo",
    "ReportPage",
    "RequestInfo",
    "Store",
    "TokenInfo",
    "TraceQuery",
    "TraceRecord",
    "TraceStore",
]
