"""Alembic migrations of the store (run on open, or by ``mailsift db upgrade``)."""
