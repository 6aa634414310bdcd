"""Store fixtures for tests (a pytest plugin): every store test runs on SQLite and on
PostgreSQL (skipped, with the reason, only when the server is unreachable). Loaded by the
test suite's root ``conftest.py`` (``pytest_plugins``)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsift.store import Store
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import FakeClock, pg_unavailable, temp_store_settings

_PG_WHY: list[str | None] = []


def _pg_reason() -> str | None:
    if not _PG_WHY:
        _PG_WHY.append(pg_unavailable())
    return _PG_WHY[0]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and (why := _pg_reason()):
        pytest.skip(why)
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(backend: str, tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """A fresh, empty store at the head revision: a copy of this worker's migrated template
    (``mailsift.testing.templates``), so opening it runs no migration."""
    with temp_store_settings(backend, tmp_path) as settings:
        s = Store.open(settings, clock=clock, migrate=False)
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Console passwords hashed with a cheap scrypt (n=2**8) instead of ~60 ms each, for tests
    that sign in many times; the encoding and every check stay the same."""
    cheap_hashing(monkeypatch)


def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailsift.store import users

    cheap = functools.partial(users.hash_password, n=2**8)
    monkeypatch.setattr(users, "hash_password", cheap)
    monkeypatch.setattr(users, "_DUMMY", cheap("not a password"))
