"""The declarative base every table of the store is declared on, and the column conventions
the table modules share.

The tables live beside the code that uses them (``models`` for trace, quarantine and lists;
``reports``, ``rollout``, ``throttle`` and ``users`` for theirs); ``store/schema.py`` imports
them all for the whole schema.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import DeclarativeBase

__all__ = ["ADDR", "Base", "BigId"]

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid); PostgreSQL wants BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")
ADDR = 320  # RFC 5321 path limit: 64 + 1 + 255


class Base(DeclarativeBase):
    pass
