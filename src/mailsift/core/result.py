"""The outcome of scanning one message: what the store records and interfaces print."""

from __future__ import annotations

import copyreg
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from mailsift.core.auth import AuthResults
from mailsift.core.envelope import Envelope
from mailsift.core.findings import Finding
from mailsift.core.message import ParsedMessage
from mailsift.core.state import compact_state
from mailsift.core.verdict import Verdict

__all__ = ["ScanResult"]


def _mapping_proxy(data: dict[str, object]) -> MappingProxyType[str, object]:
    return MappingProxyType(data)


# Results travel from scan worker processes to the gateway; read-only mappings must pickle.
copyreg.pickle(MappingProxyType, lambda m: (_mapping_proxy, (dict(m),)))


@compact_state
@dataclass(frozen=True, slots=True, eq=False)
class ScanResult:
    """One scanned message.

    ``verdict`` is the message-level verdict (the strictest over recipients, or the verdict for an
    unknown recipient when the envelope has none); ``recipients`` holds one verdict per envelope
    recipient. ``versions`` maps every contributing artifact to its content version.
    """

    id: str
    verdict: Verdict
    message: ParsedMessage
    envelope: Envelope
    findings: tuple[Finding, ...] = ()
    auth: AuthResults | None = None
    recipients: Mapping[str, Verdict] = field(default_factory=lambda: MappingProxyType({}))
    versions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    elapsed_ms: float = 0.0
    detector_ms: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    shadow: Mapping[str, Verdict] = field(default_factory=lambda: MappingProxyType({}))

    def slim(self) -> ScanResult:
        """This result with a slimmed message (see ``ParsedMessage.slim``)."""
        return replace(self, message=self.message.slim())

    def to_dict(self) -> dict[str, object]:
        """The JSON contract of ``mailsift scan --format json`` and ``POST /v1/scan``."""
        msg = self.message
        return {
            "id": self.id,
            "category": self.verdict.category.value,
            "action": self.verdict.action.value,
            "score": round(self.verdict.score, 3),
            "decided_by": self.verdict.decided_by.value,
            "explanation": self.verdict.explanation,
            "findings": [f.to_dict() for f in self.findings],
            "versions": dict(self.versions),
            "elapsed_ms": round(self.elapsed_ms, 3),
            "message": {
                "from": msg.from_addr.addr if msg.from_addr else "",
                "subject": msg.subject,
                "message_id": msg.message_id,
                "size": msg.size,
            },
            "envelope": {
                "client_ip": self.envelope.client_ip,
                "helo": self.envelope.helo,
                "mail_from": self.envelope.mail_from,
                "rcpt_to": list(self.envelope.rcpt_to),
            },
            "auth": self.auth.to_dict() if self.auth else None,
            "verdict": self.verdict.to_dict(),
            "recipients": {r: v.to_dict() for r, v in self.recipients.items()},
            "shadow": {a: {"category": v.category.value, "action": v.action.value,
                           "score": round(v.score, 3)} for a, v in self.shadow.items()},
        }
