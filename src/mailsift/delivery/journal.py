"""The relay journal: which recipients of which message the next hop has accepted, written the
instant its 250 arrives.

Why it exists: between the next hop's 250 and the trace commit that marks a recipient
``delivered`` there are milliseconds (a group commit with fsync). A crash in that window leaves
the trace saying ``accepted``; the sending MTA never got our 250, retries, and the retry would
relay the message a second time. Appending one line to this file is a single ``write(2)`` done
before the event loop does anything else, so the window shrinks to the time it takes the 250 to
reach us. Page-cache writes survive a killed process; only a power cut can drop the tail, and
then the worst case is that duplicate again, never a loss (the journal only ever *skips*
recipients the next hop already has).

``prior`` statuses of a retried message are the trace's, overlaid with this journal. At startup
the journal is folded into the trace and truncated (:meth:`reconcile`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["RelayJournal"]

_MAX_ENTRIES = 5_000  # small enough to reconcile at startup in about a second


class RelayJournal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._relayed: dict[str, set[str]] = {}
        self._entries = 0
        if self.path.exists():
            for line in self.path.read_text("utf-8", "replace").splitlines():
                ref, sep, rcpt = line.partition("\t")
                if sep and rcpt:  # a torn last line (crash mid-write) is ignored
                    self._relayed.setdefault(ref, set()).add(rcpt)
                    self._entries += 1
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def mark(self, ref: str, recipients: Iterable[str]) -> None:
        """Record that the next hop accepted ``recipients`` of message ``ref`` (one write)."""
        rcpts = [r.lower() for r in recipients]
        if not rcpts:
            return
        os.write(self._fd, "".join(f"{ref}\t{r}\n" for r in rcpts).encode("utf-8"))
        self._relayed.setdefault(ref, set()).update(rcpts)
        self._entries += len(rcpts)

    def relayed(self, ref: str) -> set[str]:
        return set(self._relayed.get(ref, ()))

    def entries(self) -> dict[str, set[str]]:
        return {ref: set(rcpts) for ref, rcpts in self._relayed.items()}

    def reconcile(self, mark_delivered: Callable[[str, set[str]], None]) -> int:
        """Fold every entry into the trace (``mark_delivered`` must commit), then start empty.

        Called when nothing is in flight (startup), so every entry is either already in the
        trace or was relayed just before a crash; both end up ``delivered`` in the trace."""
        entries = self.entries()
        for ref, rcpts in entries.items():
            mark_delivered(ref, rcpts)
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self._relayed.clear()
        self._entries = 0
        return len(entries)

    def compact_if_large(self, in_flight: set[str]) -> None:
        """Keep the file small: once large, drop every entry except those of ``in_flight``
        messages: the ones still being processed or whose ``delivered`` status is not committed
        yet (the deliverer holds a message until that commit; all others are in the trace)."""
        if self._entries < _MAX_ENTRIES:
            return
        keep = {ref: rcpts for ref, rcpts in self._relayed.items() if ref in in_flight}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(f"{ref}\t{r}\n" for ref, rs in keep.items() for r in rs))
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._relayed = keep
        self._entries = sum(len(r) for r in keep.values())

    def close(self) -> None:
        os.close(self._fd)
