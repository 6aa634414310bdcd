"""A durable retry spool for mail we accepted (250) but could not hand on yet.

Used when part of a message was relayed and another part hit a temporary failure: answering 4xx
then would duplicate the delivered part on the client's retry, so the rest is written here
(fsync of the file and its directory before we answer) and retried in the background.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Spool", "SpoolEntry"]


@dataclass(frozen=True)
class SpoolEntry:
    path: Path
    ref: str
    mail_from: str | None
    rcpt_to: tuple[str, ...]
    attempts: int
    next_try: float
    #: when the message was first spooled (the retry age counts from here)
    created: float = 0.0
    #: recipient -> the next hop's last reply, for the DSN when the recipient finally fails
    replies: dict[str, str] = field(default_factory=dict)

    def raw(self) -> bytes:
        return self.path.with_suffix(".eml").read_bytes()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class Spool:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def put(self, raw: bytes, ref: str, mail_from: str | None, rcpt_to: tuple[str, ...],
            replies: dict[str, str] | None = None) -> Path:
        base = self.dir / f"{int(time.time())}-{ref}-{uuid.uuid4().hex[:8]}"
        _write_durably(base.with_suffix(".eml"), raw)
        now = time.time()
        meta = {"ref": ref, "mail_from": mail_from, "rcpt_to": list(rcpt_to), "attempts": 0,
                "next_try": now, "created": now, "replies": replies or {}}
        _write_durably(base.with_suffix(".json"), json.dumps(meta).encode())
        _fsync_dir(self.dir)
        return base.with_suffix(".json")

    def due(self, now: float) -> Iterator[SpoolEntry]:
        for meta_path in sorted(self.dir.glob("*.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue
            if meta["next_try"] <= now:
                # entries spooled before "created" existed age from their file's name
                created = meta.get("created") or float(meta_path.name.split("-", 1)[0])
                yield SpoolEntry(meta_path, meta["ref"], meta["mail_from"],
                                 tuple(meta["rcpt_to"]), meta["attempts"], meta["next_try"],
                                 created, dict(meta.get("replies") or {}))

    def done(self, entry: SpoolEntry) -> None:
        entry.path.with_suffix(".eml").unlink(missing_ok=True)
        entry.path.unlink(missing_ok=True)
        _fsync_dir(self.dir)

    def retry_later(self, entry: SpoolEntry, delay: float,
                    rcpt_to: tuple[str, ...] | None = None,
                    replies: dict[str, str] | None = None) -> float:
        """Back off: ``delay`` doubled per attempt, at most 32 times ``delay`` (with the default
        30 s: 30 s, 1, 2, 4, 8 min, then every 16 min until the maximum age). Returns the time
        of the next try."""
        meta = {"ref": entry.ref, "mail_from": entry.mail_from,
                "rcpt_to": list(rcpt_to if rcpt_to is not None else entry.rcpt_to),
                "attempts": entry.attempts + 1,
                "next_try": time.time() + delay * min(2 ** entry.attempts, 32),
                "created": entry.created, "replies": {**entry.replies, **(replies or {})}}
        _write_durably(entry.path, json.dumps(meta).encode())
        return float(meta["next_try"])

    def __len__(self) -> int:
        return sum(1 for _ in self.dir.glob("*.json"))
