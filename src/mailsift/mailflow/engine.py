"""Evaluating mail-flow rules: a pure function from typed rules and one message's facts.

``evaluate`` walks the rules in priority order (then file order) and returns a ``Hit`` per
matching rule until one with ``stop`` matches. It reads only ``FlowFacts`` and changes nothing:
``mailflow.step`` applies the hits.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import ahocorasick

from mailsift.config.mailflow import Conditions, FlowRule, MailflowSettings
from mailsift.core.auth import AuthResults
from mailsift.core.message import ParsedMessage
from mailsift.core.verdict import Verdict

__all__ = ["CompiledRule", "FlowFacts", "Hit", "RuleSet", "evaluate"]


@dataclass(frozen=True)
class FlowFacts:
    """What rules look at for one message. ``verdict`` and ``auth`` are ``None`` before
    detection. Derived values (lower-case texts, attachment names) are computed once, on first
    use, whatever the number of rules."""

    message: ParsedMessage
    mail_from: str
    rcpt_to: tuple[str, ...]
    direction: str
    client_ip: str
    size: int
    verdict: Verdict | None = None
    auth: AuthResults | None = None
    vocabulary: Any = None  # RuleSet.vocabulary: every word rules look for, one automaton

    def found(self, words: frozenset[str], where: str) -> bool:
        """Whether any of ``words`` (lower-case) is in the subject or the body."""
        if self.vocabulary is None:
            text = self.subject if where == "subject" else self.body
            return any(w in text for w in words)
        hits = self.subject_words if where == "subject" else self.body_words
        return not words.isdisjoint(hits)

    @cached_property
    def subject_words(self) -> frozenset[str]:
        return frozenset(w for _end, w in self.vocabulary.iter(self.subject))

    @cached_property
    def body_words(self) -> frozenset[str]:
        return frozenset(w for _end, w in self.vocabulary.iter(self.body))

    @cached_property
    def senders(self) -> tuple[str, ...]:
        msg = self.message
        found = [self.mail_from] + ([msg.from_addr.addr] if msg.from_addr else [])
        return tuple(s.lower() for s in found if s)

    @cached_property
    def recipients(self) -> tuple[str, ...]:
        return tuple(r.lower() for r in self.rcpt_to)

    @cached_property
    def subject(self) -> str:
        return self.message.subject.lower()

    @cached_property
    def body(self) -> str:
        return self.message.body_text.lower()

    @cached_property
    def attachment_names(self) -> tuple[str, ...]:
        return tuple(a.filename.lower() for a in self.message.attachments)

    @cached_property
    def attachment_types(self) -> frozenset[str]:
        return frozenset(t.lower() for a in self.message.attachments
                         for t in (a.declared_type, a.detected_type) if t)

    @cached_property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return ipaddress.ip_address(self.client_ip)
        except ValueError:
            return None


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


class _Addresses:
    """Address entries compiled: exact addresses, and domains matched with their subdomains
    (a set look-up per label of the address's domain); ``group:NAME`` entries expanded."""

    def __init__(self, entries: Sequence[str], groups: Mapping[str, tuple[str, ...]]) -> None:
        flat: list[str] = []
        for entry in entries:
            flat.extend(groups.get(entry[6:], ()) if entry.startswith("group:") else (entry,))
        lowered = [e.lower() for e in flat]
        self.exact = frozenset(e for e in lowered if "@" in e and not e.startswith("@"))
        self.domains = frozenset(e.lstrip("@").rstrip(".") for e in lowered
                                 if "@" not in e or e.startswith("@"))

    def __call__(self, address: str) -> bool:
        if address in self.exact:
            return True
        if not self.domains or "@" not in address:
            return False
        labels = address.rsplit("@", 1)[1].rstrip(".").split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels)))


Test = Callable[[FlowFacts], bool]


def _words(words: Sequence[str]) -> tuple[str, ...]:
    return tuple(w.lower() for w in words)


