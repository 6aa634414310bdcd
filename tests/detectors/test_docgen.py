"""docs/detectors/ is generated from the declarations: stale pages fail this test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mailsift.core.catalog import catalog
from mailsift.detectors.docgen import render_page
from mailsift.interfaces.cli.main import main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "detectors"


def test_committed_detector_pages_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["docs", "detectors", "--out", str(DOCS), "--check"])
    assert status == 0, ("docs/detectors is stale; run `mailsift docs detectors --out "
                         f"docs/detectors`:\n{capsys.readouterr().out}")


def test_a_stale_page_is_reported_and_rewritten(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "detectors"
    shutil.copytree(DOCS, out)
    page = out / "links.md"
    page.write_text(page.read_text().replace("| 12 |", "| 11 |"))
    assert main(["docs", "detectors", "--out", str(out), "--check"]) == 1
    assert "stale: " + str(page) in capsys.readouterr().out
    assert main(["docs", "detectors", "--out", str(out)]) == 0
    assert page.read_text() == (DOCS / "links.md").read_text()


def test_a_page_shows_the_declaration() -> None:
    page = render_page(catalog()["links"], "Prose.")
    assert "| `URL_FEED_MATCH` | phish | 12 | A link is on a local threat feed |" in page
    assert "| `max_urls` | `200` | links judged per message |" in page
    assert page.rstrip().endswith("Prose.")
