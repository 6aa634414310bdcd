"""Email authentication: SPF, DKIM, DMARC, ARC, composite auth, Authentication-Results.

Public API (see ``docs/detectors/auth.md``)::

    resolver = make_resolver(settings.dns, server="127.0.0.1:5353")   # or None for offline
    auth = Authenticator(settings.auth, resolver).authenticate(parsed_message, envelope)
    auth.header            # our RFC 8601 Authentication-Results value
    describe(auth)         # lines for a mail admin

``envelope_from_relays`` recovers client IP / HELO / MAIL FROM from our own Received header and
``strip_forged_results`` removes incoming Authentication-Results claiming our authserv-id.
All DNS goes through the injected ``Resolver``; DNS trouble is ``temperror``, never ``fail``.
"""

from mailsift.auth.authenticator import OFFLINE_NOTE, Authenticator, match_spoof_allow
from mailsift.auth.explain import describe
from mailsift.auth.header import render_header, render_received_spf
from mailsift.auth.relays import (
    ReceivedHop,
    TrustedRelays,
    envelope_from_relays,
    parse_received,
    strip_forged_results,
)
from mailsift.auth.resolver import DnsResolver, make_resolver

__all__ = [
    "OFFLINE_NOTE",
    "Authenticator",
    "DnsResolver",
    "ReceivedHop",
    "TrustedRelays",
    "describe",
    "envelope_from_relays",
    "make_resolver",
    "match_spoof_allow",
    "parse_received",
    "render_header",
    "render_received_spf",
    "strip_forged_results",
]