def _condition(name: str, c: Conditions, groups: Mapping[str, tuple[str, ...]]) -> Test:
    """One condition compiled into a test of the facts (patterns, networks, lower-case words
    prepared once, when the rules load)."""
    if name == "sender":
        senders = _Addresses(c.sender, groups)
        return lambda f: any(senders(s) for s in f.senders)
    if name == "recipient":
        recipients = _Addresses(c.recipient, groups)
        return lambda f: any(recipients(r) for r in f.recipients)
    if name == "direction":
        wanted = frozenset(c.direction)
        return lambda f: f.direction in wanted
    if name == "header_contains":
        pairs = [(k, v.lower()) for k, v in c.header_contains.items()]
        return lambda f: all(any(v in h.lower() for h in f.message.header(k)) for k, v in pairs)
    if name == "header_regex":
        rxs = [(k, re.compile(p)) for k, p in c.header_regex.items()]
        return lambda f: all(any(rx.search(h) for h in f.message.header(k)) for k, rx in rxs)
    if name in ("subject_words", "body_words", "subject_or_body_words"):
        words = frozenset(_words(getattr(c, name)))
        if name == "subject_words":
            return lambda f: f.found(words, "subject")
        if name == "body_words":
            return lambda f: f.found(words, "body")
        return lambda f: f.found(words, "subject") or f.found(words, "body")
    if name == "attachment_name":
        globs = _words(c.attachment_name)
        return lambda f: any(fnmatch.fnmatchcase(n, g) for n in f.attachment_names for g in globs)
    if name == "attachment_extension":
        exts = frozenset(e.lower().lstrip(".") for e in c.attachment_extension)
        return lambda f: any("." in n and n.rsplit(".", 1)[1] in exts for n in f.attachment_names)
    if name == "attachment_type":
        types = frozenset(_words(c.attachment_type))
        return lambda f: bool(types & f.attachment_types)
    if name == "size_over":
        over = c.size_over or 0
        return lambda f: f.size > over
    if name == "size_under":
        under = c.size_under or 0
        return lambda f: f.size < under
    if name == "client_ip":
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in c.client_ip)
        return lambda f: f.ip is not None and any(f.ip in n for n in nets)
    return _verdict_condition(name, c)


def _verdict_condition(name: str, c: Conditions) -> Test:
    if name == "category":
        cats = frozenset(c.category)
        return lambda f: f.verdict is not None and f.verdict.category.value in cats
    if name == "score_at_least":
        floor = c.score_at_least or 0.0
        return lambda f: f.verdict is not None and f.verdict.score >= floor
    if name == "finding":
        codes = frozenset(c.finding)
        return lambda f: f.verdict is not None and any(
            x.code in codes for x in f.verdict.findings if x.acts)
    if name == "spf":
        return lambda f: (f.auth is not None and f.auth.spf is not None
                          and f.auth.spf.result.value in c.spf)
    if name == "dkim":
        def dkim(f: FlowFacts) -> bool:
            results = [d.result.value for d in f.auth.dkim] if f.auth is not None else []
            return any(r in c.dkim for r in (results or ["none"]))
        return dkim
    if name == "dmarc":
        return lambda f: (f.auth is not None and f.auth.dmarc is not None
                          and f.auth.dmarc.result.value in c.dmarc)
    if name == "authenticated":
        return lambda f: authenticated(f.auth) is c.authenticated
    raise ValueError(f"unknown condition {name}")


def authenticated(auth: AuthResults | None) -> bool:
    """DMARC pass, or composite authentication pass (a trusted ARC sealer)."""
    if auth is None:
        return False
    if auth.dmarc is not None and auth.dmarc.result.value == "pass":
        return True
    return auth.compauth is not None and auth.compauth.result.value == "pass"


class CompiledRule:
    """One rule with every condition compiled into a test."""

    def __init__(self, rule: FlowRule, groups: Mapping[str, tuple[str, ...]]) -> None:
        self.rule = rule

        def tests(c: Conditions) -> tuple[Test, ...]:
            return tuple(_condition(name, c, groups) for name in c.given())

        self.all, self.any, self.none = tests(rule.if_), tests(rule.any), tests(rule.except_)

    def matches(self, facts: FlowFacts) -> bool:
        for test in self.all:
            if not test(facts):
                return False
        if self.any and not any(t(facts) for t in self.any):
            return False
        return not any(t(facts) for t in self.none)


class RuleSet:
    """``[mailflow]`` compiled: the rules of each stage in evaluation order."""

    def __init__(self, settings: MailflowSettings) -> None:
        self.settings = settings
        ordered = sorted(enumerate(settings.rules), key=lambda ir: (ir[1].priority, ir[0]))
        compiled = [CompiledRule(r, settings.groups) for _, r in ordered]
        self.before = tuple(c for c in compiled if c.rule.stage == "before")
        self.after = tuple(c for c in compiled if c.rule.stage == "after")
        words = {w.lower() for r in settings.rules for part in (r.if_, r.any, r.except_)
                 for w in (*part.subject_words, *part.body_words, *part.subject_or_body_words)}
        self.vocabulary: Any = None
        if words:  # one pass over the text finds every rule's words
            self.vocabulary = ahocorasick.Automaton()
            for w in words:
                self.vocabulary.add_word(w, w)
            self.vocabulary.make_automaton()

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
