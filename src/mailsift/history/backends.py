"""Choosing the configured sender-history backend and sharing one instance per process.

Kept apart from ``history/base.py`` because it imports the implementations, which import the
protocol's value types from ``base``: in one module that would be an import cycle.
"""

from __future__ import annotations

from mailsift.config.detectors import HistorySettings
from mailsift.core.errors import ConfigError
from mailsift.history.base import SenderHistory
from mailsift.history.memory import MemoryHistory
from mailsift.history.sqlite import SqliteHistory

__all__ = ["open_history", "shared_history"]


def open_history(settings: HistorySettings) -> SenderHistory:
    """The configured implementation (the composition root calls this once)."""
    if settings.backend == "database":
        from mailsift.history.sql import SqlHistory  # SQLAlchemy: only when asked for

        if not settings.url:
            raise ConfigError("[history] backend = 'database' needs a url", source="history")
        return SqlHistory(settings.url, schema=settings.db_schema,
                          max_entries=settings.max_entries)
    if settings.backend == "sqlite":
        if not settings.path:
            raise ConfigError("[history] backend = 'sqlite' needs a path", source="history")
        return SqliteHistory(settings.path, max_entries=settings.max_entries)
    return MemoryHistory(max_entries=settings.max_entries)


_OPENED: dict[object, SenderHistory] = {}


def shared_history(settings: HistorySettings) -> SenderHistory:
    """One history per process and configuration, opened on first use. The composition root
    hands it to every detector that reads it (links, impersonation, bulk, history) as
    ``Services.history``, so they share one instance across pipeline rebuilds."""
    key = (settings.backend, settings.path, settings.url, settings.db_schema,
           settings.max_entries)
    if key not in _OPENED:
        _OPENED[key] = open_history(settings)
    return _OPENED[key]
