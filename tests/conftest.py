"""Shared fixtures: paths to the repo's samples and the shared corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

# The store fixtures (backend x SQLite/PostgreSQL, store, clock, sink) for tests/store,
# tests/services and anything else that needs them.
pytest_plugins = ("mailsift.testing.store_fixtures",)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that drives Chromium (``browser`` fixture, directly or through
    ``new_page``) with ``browser``, so ``-m "not browser"`` leaves them all out."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"shared corpus not found at {SHARED}")
    return SHARED
