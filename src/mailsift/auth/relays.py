"""Trusted relays: recover the envelope from our own Received header, remove forged results.

When a message is scanned after the fact (stored mail, corpus files, the HTTP API without
envelope fields) the SMTP facts are gone, but our own MTA wrote them down in a Received header.
Only headers written by hosts in ``AuthSettings.trusted_relays`` are believed: anyone can forge
Received headers below ours. Reading top-down, we skip headers above our chain (a local delivery
agent), walk through hops inside it, and take the first hop of ours whose *client* is not one of
ours: that is where the message entered from outside.

``strip_forged_results`` removes incoming ``Authentication-Results`` that claim our authserv-id
(RFC 8601 section 5: a receiver MUST remove them, or a sender could pre-authenticate itself).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mailsift.core.envelope import Connection, Envelope
from mailsift.core.message import ParsedMessage

__all__ = [
    "ReceivedHop",
    "TrustedRelays",
    "envelope_from_relays",
    "parse_received",
    "strip_forged_results",
]

_IP_BRACKET = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
_IP_PAREN = re.compile(r"\(\s*([0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+)\s*\)")
_EXIM_HELO = re.compile(r"\bhelo=([^\s)\]]+)", re.IGNORECASE)
_ENV_FROM = re.compile(r"envelope-from\s*[=:]?\s*<?([^>\s;)]*)>?", re.IGNORECASE)
_PAREN_NAME = re.compile(r"\(\s*([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})[\s\[]")


@dataclass(frozen=True, slots=True)
class ReceivedHop:
    """What one Received header says about one hop."""

    by_host: str = ""
    helo: str = ""
    client_ip: str = ""
    client_name: str = ""
    envelope_from: str | None = None


def parse_received(value: str) -> ReceivedHop:
    text = " ".join(value.split())
    by_host = ""
    m = re.search(r"\bby\s+([^\s;()]+)", text, re.IGNORECASE)
    if m:
        by_host = m.group(1).lower().strip("[]")
    from_part = ""
    m = re.match(r"\s*from\s+(.*?)(?:\s+by\s+|;|$)", text, re.IGNORECASE)
    if m:
        from_part = m.group(1)
    helo = from_part.split(" ", 1)[0].strip("()") if from_part else ""
    exim = _EXIM_HELO.search(from_part)
    if exim:
        helo = exim.group(1)
    ip = ""
    for pattern in (_IP_BRACKET, _IP_PAREN):
        found = pattern.search(from_part)
        if found and _is_ip(found.group(1)):
            ip = found.group(1)
            break
    if helo.startswith("[") or _is_ip(helo.strip("[]")):
        helo = helo if helo.startswith("[") else f"[{helo}]"
    name = ""
    pn = _PAREN_NAME.search(from_part)
    if pn:
        name = pn.group(1).lower()
    env = _ENV_FROM.search(text)
    return ReceivedHop(by_host, helo, ip, name, env.group(1) if env else None)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class TrustedRelays:
    """Matches hosts and addresses against ``AuthSettings.trusted_relays``."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.hosts: list[str] = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self.hosts.append(entry.strip().lower().rstrip("."))

    def __bool__(self) -> bool:
        return bool(self.networks or self.hosts)

    def ip(self, address: str) -> bool:
        try:
            addr = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        return any(addr in net for net in self.networks)

    def host(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        if not name:
            return False
        if self.ip(name):
            return True
        for entry in self.hosts:
            if entry.startswith(".") and name.endswith(entry):
                return True
            if name == entry.lstrip("."):
                return True
        return False

    def boundary(self, received: Sequence[str]) -> ReceivedHop | None:
        """The hop where mail entered our chain from outside (``received`` is top-down)."""
        inside = False
        for value in received:
            hop = parse_received(value)
            ours = self.host(hop.by_host)
            if not ours:
                if inside:
                    return None  # left our chain without seeing the entry hop
                continue
            inside = True
            internal_client = self.ip(hop.client_ip) or (
                bool(hop.client_name) and self.host(hop.client_name) and not hop.client_ip
            )
            if not internal_client:
                return hop
        return None


def envelope_from_relays(
    msg: ParsedMessage, envelope: Envelope, trusted_relays: Sequence[str]
) -> Envelope:
    """Fill a missing client IP / HELO / MAIL FROM from our own boundary Received header."""
    if envelope.client_ip and envelope.mail_from is not None:
        return envelope
    relays = TrustedRelays(trusted_relays)
    if not relays:
        return envelope
    hop = relays.boundary(msg.header("received"))
    if hop is None:
        return envelope
    conn = envelope.connection
    if not conn.client_ip and hop.client_ip:
        # IP and HELO are taken together: mixing hops would check a HELO from another host.
        conn = Connection(
            client_ip=hop.client_ip,
            client_name=hop.client_name or None,
            helo=hop.helo or None,
            tls=conn.tls,
        )
    mail_from = envelope.mail_from
    if mail_from is None:
        if hop.envelope_from is not None:
            mail_from = hop.envelope_from
        else:
            # Return-Path is written by the final delivery agent from the real MAIL FROM.
            rp = msg.first_header("return-path").strip()
            if rp:
                mail_from = rp.strip("<>").strip()
    return replace(envelope, connection=conn, mail_from=mail_from)




_AR_NAME = re.compile(rb"authentication-results", re.I)


@functools.lru_cache(maxsize=8)
def _id_pattern(authserv_id: str) -> re.Pattern[bytes]:
    return re.compile(re.escape(authserv_id.encode("utf-8")), re.I)


def _authserv_id(value: bytes) -> str:
    text = value.decode("utf-8", "replace")
    text = re.sub(r"\([^()]*\)", " ", text)  # RFC 5322 comments around the id
    return text.split(";", 1)[0].strip().split(" ", 1)[0].strip().lower()


def strip_forged_results(raw: bytes, authserv_id: str) -> bytes:
    """Remove every Authentication-Results header whose authserv-id is ours (header block only)."""
    ours = authserv_id.lower()
    sep = raw.find(b"\r\n\r\n")
    sep_lf = raw.find(b"\n\n")
    if sep == -1 or (sep_lf != -1 and sep_lf < sep):
        end = sep_lf + 1 if sep_lf != -1 else len(raw)
    else:
        end = sep + 2
    head, body = raw[:end], raw[end:]
    if _AR_NAME.search(head) is None or (head.isascii() and _id_pattern(ours).search(head) is None):
        # No Authentication-Results, or none that can name us: in ASCII, an authserv-id equal
        # to ours (case-insensitively) is ours spelled in the bytes. (Non-ASCII goes the long
        # way: a letter such as the Kelvin sign lower-cases to an ASCII one.)
        return raw
    lines = head.splitlines(keepends=True)
    fields: list[list[bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    kept: list[bytes] = []
    removed = False
    for field_lines in fields:
        first = field_lines[0]
        name, colon, rest = first.partition(b":")
        if colon and name.strip().lower() == b"authentication-results":
            value = rest + b"".join(field_lines[1:])
            if _authserv_id(value) == ours:
                removed = True
                continue
        kept.extend(field_lines)
    return b"".join(kept) + body if removed else raw
