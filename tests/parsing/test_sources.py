from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mailsift.core.errors import InputError
from mailsift.parsing.sources import iter_messages, mbox_entry
from mailsift.testing.messages import make_message

MBOX = (b"From a@example.org Fri Nov 20 09:30:00 2026\n" + make_message(subject="one") + b"\n"
        b"From b@example.org Fri Nov 20 09:31:00 2026\n"
        + make_message(subject="two", text="line\n>From the start\n") + b"\n")


def test_mbox_ids_are_indexes_and_from_lines_unescaped(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(MBOX)
    items = list(iter_messages([str(path)]))
    assert [i for i, _ in items] == ["0", "1"]
    assert b"\nFrom the start" in items[1][1]
    assert items[0][1].endswith(b"Hello there.\n")


def test_mbox_entries_read_back_byte_for_byte(tmp_path: Path) -> None:
    crlf = make_message(subject="crlf", text="From here\n>From there\n>>From deeper\n").replace(
        b"\n", b"\r\n")
    raws = [crlf, make_message(subject="lf"), b"Subject: bare\n\nno final newline"]
    path = tmp_path / "out.mbox"
    path.write_bytes(b"".join(mbox_entry(r, sender="<a b@example.org>", when=0) for r in raws))
    assert path.read_bytes().startswith(b"From ab@example.org Thu Jan  1 00:00:00 1970\n")
    back = [raw for _, raw in iter_messages([str(path)])]
    assert back == [crlf, raws[1], raws[2] + b"\n"]
    assert mbox_entry(b"x\n", sender=None).startswith(b"From MAILER-DAEMON ")


def test_gzip_mbox_maildir_and_eml(tmp_path: Path) -> None:
    gz = tmp_path / "box.mbox.gz"
    gz.write_bytes(gzip.compress(MBOX))
    assert [i for i, _ in iter_messages([str(gz)])] == ["0", "1"]
    maildir = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes(make_message())
    (maildir / "cur" / "2.eml").write_bytes(make_message())
    assert len(list(iter_messages([str(maildir)]))) == 2
    eml = tmp_path / "x.eml"
    eml.write_bytes(make_message())
    assert [i for i, _ in iter_messages([str(eml)])] == [str(eml)]
    both = [i for i, _ in iter_messages([str(gz), str(eml)])]
    assert both == [f"{gz}:0", f"{gz}:1", str(eml)]


def test_unreadable_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(iter_messages([str(tmp_path / "missing.eml")]))
    bad = tmp_path / "bad.mbox.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(InputError):
        list(iter_messages([str(bad)]))
