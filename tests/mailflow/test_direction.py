"""Mail direction from the client, SMTP AUTH (the MTA's Received header) and domains."""

from __future__ import annotations

import pytest

from mailsift.config.mailflow import DirectionSettings
from mailsift.mailflow.direction import Direction, DirectionRules
from mailsift.testing.messages import make_message

SETTINGS = DirectionSettings(accepted_domains=("customer.test",),
                             internal_networks=("10.0.0.0/8",))
RAW = make_message(from_="a@customer.test")
AUTHED = (b"Received: from laptop (unknown [203.0.113.9])\r\n\tby mx.customer.test (Postfix) "
          b"with ESMTPSA id 4ABC\r\n\tfor <x@example.net>; Fri, 20 Nov 2026 09:30:00 +0000\r\n"
          + RAW)


@pytest.mark.parametrize(("ip", "rcpts", "raw", "expected"), [
    ("203.0.113.9", ("bob@customer.test",), RAW, Direction.INBOUND),
    ("203.0.113.9", ("bob@example.net",), RAW, Direction.INBOUND),
    ("10.1.2.3", ("bob@example.net",), RAW, Direction.OUTBOUND),
    ("10.1.2.3", ("bob@customer.test", "eve@mail.customer.test"), RAW, Direction.INTERNAL),
    ("10.1.2.3", ("bob@customer.test", "x@example.net"), RAW, Direction.OUTBOUND),
    ("203.0.113.9", ("x@example.net",), AUTHED, Direction.OUTBOUND),
    (None, ("bob@customer.test",), AUTHED, Direction.INTERNAL),
])
def test_direction(ip: str | None, rcpts: tuple[str, ...], raw: bytes,
                   expected: Direction) -> None:
    direction, why = DirectionRules(SETTINGS).classify(raw, "a@customer.test", rcpts, ip)
    assert direction is expected, why


def test_a_forged_sender_domain_from_outside_is_inbound() -> None:
    direction, _ = DirectionRules(SETTINGS).classify(RAW, "ceo@customer.test",
                                                     ("x@example.net",), "198.51.100.1")
    assert direction is Direction.INBOUND


def test_auth_is_believed_only_from_the_mta_in_front() -> None:
    rules = DirectionRules(SETTINGS, trust_received=False)
    assert rules.classify(AUTHED, "a@customer.test", ("x@example.net",),
                          "203.0.113.9")[0] is Direction.INBOUND
    # only the topmost Received header is the MTA's own
    lower = b"Received: from x by y with ESMTP id 1\r\n" + AUTHED
    assert DirectionRules(SETTINGS).classify(lower, "", ("x@example.net",), "203.0.113.9")[0] \
        is Direction.INBOUND


def test_without_accepted_domains_everything_is_inbound() -> None:
    rules = DirectionRules(DirectionSettings(internal_networks=("10.0.0.0/8",)))
    assert rules.classify(RAW, "", ("x@example.net",), "10.0.0.1")[0] is Direction.INBOUND


def test_bad_network_is_refused() -> None:
    with pytest.raises(ValueError, match="not-a-net"):
        DirectionSettings(internal_networks=("not-a-net",))
