"""Signed release marks: how mailsift recognises its own released copies.

A released copy carries ``X-Mailsift-Release-Id: <id>`` (the ledger's id, for people and for
duplicate filters) and ``X-Mailsift-Release-Sig: v=1; t=<unix time>; b=<body hash>; s=<mac>``,
an HMAC-SHA256 over the id, the time and a hash of the body, with a key only mailsift holds.
When such a copy passes mailsift again (milter mode: a release sent to the MTA's port 25 runs
the milter again; or a release pointed at the content filter), the gateway believes the mark
only if the MAC checks, the body is the one that was released and the mark is younger than
``MAX_AGE``: the copy is then delivered (precedence step 1, the release named) instead of being
scanned into quarantine again. Copying the headers onto other mail, or changing the body, gets
the message scanned like any other (and outsiders' ``X-Mailsift-*`` headers are removed).

The key is ``[store] release_key_file`` (default ``<data_dir>/release.key``, 32 random bytes
made on first use, mode 0600); nodes that release for each other must share that file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from mailsift.config.store import StoreSettings
from mailsift.core.result import ScanResult
from mailsift.core.verdict import Action, DecisionStep, Override, Verdict

__all__ = ["RELEASE_HEADER", "SIG_HEADER", "ReleaseMarks", "as_released", "kept_release_mark",
           "load_key_file"]

RELEASE_HEADER = "X-Mailsift-Release-Id"
SIG_HEADER = "X-Mailsift-Release-Sig"
MAX_AGE = 7 * 86400.0
_HAS_SIG = re.compile(rb"x-mailsift-release-sig:", re.I)
_SIG = re.compile(r"v=1;\s*t=(\d+);\s*b=([0-9a-f]{32});\s*s=([0-9a-f]{64})\s*$")


def _body_hash(raw: bytes) -> str:
    """The body (after the first blank line) with line ends and trailing blanks normalised: an
    MTA may re-terminate lines on the way, but the text is what the release vouched for."""
    cut = raw.find(b"\n\n")
    crlf = raw.find(b"\r\n\r\n")
    if crlf >= 0 and (cut < 0 or crlf < cut):
        body = raw[crlf + 4:]
    else:
        body = raw[cut + 2:] if cut >= 0 else b""
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    normal = b"\n".join(line.rstrip(b" \t\r") for line in lines).rstrip(b"\n")
    return hashlib.sha256(normal).hexdigest()[:32]


def _header_values(raw: bytes, name: str) -> list[str]:
    end = raw.find(b"\n\n")
    crlf = raw.find(b"\r\n\r\n")
    if crlf >= 0 and (end < 0 or crlf < end):
        end = crlf
    head = (raw if end < 0 else raw[:end]).decode("latin-1").replace("\r\n", "\n")
    head = re.sub(r"\n[ \t]+", " ", head)
    prefix = name.lower() + ":"
    return [line[len(prefix):].strip() for line in head.split("\n")
            if line.lower().startswith(prefix)]


def kept_release_mark(name: str, field: bytes) -> bool:
    """``strip_headers`` predicate for a genuine released copy: every ``X-Mailsift-*`` header
    from outside goes, except the release marks that were just verified."""
    return name.startswith("x-mailsift-") and name not in ("x-mailsift-release-id",
                                                           "x-mailsift-release-sig")


def load_key(settings: StoreSettings) -> bytes:
    return load_key_file(Path(settings.release_key_file or Path(settings.data_dir) / "release.key"))


def load_key_file(path: Path) -> bytes:
    """32 random bytes kept hex in ``path`` (mode 0600), made on first use."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return key


class ReleaseMarks:
    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time,
                 max_age: float = MAX_AGE) -> None:
        self._key = key
        self.clock = clock
        self.max_age = max_age

    @classmethod
    def of(cls, settings: StoreSettings) -> ReleaseMarks:
        return cls(load_key(settings))

    def _mac(self, release_id: str, when: int, body: str) -> str:
        return hmac.new(self._key, f"v1|{release_id}|{when}|{body}".encode(),
                        hashlib.sha256).hexdigest()

    def mark(self, raw: bytes, release_id: str) -> bytes:
        """``raw`` with the release id and its signature prepended (in its line-end style)."""
        eol = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
        when = int(self.clock())
        body = _body_hash(raw)
        sig = f"v=1; t={when}; b={body}; s={self._mac(release_id, when, body)}"
        return (f"{RELEASE_HEADER}: {release_id}".encode() + eol
                + f"{SIG_HEADER}: {sig}".encode() + eol + raw)

    def verify(self, raw: bytes) -> str | None:
        """The release id of a genuine released copy, else None."""
        if _HAS_SIG.search(raw, 0, 65536) is None:  # nearly every message: no copy made
            return None
        ids, sigs = _header_values(raw, RELEASE_HEADER), _header_values(raw, SIG_HEADER)
        if len(ids) != 1 or len(sigs) != 1:
            return None
        match = _SIG.match(sigs[0])
        if match is None:
            return None
        when, body, mac = int(match.group(1)), match.group(2), match.group(3)
        now = self.clock()
        if not now - self.max_age <= when <= now + 300:
            return None
        if not hmac.compare_digest(mac, self._mac(ids[0], when, body)):
            return None
        if not hmac.compare_digest(body, _body_hash(raw)):
            return None
        return ids[0]


def as_released(result: ScanResult, release_id: str) -> ScanResult:
    """The scan of a released copy, delivered: an administrator already decided (and the
    release is audited), so detection does not quarantine it again. The findings stay, for the
    record; the verdict names the release (precedence step 1)."""
    def deliver(v: Verdict) -> Verdict:
        if v.action in (Action.DELIVER, Action.TAG):
            return v
        note = Override(DecisionStep.BYPASS, "release", release_id,
                        f"{v.action.value} -> deliver", "a copy released from quarantine")
        return replace(v, action=Action.DELIVER, decided_by=DecisionStep.BYPASS,
                       overrides=(*v.overrides, note),
                       explanation=f"deliver: released from quarantine (release {release_id});"
                                   f" detection said {v.category.value} -> {v.action.value}")
    recipients = {r: deliver(v) for r, v in result.recipients.items()}
    return replace(result, verdict=deliver(result.verdict),
                   recipients=MappingProxyType(recipients))
