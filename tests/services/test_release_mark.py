"""The signed release mark (services/release_mark.py): only a genuine, recent, unaltered
released copy is recognised."""

from __future__ import annotations

from pathlib import Path

from mailsift.config.store import StoreSettings
from mailsift.services.release_mark import ReleaseMarks, load_key
from mailsift.testing.messages import make_message

RAW = make_message(subject="Invoice", text="Pay by Friday.\n")


def test_a_marked_copy_is_recognised_and_survives_line_end_changes() -> None:
    marks = ReleaseMarks(b"k" * 32, clock=lambda: 1_000_000.0)
    copy = marks.mark(RAW, "rel-1")
    assert marks.verify(copy) == "rel-1"
    # an MTA may re-terminate lines and prepend its Received header
    relayed = b"Received: from mx by mx; now\r\n" + copy.replace(b"\r\n", b"\n").replace(
        b"\n", b"\r\n")
    assert marks.verify(relayed) == "rel-1"
    assert marks.verify(RAW) is None


def test_a_forged_altered_or_stale_mark_is_not_believed() -> None:
    now = [1_000_000.0]
    marks = ReleaseMarks(b"k" * 32, clock=lambda: now[0])
    copy = marks.mark(RAW, "rel-1")
    assert ReleaseMarks(b"x" * 32, clock=lambda: now[0]).verify(copy) is None  # other key
    assert marks.verify(copy.replace(b"Pay by Friday", b"Pay by Monday")) is None  # body
    assert marks.verify(copy.replace(b"rel-1", b"rel-2", 1)) is None  # another release id
    headers = b"".join(line + b"\n" for line in copy.split(b"\n")[:2])
    assert marks.verify(headers + make_message(subject="Other", text="Click here.\n")) is None
    now[0] += 8 * 86400  # older than a week
    assert marks.verify(copy) is None


def test_the_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=str(tmp_path))
    key = load_key(settings)
    assert len(key) == 32 and load_key(settings) == key
    assert (tmp_path / "release.key").stat().st_mode & 0o777 == 0o600
