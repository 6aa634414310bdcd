"""Trusted relays: envelope recovery from our Received header; forged results removed."""

from __future__ import annotations

from mailsift.auth.relays import (
    TrustedRelays,
    envelope_from_relays,
    parse_received,
    strip_forged_results,
)
from mailsift.core.envelope import Connection, Envelope
from mailsift.parsing import parse_message
from mailsift.testing.signing import simple_message

POSTFIX = ("from mail.sender.example (mail.sender.example [198.51.100.25]) by mx1.ours.example "
           "(Postfix) with ESMTPS id 4AbC; Thu, 26 Nov 2026 10:00:01 +0000")
EXIM = ("from [198.51.100.26] (helo=smtp.sender.example) by mx2.ours.example with esmtps "
        "(envelope-from <bounce@sender.example>) id 1x; Thu, 26 Nov 2026 10:00:01 +0000")
INTERNAL = ("from mx1.ours.example (mx1.ours.example [10.0.0.5]) by store.ours.example "
            "(Postfix) with LMTP id 9; Thu, 26 Nov 2026 10:00:02 +0000")
FORGED = ("from evil.example (evil.example [192.0.2.66]) by mx1.ours.example; "
          "Thu, 26 Nov 2026 09:00:00 +0000")
RELAYS = ("10.0.0.0/8", "mx1.ours.example", ".ours.example")


def test_parse_received_postfix_and_exim():
    p = parse_received(POSTFIX)
    assert (p.by_host, p.helo, p.client_ip, p.client_name, p.envelope_from) == (
        "mx1.ours.example", "mail.sender.example", "198.51.100.25", "mail.sender.example", None)
    e = parse_received(EXIM)
    assert (e.by_host, e.helo, e.client_ip, e.envelope_from) == (
        "mx2.ours.example", "smtp.sender.example", "198.51.100.26", "bounce@sender.example")
    v6 = parse_received("from h.example (h.example [IPv6:2001:db8::1]) by mx1.ours.example")
    assert v6.client_ip == "2001:db8::1"


def test_boundary_skips_internal_hops_and_ignores_headers_below():
    relays = TrustedRelays(RELAYS)
    hop = relays.boundary([INTERNAL, POSTFIX, FORGED])
    assert hop is not None and hop.client_ip == "198.51.100.25"
    # Headers above our chain (not ours) are skipped; nothing of ours: no boundary.
    assert relays.boundary(["from a by b.other.example", POSTFIX]).client_ip == "198.51.100.25"
    assert TrustedRelays(("192.0.2.0/24",)).boundary([POSTFIX]) is None


def received_message(*received: str, return_path: str = "<bounce@sender.example>") -> bytes:
    extra = [f"Return-Path: {return_path}"] + [f"Received: {r}" for r in received]
    return simple_message(extra_headers=extra)


def test_envelope_filled_from_our_received_and_return_path():
    msg = parse_message(received_message(INTERNAL, POSTFIX, FORGED))
    env = envelope_from_relays(msg, Envelope(), RELAYS)
    assert env.client_ip == "198.51.100.25"
    assert env.helo == "mail.sender.example"
    assert env.mail_from == "bounce@sender.example"


def test_given_envelope_fields_win_and_no_relays_means_no_change():
    msg = parse_message(received_message(POSTFIX))
    given = Envelope(mail_from="x@y.example", connection=Connection(client_ip="192.0.2.1"))
    env = envelope_from_relays(msg, given, RELAYS)
    assert (env.client_ip, env.mail_from, env.helo) == ("192.0.2.1", "x@y.example", None)
    partial = envelope_from_relays(msg, Envelope(mail_from=None, connection=given.connection),
                                   RELAYS)
    assert (partial.client_ip, partial.mail_from) == ("192.0.2.1", "bounce@sender.example")
    assert envelope_from_relays(msg, Envelope(), ()) == Envelope()


def test_forged_received_alone_is_not_believed():
    # The attacker wrote a header claiming to be mx1, but our own top header says otherwise.
    msg = parse_message(received_message(EXIM, FORGED))
    env = envelope_from_relays(msg, Envelope(), ("mx2.ours.example",))
    assert env.client_ip == "198.51.100.26"


def test_strip_forged_results_removes_only_ours():
    raw = (
        b"Authentication-Results: MAILSIFT.local; spf=pass smtp.mailfrom=a@example.com\r\n"
        b"Authentication-Results: (comment) mailsift.local;\r\n\tdkim=pass header.d=example.com\r\n"
        b"Authentication-Results: mx.google.com; dmarc=pass header.from=example.com\r\n"
        b"Authentication-Results: mailsift.local.evil; dkim=pass\r\n"
        b"authentication-RESULTS : mailsift.local; spf=softfail\r\n"
        + simple_message(body="Authentication-Results: mailsift.local; body stays\r\n")
    )
    out = strip_forged_results(raw, "mailsift.local")
    assert out.count(b"Authentication-Results:") == 3
    assert b"mx.google.com" in out and b"mailsift.local.evil" in out
    assert b"tdkim=pass header.d=example.com" not in out and b"\tdkim=pass" not in out
    assert b"softfail" not in out
    assert out.endswith(b"Authentication-Results: mailsift.local; body stays\r\n")
    assert strip_forged_results(simple_message(), "mailsift.local") == simple_message()
    lf = raw.replace(b"\r\n", b"\n")
    assert strip_forged_results(lf, "mailsift.local").count(b"Authentication-Results:") == 3


def test_strip_forged_results_sees_ids_that_only_lower_case_to_ours():
    # KELVIN SIGN lower-cases to "k": such a header names us to whoever compares ids that way.
    raw = ("Authentication-Results: mx.ban\u212a.example; dkim=pass\r\n"
           "Authentication-Results: mx.other.example; dkim=pass\r\n").encode() + simple_message()
    out = strip_forged_results(raw, "mx.bank.example")
    assert "\u212a".encode() not in out and b"mx.other.example" in out
    assert strip_forged_results(simple_message(), "mx.bank.example") is not None
