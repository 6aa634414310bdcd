"""Which allow/block entries are *wide*: they act on the mail of many unrelated senders.

A wide entry is as strong a change as promoting a rule that hits every message of a provider,
so it is not added by accident: the list service refuses it unless it is forced with a reason
(audited as ``lists.force``, with an alert). Wide, for an admin or incident entry:

* a ``domain`` entry for a public suffix (``co.uk``, ``web.app``) or a free-mail provider
  (``gmail.com``: the same ``FREEMAIL`` set the rules use);
* an ``ip`` network wider than /24 (IPv4) or /48 (IPv6);
* a ``url`` entry for a whole host (no path) that is a public suffix.

A ``sender`` entry names one address (policy matches it exactly), so it is never wide; per-user
entries act on one mailbox only.
"""

from __future__ import annotations

import ipaddress

from mailsift.parsing.urls import public_suffix_list
from mailsift.rules.checks import FREEMAIL

__all__ = ["IPV4_WIDEST", "IPV6_WIDEST", "wide_reason"]

IPV4_WIDEST = 24
IPV6_WIDEST = 48


def _public_suffix(domain: str) -> bool:
    try:
        return bool(public_suffix_list().is_public(domain))
    except Exception:  # the library rejects some hostile labels: not a suffix it knows
        return False


def _domain_reason(domain: str) -> str | None:
    if domain in FREEMAIL:
        return f"it would act on mail of every sender at {domain} (a free-mail provider)"
    if _public_suffix(domain):
        return f"it would act on mail of every domain under {domain} (a public suffix)"
    return None


def _ip_reason(value: str) -> str | None:
    net = ipaddress.ip_network(value, strict=False)
    widest = IPV4_WIDEST if net.version == 4 else IPV6_WIDEST
    if net.prefixlen < widest:
        return (f"it would act on mail from {net.num_addresses} addresses ({net}, wider "
                f"than /{widest})")
    return None


def _url_reason(value: str) -> str | None:
    bare = value.split("://", 1)[-1]
    host, _, path = bare.partition("/")
    if path.strip("/"):
        return None  # a prefix with a path names pages of one host
    if _public_suffix(host):
        return f"it would act on links to every site under {host} (a public suffix)"
    return None


def wide_reason(kind: str, value: str, scope: str) -> str | None:
    """Why the normalised entry ``value`` of ``kind`` in ``scope`` is wide, or None."""
    if scope.startswith("user:"):
        return None
    if kind == "domain":
        return _domain_reason(value)
    if kind == "ip":
        return _ip_reason(value)
    if kind == "url":
        return _url_reason(value)
    return None
