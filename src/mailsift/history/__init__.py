"""Sender history: who writes to whom, first seen / last seen / count, bounded in size.

``SenderHistory`` is the protocol detectors read; ``MemoryHistory``, ``SqliteHistory`` and
``mailsift.history.sql.SqlHistory`` (a database shared by every gateway node; imported only
when configured: it needs SQLAlchemy, from the ``server`` extra) are its implementations.
``learn`` feeds it from scan results, and only from mail that was delivered and not judged
harmful, so an attacker cannot make himself "known" by being quarantined often.
"""

from mailsift.history.backends import open_history, shared_history
from mailsift.history.base import Contact, SenderHistory, SenderStats, normalise_name
from mailsift.history.learn import learn, learn_many
from mailsift.history.memory import MemoryHistory
from mailsift.history.sqlite import SqliteHistory

__all__ = [
    "Contact",
    "MemoryHistory",
    "SenderHistory",
    "SenderStats",
    "SqliteHistory",
    "learn",
    "learn_many",
    "normalise_name",
    "open_history",
    "shared_history",
]
