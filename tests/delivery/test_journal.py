"""The relay journal: what the next hop accepted survives a crash and is folded into the trace."""

from __future__ import annotations

from pathlib import Path

from mailsift.delivery import journal as journal_module
from mailsift.delivery.journal import RelayJournal


def test_marks_survive_reopening_and_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "spool" / "relayed.journal"
    j = RelayJournal(path)
    j.mark("ms-a", ["Bob@Example.net", "carol@example.net"])
    j.mark("ms-b", [])
    j.close()  # a crash leaves the same bytes: writes went straight to the file
    with path.open("ab") as fh:
        fh.write(b"ms-c")  # torn write: no tab, no newline
    again = RelayJournal(path)
    assert again.relayed("ms-a") == {"bob@example.net", "carol@example.net"}
    assert again.relayed("ms-b") == set() and again.relayed("ms-c") == set()
    again.close()


def test_reconcile_hands_every_entry_over_and_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "relayed.journal"
    j = RelayJournal(path)
    j.mark("ms-a", ["bob@example.net"])
    j.mark("ms-a", ["carol@example.net"])
    j.mark("ms-b", ["dave@example.net"])
    folded: dict[str, set[str]] = {}
    assert j.reconcile(lambda ref, rcpts: folded.update({ref: rcpts})) == 2
    assert folded == {"ms-a": {"bob@example.net", "carol@example.net"},
                      "ms-b": {"dave@example.net"}}
    assert j.relayed("ms-a") == set() and path.read_bytes() == b""
    j.mark("ms-c", ["erin@example.net"])  # appends still work after truncation
    j.close()
    assert path.read_text() == "ms-c\terin@example.net\n"


def test_compaction_keeps_only_messages_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "relayed.journal"
    j = RelayJournal(path)
    original = journal_module._MAX_ENTRIES
    journal_module._MAX_ENTRIES = 3
    try:
        j.mark("ms-a", ["a@example.net"])
        j.mark("ms-b", ["b@example.net"])
        j.compact_if_large({"ms-a"})  # below the limit: untouched
        assert j.relayed("ms-b") == {"b@example.net"}
        j.mark("ms-c", ["c@example.net"])
        j.compact_if_large({"ms-c"})
        assert j.relayed("ms-a") == set() and j.relayed("ms-c") == {"c@example.net"}
        j.mark("ms-d", ["d@example.net"])
    finally:
        journal_module._MAX_ENTRIES = original
        j.close()
    assert path.read_text() == "ms-c\tc@example.net\nms-d\td@example.net\n"
