"""Mail direction: inbound, outbound or internal, from the client, SMTP AUTH and domains.

A message is *ours* when its client is in ``[direction] internal_networks`` or the MTA in front
received it with SMTP AUTH or on a submission port (its own Received header says so: Postfix
writes ``with ESMTPSA``; the content filter's XFORWARD carries no AUTH flag). Ours and every
recipient in an accepted domain: internal; ours and some recipient outside: outbound; not ours:
inbound. A sender claiming one of our domains from outside is still inbound (that is spoofing,
which detection judges). Without accepted domains every message is inbound, as before.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from enum import StrEnum
from functools import cached_property

from mailsift.config.mailflow import DirectionSettings
from mailsift.core.network import in_networks
from mailsift.delivery.headers import header_values

__all__ = ["Direction", "DirectionRules", "in_domains"]

_AUTH_RECEIVED = re.compile(rb"\bwith\s+(?:E?SMTPS?A|LMTPS?A|UTF8SMTPS?A)\b", re.I)


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


def in_domains(address: str, domains: Sequence[str]) -> bool:
    domain = address.rsplit("@", 1)[-1].lower().rstrip(".") if "@" in address else ""
    return bool(domain) and any(domain == d or domain.endswith("." + d) for d in domains)


class DirectionRules:
    """``[direction]`` compiled once."""

    def __init__(self, settings: DirectionSettings, *, trust_received: bool = True) -> None:
        self.settings = settings
        # the top Received header is the MTA in front's only in the after-queue setup; a
        # client talking to us directly writes its own
        self.trust_received = trust_received

    @cached_property
    def _networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False)
                     for n in self.settings.internal_networks)

    def internal_client(self, client_ip: str | None) -> bool:
        return in_networks(client_ip, self._networks)

    def submitted(self, raw: bytes) -> bool:
        """The MTA in front says it received this message with SMTP AUTH (its own Received
        header, the topmost one, which its clients cannot forge)."""
        top = next(iter(header_values(raw, "received")), b"")
        if _AUTH_RECEIVED.search(top):
            return True
        ports = self.settings.submission_ports
        m = re.search(rb"\bport\s+(\d+)\b", top)
        return bool(m and int(m.group(1)) in ports)

    def classify(self, raw: bytes, mail_from: str | None, rcpt_to: Sequence[str],
                 client_ip: str | None) -> tuple[Direction, str]:
        """The direction and why (for the explanation)."""
        s = self.settings
        if not s.accepted_domains:
            return Direction.INBOUND, "no accepted domains configured"
        if self.internal_client(client_ip):
            why = f"client {client_ip} is internal"
        elif s.authenticated_is_internal and self.trust_received and self.submitted(raw):
            why = "submitted with SMTP AUTH"
        else:
            return Direction.INBOUND, "client is outside"
        if rcpt_to and all(in_domains(r, s.accepted_domains) for r in rcpt_to):
            return Direction.INTERNAL, why + ", every recipient is ours"
        return Direction.OUTBOUND, why + ", a recipient is outside"
