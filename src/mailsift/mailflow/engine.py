"""Evaluating mail-flow rules: a pure function from typed rules and one message's facts.

``evaluate`` walks the rules in priority order (then file order) and returns a ``Hit`` per
matching rule until one with ``stop`` matches. It reads only ``FlowFacts`` and changes nothing:
``mailflow.step`` applies the hits.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailsift.config.mailflow import Conditions, FlowRule, MailflowSettings
from mailsift.core.auth import AuthResults
from mailsift.core.message import ParsedMessage
from mailsift.core.verdict import Verdict

__all__ = ["CompiledRule", "FlowFacts", "Hit", "RuleSet", "evaluate"]


@dataclass(frozen=True, slots=True)
class FlowFacts:
    """What rules look at for one message. ``verdict`` and ``auth`` are ``None`` before
    detection."""

    message: ParsedMessage
    mail_from: str
    rcpt_to: tuple[str, ...]
    direction: str
    client_ip: str
    size: int
    verdict: Verdict | None = None
    auth: AuthResults | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that matched: what it asks for, and whether it only pretends (test modes)."""

    rule: FlowRule

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def enforced(self) -> bool:
        return self.rule.mode == "enforce"


def _addr_match(address: str, entries: Sequence[str], groups: Mapping[str, tuple[str, ...]]
                ) -> bool:
    address = address.lower()
    domain = address.rsplit("@", 1)[-1] if "@" in address else ""
    for entry in entries:
        if entry.startswith("group:"):
            if _addr_match(address, groups.get(entry[6:], ()), {}):
                return True
            continue
        e = entry.lower()
        if "@" in e and not e.startswith("@"):
            if address == e:
                return True
            continue
        d = e.lstrip("@")
        if domain and (domain == d or domain.endswith("." + d)):
            return True
    return False


def _words(text: str, words: Sequence[str]) -> bool:
    low = text.lower()
    return any(w.lower() in low for w in words)


class CompiledRule:
    """One rule with its patterns compiled (regexes, networks, globs)."""

    def __init__(self, rule: FlowRule, groups: Mapping[str, tuple[str, ...]]) -> None:
        self.rule = rule
        self.groups = groups
        self.parts = [(p, _Compiled(p)) for p in (rule.if_, rule.any, rule.except_)]

    def matches(self, facts: FlowFacts) -> bool:
        (all_c, all_x), (any_c, any_x), (exc_c, exc_x) = self.parts
        if not all(self._test(all_c, all_x, name, facts) for name in all_x.given):
            return False
        if any_x.given and not any(self._test(any_c, any_x, n, facts) for n in any_x.given):
            return False
        return not any(self._test(exc_c, exc_x, n, facts) for n in exc_x.given)

    def _test(self, c: Conditions, x: _Compiled, name: str, f: FlowFacts) -> bool:
        msg = f.message
        if name == "sender":
            senders = [f.mail_from] + ([msg.from_addr.addr] if msg.from_addr else [])
            return any(_addr_match(s, c.sender, self.groups) for s in senders if s)
        if name == "recipient":
            return any(_addr_match(r, c.recipient, self.groups) for r in f.rcpt_to)
        if name == "direction":
            return f.direction in c.direction
        if name == "header_contains":
            return all(any(v.lower() in h.lower() for h in msg.header(k))
                       for k, v in c.header_contains.items())
        if name == "header_regex":
            return all(any(rx.search(h) for h in msg.header(k)) for k, rx in x.regexes.items())
        if name == "subject_words":
            return _words(msg.subject, c.subject_words)
        if name == "body_words":
            return _words(msg.body_text, c.body_words)
        if name == "subject_or_body_words":
            return (_words(msg.subject, c.subject_or_body_words)
                    or _words(msg.body_text, c.subject_or_body_words))
        if name == "attachment_name":
            return any(fnmatch.fnmatch(a.filename.lower(), g.lower())
                       for a in msg.attachments for g in c.attachment_name)
        if name == "attachment_extension":
            exts = {e.lower().lstrip(".") for e in c.attachment_extension}
            return any(a.filename.lower().rsplit(".", 1)[-1] in exts
                       for a in msg.attachments if "." in a.filename)
        if name == "attachment_type":
            types = {t.lower() for t in c.attachment_type}
            return any(a.declared_type.lower() in types or a.detected_type.lower() in types
                       for a in msg.attachments)
        if name == "size_over":
            return c.size_over is not None and f.size > c.size_over
        if name == "size_under":
            return c.size_under is not None and f.size < c.size_under
        if name == "client_ip":
            return _ip_in(f.client_ip, x.networks)
        return self._verdict_test(c, name, f)

    @staticmethod
    def _verdict_test(c: Conditions, name: str, f: FlowFacts) -> bool:
        v, auth = f.verdict, f.auth
        if name == "category":
            return v is not None and v.category.value in c.category
        if name == "score_at_least":
            return v is not None and c.score_at_least is not None and v.score >= c.score_at_least
        if name == "finding":
            return v is not None and any(fi.code in c.finding for fi in v.findings if fi.acts)
        if name == "spf":
            return auth is not None and auth.spf is not None and auth.spf.result.value in c.spf
        if name == "dkim":
            results = [d.result.value for d in auth.dkim] if auth is not None else []
            return any(r in c.dkim for r in (results or ["none"]))
        if name == "dmarc":
            return (auth is not None and auth.dmarc is not None
                    and auth.dmarc.result.value in c.dmarc)
        if name == "authenticated":
            return authenticated(auth) is c.authenticated
        raise ValueError(f"unknown condition {name}")


def authenticated(auth: AuthResults | None) -> bool:
    """DMARC pass, or composite authentication pass (a trusted ARC sealer)."""
    if auth is None:
        return False
    if auth.dmarc is not None and auth.dmarc.result.value == "pass":
        return True
    return auth.compauth is not None and auth.compauth.result.value == "pass"


def _ip_in(ip: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in n for n in networks)


class _Compiled:
    def __init__(self, c: Conditions) -> None:
        self.given = tuple(c.given())
        self.regexes = {k: re.compile(p) for k, p in c.header_regex.items()}
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in c.client_ip)


class RuleSet:
    """``[mailflow]`` compiled: the rules of each stage in evaluation order."""

    def __init__(self, settings: MailflowSettings) -> None:
        self.settings = settings
        ordered = sorted(enumerate(settings.rules), key=lambda ir: (ir[1].priority, ir[0]))
        compiled = [CompiledRule(r, settings.groups) for _, r in ordered]
        self.before = tuple(c for c in compiled if c.rule.stage == "before")
        self.after = tuple(c for c in compiled if c.rule.stage == "after")

    def __bool__(self) -> bool:
        return bool(self.before or self.after)


def evaluate(rules: Sequence[CompiledRule], facts: FlowFacts) -> tuple[Hit, ...]:
    """The rules that match, in order, up to and including the first matching ``stop`` rule
    (a test-mode rule's ``stop`` also stops: test mode shows what enforcing would do)."""
    hits: list[Hit] = []
    for rule in rules:
        if rule.matches(facts):
            hits.append(Hit(rule.rule))
            if rule.rule.stop:
                break
    return tuple(hits)
