"""The per-message facts a detector is handed. Detectors get their settings and I/O at
construction (from the composition root); ``run(ctx)`` only sees this message."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailsift.core.auth import AuthResults
from mailsift.core.envelope import Envelope
from mailsift.core.message import ParsedMessage

__all__ = ["ScanContext"]


@dataclass(frozen=True, slots=True)
class ScanContext:
    """One message under scan: parsed view, envelope and authentication facts.

    ``auth`` is ``None`` until the auth stage has run; ``offline`` means no network checks.
    """

    message: ParsedMessage
    envelope: Envelope = field(default_factory=Envelope)
    auth: AuthResults | None = None
    offline: bool = False
    received_at: float = 0.0

    def with_auth(self, auth: AuthResults) -> ScanContext:
        return ScanContext(self.message, self.envelope, auth, self.offline, self.received_at)
