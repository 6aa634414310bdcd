"""The whole schema of the store: every table module, imported so that its tables are
registered on ``Base.metadata``. Alembic's environment and the schema-drift test
(``tests/store/test_migrations.py``: the migrated database against ``metadata``) read it from
here. The package's ``__init__`` imports the whole store anyway; naming the table modules here
keeps the schema from depending on that.
"""

from __future__ import annotations

from sqlalchemy import MetaData

# imported for their tables, which register themselves on Base.metadata
import mailsift.store.deliveries
import mailsift.store.dmarc
import mailsift.store.enduser
import mailsift.store.models
import mailsift.store.reports
import mailsift.store.rollout
import mailsift.store.search
import mailsift.store.throttle
import mailsift.store.users  # noqa: F401
from mailsift.store.base import Base

__all__ = ["metadata"]

metadata: MetaData = Base.metadata
