"""Reported messages as a corpus: what users said the filter got wrong, fed back to the gate.

Two consumers share one walk over the originals of reported messages (the store's blobs):

* ``write_mbox`` — ``mailsift reports export --label ham --out FILE.mbox`` writes them as an
  mbox, usable as ``[rollout] known_good`` (confirmed not-junk reports are known-good mail) or
  as ``mailsift rollout check NAME --corpus phish:FILE.mbox``;
* ``reported_ham_inputs`` — ``RolloutService.check`` replays confirmed not-junk reports as
  known-good input directly (``[rollout] reported_ham``), so a candidate that would quarantine a
  message users confirmed as legitimate is refused like one that quarantines the known-good
  corpus.

Only *confirmed* reports feed the gate by default: a user's click is a claim (people click "not
junk" on phishing too); an analyst's triage makes it evidence. A report never changes a verdict
by itself. Originals go with the retention purge (and with ``keep_raw = "quarantine"``, the
default, only quarantined mail has one): those are skipped and counted, never an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from mailsift.core.envelope import Envelope
from mailsift.core.errors import StoreError
from mailsift.parsing.sources import mbox_entry
from mailsift.rollout.gate import GateInput
from mailsift.store import MessageRecord, Store

__all__ = ["REPORTED_HAM_SOURCE", "ExportSummary", "reported_ham_inputs", "reported_originals",
           "write_mbox"]

#: The gate's name for this source in its reports (per-source counts, newly quarantined).
REPORTED_HAM_SOURCE = "reported-ham"


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote: messages written, and those whose original is gone."""

    label: str
    state: str | None
    written: int
    missing: int
    missing_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "state": self.state, "written": self.written,
                "missing": self.missing, "missing_ids": list(self.missing_ids)}


def reported_originals(store: Store, *, label: str, state: str | None = "confirmed",
                       since: float | None = None
                       ) -> Iterator[tuple[str, MessageRecord | None, bytes | None]]:
    """``(message id, record, original)`` of every distinct message reported with ``label``
    (in ``state``; ``None`` = any), most recently reported first; record and original are
    ``None`` when retention (or ``keep_raw``) took them."""
    for message in store.reports.messages(label=label, state=state, since=since):
        rec = store.trace.get(message)
        raw = None
        if rec is not None and rec.raw_available:
            try:
                raw = store.trace.raw(message)
            except StoreError:  # the blob went missing under the row: as good as purged
                raw = None
        yield message, rec, raw


def write_mbox(store: Store, out: BinaryIO, *, label: str, state: str | None = "confirmed",
               since: float | None = None) -> ExportSummary:
    written = 0
    missing: list[str] = []
    for message, rec, raw in reported_originals(store, label=label, state=state, since=since):
        if rec is None or raw is None:
            missing.append(message)
            continue
        out.write(mbox_entry(raw, sender=rec.mail_from, when=rec.received_at))
        written += 1
    return ExportSummary(label, state, written, len(missing), tuple(missing[:100]))


def reported_ham_inputs(store: Store, seen: set[str]) -> Iterator[GateInput]:
    """Confirmed not-junk reports as known-good gate input (label ``ham``), with the envelope
    they came with; adds each message to ``seen`` so stored traffic does not replay it twice."""
    for message, rec, raw in reported_originals(store, label="ham", state="confirmed"):
        if message in seen or rec is None or raw is None:
            continue
        seen.add(message)
        yield GateInput(REPORTED_HAM_SOURCE, "ham", message, raw,
                        Envelope(mail_from=rec.mail_from, rcpt_to=tuple(rec.rcpt_to)))
