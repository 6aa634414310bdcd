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
    ``new_page``) with ``browser``, so ``-m "not browser"`` leaves them all out; then order the
    tests slowest kind first."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
    # Longest first: xdist hands tests out in this order, so the slow ones start at once and the
    # short ones fill the gaps, instead of one worker running a minute-long test alone at the
    # end. A module moves as a whole (its module-scoped fixtures are set up once) and the sort
    # is stable, so every worker computes the same order, as xdist requires.
    rank: dict[str, int] = {}
    for item in items:
        module = item.nodeid.partition("::")[0]
        rank[module] = min(rank.get(module, 2), _cost_rank(item))
    items.sort(key=lambda item: rank[item.nodeid.partition("::")[0]])


def _cost_rank(item: pytest.Item) -> int:
    if item.get_closest_marker("slow") or item.get_closest_marker("postfix"):
        return 0
    if item.get_closest_marker("browser"):
        return 1
    return 2


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"shared corpus not found at {SHARED}")
    return SHARED
