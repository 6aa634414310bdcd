"""Mixed mail for rollout and adapter tests: ordinary notes, legitimate invoices and credential
phish (the invoice scenario of docs/rollout.md), and a reader for the benchmark mix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mailsift.testing.messages import make_message

__all__ = ["INVOICE_PACK", "bench_mix", "traffic"]

#: A pack whose one rule quarantines every legitimate invoice (the misfire the breaker catches).
INVOICE_PACK = '''
[pack]
name = "finance-lures"
description = "Invoice lures (a rule that misfires on every legitimate invoice)"
default_state = "active"

[[rule]]
id = "INVOICE_LURE"
description = "Mentions an invoice"
category = "phish"
weight = 7.0
body = '/\\binvoice\\b/i'
'''


def traffic(n: int, *, start: int = 0, tag: str = "scenario") -> list[tuple[str, bytes]]:
    """``n`` messages, a third legitimate invoices and a sixth credential phish."""
    out = []
    for i in range(start, start + n):
        kind = ("invoice", "note", "note", "invoice", "note", "phish")[i % 6]
        mid = f"<{tag}-{i}@example.org>"
        if kind == "invoice":
            raw = make_message(subject=f"Invoice {1000 + i} from Acme Hosting",
                               from_="Acme Billing <billing@acme-hosting.example>",
                               text=f"Hello,\n\nyour invoice {1000 + i} for November is "
                                    "attached. Total EUR 49.00, due in 30 days.\n",
                               message_id=mid)
        elif kind == "note":
            raw = make_message(subject=f"Notes from meeting {i}", message_id=mid,
                               text="Hi,\n\nthe notes from today's meeting are on the wiki.\n")
        else:
            raw = make_message(
                subject="Your account has been suspended", message_id=mid,
                from_="PayPal <service@paypa1-secure.example>",
                html=('<p>Unusual sign-in activity. Verify your account now or it will be '
                      'suspended.</p><a href="http://192.0.2.55/login">'
                      'https://www.paypal.com/signin</a><form action="http://192.0.2.55/c">'
                      '<input type="password"></form>'),
                text="Verify your account now: http://192.0.2.55/login")
        out.append((kind, raw))
    return out


def bench_mix(path: Path, limit: int | None = None) -> Iterator[tuple[str, bytes]]:
    """``(id, raw)`` of the benchmark mix (``../shared/bench/mix-1000.mbox.gz``)."""
    from mailsift.parsing.sources import iter_messages

    for i, (msg_id, raw) in enumerate(iter_messages([str(path)])):
        if limit is not None and i >= limit:
            return
        yield msg_id, raw
