"""Feature extraction: named, readable, stable."""

from __future__ import annotations

from mailsift.ml.features import extract
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message


def test_text_url_and_structure_features() -> None:
    raw = make_message(
        subject="Invoice 2024-1187 overdue",
        text=None,
        html='<p>Pay now</p><a href="http://198.51.100.4/pay">www.bank.example</a>',
        attachments=[("invoice.exe", b"MZ\x90\x00" + b"\x00" * 64, "application/octet-stream")],
    )
    feats = extract(parse_message(raw))
    assert "s:invoice" in feats and "s:0000" in feats  # digits fold to 0: years are not threats
    assert "w:pay" in feats
    assert "x:html_only" in feats
    assert "x:url_ip" in feats and "x:url_text_mismatch" in feats
    assert "x:att_exec" in feats and "x:att_ext:exe" in feats
    assert all(v >= 1.0 for v in feats.values())


def test_repeated_words_grow_sublinearly() -> None:
    feats = extract(parse_message(make_message(text="win " * 50)))
    assert 1.0 < feats["w:win"] < 6.0


def test_extraction_is_deterministic() -> None:
    raw = make_message(text="Hello there, the meeting moved to 3pm.\n")
    assert extract(parse_message(raw)) == extract(parse_message(raw))
