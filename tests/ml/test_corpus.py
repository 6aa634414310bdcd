"""Labelled sources: MANIFEST reading and command-line specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.core.errors import InputError
from mailsift.ml.corpus import (
    LabelledSource,
    is_noncommercial,
    licence_of,
    parse_source_spec,
    read_manifest,
)
from mailsift.ml.synthetic import make_corpus


def test_manifest_is_read(tmp_path: Path) -> None:
    make_corpus(tmp_path, per_source=3)
    sources = read_manifest(tmp_path)
    assert {s.label for s in sources} == {"ham", "spam", "phish"}
    assert all(s.path.is_file() and s.count == 3 for s in sources)


def test_unknown_label_fails(tmp_path: Path) -> None:
    (tmp_path / "MANIFEST.tsv").write_text("file\tlabel\tsource\nx.mbox\tmaybe\tx\n")
    with pytest.raises(InputError, match="unknown label"):
        read_manifest(tmp_path)


def test_source_specs() -> None:
    s = parse_source_spec("phish:pot=/data/pot.mbox.gz")
    assert (s.name, s.label, s.path) == ("pot", "phish", Path("/data/pot.mbox.gz"))
    assert parse_source_spec("ham:/data/inbox.mbox").name == "inbox"
    with pytest.raises(InputError):
        parse_source_spec("nice:/x.mbox")


def test_licence_clause_is_found() -> None:
    notes = "real phishing; honeypot address replaced; licence CC BY-NC 4.0 (non-commercial); x"
    assert licence_of(notes) == "licence CC BY-NC 4.0 (non-commercial)"



@pytest.mark.parametrize(("licence", "expected"), [
    ("licence CC BY-NC 4.0 (non-commercial)", True),
    ("CC BY-NC-SA 3.0", True),
    ("for noncommercial research only", True),
    ("licence: CC0", False),
    ("free for research use (monkey.org)", False),
    ("permission to use without restriction", False),
    ("SpamAssassin public corpus: copyright with the original senders", False),
])
def test_noncommercial_terms_are_recognised(licence: str, expected: bool) -> None:
    assert is_noncommercial(licence) is expected
    source = LabelledSource("s", "phish", Path("s.mbox"), notes=f"real samples; {licence}")
    assert source.noncommercial is expected
