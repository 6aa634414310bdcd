"""Compiling packs into a ``RuleSet`` and evaluating it against one message.

Compilation resolves everything that can be resolved once: regexes and their prefilters, check
arguments, meta expressions, the order of meta rules (inputs first, cycles rejected), weight
overrides and disabled rules. Evaluation is then a loop over small closures that read lazily
built views; a matcher whose view is empty costs one dict lookup.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import ahocorasick

from mailsift.core.errors import ConfigError, RuleError
from mailsift.core.findings import ArtifactState, Finding
from mailsift.core.message import ParsedMessage
from mailsift.rules.checks import make_check
from mailsift.rules.fields import MessageView, parse_header_field
from mailsift.rules.meta import MetaExpr, parse_meta
from mailsift.rules.model import PackSpec, RuleMeta, RuleSpec, is_subrule
from mailsift.rules.patterns import Pattern, compile_pattern

__all__ = ["RuleHit", "RuleSet"]

_Matcher = Callable[[MessageView], tuple[str, ...]]
# Views that are lists of items: ^ and $ anchor at each item (URL, file name, header value).
_LIST_KINDS = frozenset({"header", "uri", "uri_host", "attachment_name", "attachment_type"})
_EVIDENCE_CHARS = 160


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that matched, with what it saw.

    ``state`` is the state the hit acts with: the rule's own, or lower for a meta rule that
    holds only when rules that do not act yet (shadow, canary) are counted."""

    rule: RuleMeta
    evidence: tuple[str, ...]
    state: ArtifactState | None = None

    @property
    def acting_state(self) -> ArtifactState:
        return self.rule.state if self.state is None else self.state


class RuleSet:
    """Compiled rules of one or more packs; immutable and safe to share across scans."""

    def __init__(
        self,
        packs: Sequence[PackSpec],
        *,
        disabled: Iterable[str] = (),
        weights: Mapping[str, float] | None = None,
        states: Mapping[str, ArtifactState] | None = None,
        pack_state: ArtifactState | None = None,
        max_raw_bytes: int = 256 * 1024,
        max_body_chars: int = 128 * 1024,
    ) -> None:
        weights = dict(weights or {})
        disabled_set = frozenset(disabled)
        specs: dict[str, tuple[RuleSpec, PackSpec]] = {}
        names: set[str] = set()
        for pack in packs:
            if pack.name in names:
                raise RuleError(f"two packs named {pack.name!r}", path=pack.path)
            names.add(pack.name)
            for spec in pack.rules:
                if spec.id in specs:
                    first = specs[spec.id][0]
                    raise RuleError(
                        f"duplicate rule id {spec.id} (also in {first.path}:{first.line})",
                        path=spec.path, line=spec.line,
                    )
                specs[spec.id] = (spec, pack)
        for label, given in (("disabled", disabled_set), ("weights", set(weights))):
            unknown = sorted(given - set(specs))
            if unknown:
                raise ConfigError(f"rules.{label} names unknown rule(s): {', '.join(unknown)}")
        for rule_id in weights:
            if is_subrule(rule_id):
                raise ConfigError(f"rules.weights: {rule_id} is a sub-rule and has no weight")
        self._max_raw = max_raw_bytes
        self._max_body = max_body_chars
        self._packs = tuple(packs)
        self._disabled = disabled_set
        self._weights = MappingProxyType(weights)
        meta: dict[str, RuleMeta] = {}
        for rule_id, (spec, pack) in specs.items():
            meta[rule_id] = RuleMeta(
                id=rule_id, description=spec.description, category=spec.category,
                weight=float(weights.get(rule_id, spec.weight)),
                state=_state(rule_id, spec.state, states, pack_state),
                version=spec.version, pack=pack.name, pack_version=pack.version,
                kind=spec.kind, tags=spec.tags,
            )
        self._meta = MappingProxyType(meta)
        self._plain: list[tuple[RuleMeta, _Matcher]] = []
        self._lazy: dict[str, _Matcher] = {}
        metas: dict[str, MetaExpr] = {}
        patterns: list[tuple[str, Pattern]] = []
        for rule_id, (spec, _pack) in specs.items():
            if spec.kind == "meta":
                metas[rule_id] = _meta_expr(spec, specs)
            elif rule_id not in disabled_set:
                matcher, keyed = _matcher(spec)
                if is_subrule(rule_id):
                    # Sub-rules run only when a meta reads them (after && / || short-cuts).
                    self._lazy[rule_id] = matcher
                else:
                    self._plain.append((meta[rule_id], matcher))
                if keyed is not None:
                    patterns.append(keyed)
        self._prefilters = _prefilters(patterns)
        # Disabled rules never hit, so metas reading them see "false"; cycles are checked over
        # every meta so a pack's validity does not depend on local config.
        self._metas = [
            (meta[rid], metas[rid]) for rid in _meta_order(metas, specs)
            if rid not in disabled_set
        ]
        self._codes = frozenset(
            rid for rid in meta if not is_subrule(rid) and rid not in disabled_set
        )
        # Metas that read, directly or through other metas, a rule that does not act yet: what
        # they conclude must not act before those rules do (see _state_of_metas).
        self._not_acting = frozenset(
            rid for rid, m in meta.items()
            if _ACT_RANK[m.state] < _ACT_RANK[ArtifactState.ACTIVE])
        self._gated: set[str] = set()
        for rule, expr in self._metas:
            if any(n in self._not_acting or n in self._gated for n in expr.names):
                self._gated.add(rule.id)

    @property
    def rules(self) -> Mapping[str, RuleMeta]:
        """Metadata of every loaded rule (disabled ones included), by id."""
        return self._meta

    @property
    def codes(self) -> frozenset[str]:
        """Finding codes this set can emit (enabled, reported rules)."""
        return self._codes

    @property
    def packs(self) -> tuple[PackSpec, ...]:
        return self._packs

    def versions(self) -> dict[str, str]:
        """``{"rules:<pack>": version}``, plus ``rules:overrides`` when config changed rules."""
        out = {f"rules:{p.name}": p.version for p in self._packs}
        if self._disabled or self._weights:
            local = {"disabled": sorted(self._disabled), "weights": dict(self._weights)}
            blob = json.dumps(local, sort_keys=True, separators=(",", ":"))
            out["rules:overrides"] = hashlib.sha256(blob.encode()).hexdigest()[:12]
        return out

    def evaluate(self, msg: ParsedMessage) -> list[RuleHit]:
        """Every reported rule that matched ``msg`` (sub-rules only feed meta rules)."""
        view = MessageView(msg, self._max_raw, self._prefilters, self._max_body)
        seen = _Hits(self._lazy, view)
        for rule, matcher in self._plain:
            seen[rule.id] = matcher(view)
        for rule, expr in self._metas:
            if expr(seen):
                seen[rule.id] = tuple(
                    f"{name}: {evidence[0]}" if evidence else name
                    for name in expr.names if (evidence := dict.get(seen, name))
                ) or (expr.source,)
        states = self._state_of_metas(seen)
        return [
            RuleHit(self._meta[rid], evidence, states.get(rid))
            for rid, evidence in seen.items() if evidence and not is_subrule(rid)
        ]

    def _state_of_metas(self, seen: _Hits) -> dict[str, ArtifactState]:
        """The state each gated meta hit acts with: the strictest world in which it holds,
        where the active world counts only active rules' hits and the canary world active and
        canary ones. Without this, a rule that does not act yet would change enforced verdicts
        through an active meta reading it: by making it hold (the meta's hit acts only with
        the state of that world), or by keeping it from holding (``A && !SHADOW_RULE``: the
        meta holds in the active world, so it is added to ``seen`` and acts)."""
        if not self._gated or not any(
                evidence and rid in self._not_acting for rid, evidence in seen.items()):
            return {}  # no rule that does not act hit: every world sees what ``seen`` saw
        out: dict[str, ArtifactState] = {}
        for world in (ArtifactState.ACTIVE, ArtifactState.CANARY):
            held = _World(seen, self._meta, self._metas, self._gated, _ACT_RANK[world])
            for rule, expr in self._metas:
                if rule.id in self._gated and rule.id not in out and held.get(rule.id):
                    out[rule.id] = world
                    if not seen.get(rule.id):
                        seen[rule.id] = (expr.source,)
        for rule, _ in self._metas:
            if rule.id not in self._gated or not seen.get(rule.id):
                continue
            state = out.get(rule.id, ArtifactState.SHADOW)
            if _ACT_RANK[state] >= _ACT_RANK[rule.state]:
                out.pop(rule.id, None)  # its own state decides
            else:
                out[rule.id] = state
        return out

    def findings(self, msg: ParsedMessage, detector: str = "rules") -> list[Finding]:
        """``evaluate`` as findings carrying pack artifact, version and rule state."""
        return [
            Finding(
                code=hit.rule.id, weight=hit.rule.weight, evidence=hit.evidence,
                detector=detector, category=hit.rule.category,
                description=hit.rule.description, artifact=hit.rule.artifact,
                version=hit.rule.pack_version, state=hit.acting_state,
            )
            for hit in self.evaluate(msg) if hit.rule.state is not ArtifactState.RETIRED
        ]


def _state(rule_id: str, written: ArtifactState, states: Mapping[str, ArtifactState] | None,
           pack_state: ArtifactState | None) -> ArtifactState:
    """Rollout decides over what the pack file says: a per-rule state from the registry (a rule
    promoted on its own, or demoted by the circuit breaker) replaces the written one, and a pack
    deployed as shadow or canary caps every rule in it at that state."""
    state = (states or {}).get(rule_id, written)
    if pack_state is not None and _ACT_RANK[pack_state] < _ACT_RANK[state]:
        state = pack_state
    return state


_ACT_RANK = {ArtifactState.RETIRED: 0, ArtifactState.SHADOW: 1, ArtifactState.CANARY: 2,
             ArtifactState.ACTIVE: 3}


class _Hits(dict[str, tuple[str, ...]]):
    """Evidence by rule id; sub-rules are evaluated the first time a meta asks for them."""

    __slots__ = ("_lazy", "_view")

    def __init__(self, lazy: Mapping[str, _Matcher], view: MessageView) -> None:
        super().__init__()
        self._lazy = lazy
        self._view = view

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key] or default
        matcher = self._lazy.get(key)
        if matcher is None:
            return default
        evidence = matcher(self._view)
        self[key] = evidence
        return evidence or default


class _World:
    """The hits as rules of at least one state rank see them: lower-ranked rules count as
    not hit, and gated metas are evaluated again over that (lazily, in dependency order)."""

    __slots__ = ("_gated", "_meta", "_metas", "_rank", "_seen", "_values")

    def __init__(self, seen: _Hits, meta: Mapping[str, RuleMeta],
                 metas: Sequence[tuple[RuleMeta, MetaExpr]], gated: set[str], rank: int) -> None:
        self._seen = seen
        self._meta = meta
        self._rank = rank
        self._gated = gated
        self._values: dict[str, bool] = {}
        self._metas = {rule.id: expr for rule, expr in metas if rule.id in gated}

    def get(self, key: str, default: Any = None) -> Any:
        rule = self._meta.get(key)
        if rule is not None and _ACT_RANK[rule.state] < self._rank:
            return default
        if key not in self._gated:
            return self._seen.get(key, default)
        if key not in self._values:
            self._values[key] = self._metas[key](self)
        return self._values[key] or default


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _EVIDENCE_CHARS else text[: _EVIDENCE_CHARS - 1] + "…"


def _line_around(text: str, start: int, end: int) -> str:
    left = text.rfind("\n", 0, start) + 1
    right = text.find("\n", end)
    return text[left: right if right >= 0 else len(text)]


def _matcher(spec: RuleSpec) -> tuple[_Matcher, tuple[str, Pattern] | None]:
    """The matcher of a non-meta rule, and its (view key, pattern) when it has a regex."""
    if spec.kind == "check":
        return make_check(spec.target, spec.args), None
    if spec.kind == "header":
        name, part = parse_header_field(spec.target)
        key = f"h:{name}:{part}"
        label = spec.target
        if spec.pattern is None:
            return _presence(name, part, key, label, spec.presence == "exists"), None
        pattern = compile_pattern(spec.pattern, spec.flags, extra=re.MULTILINE)
        return _pattern_matcher(
            key, pattern,
            lambda text, start, end: f"{label}: {_clip(_line_around(text, start, end))}",
        ), (key, pattern)
    assert spec.pattern is not None
    listed = spec.kind in _LIST_KINDS
    pattern = compile_pattern(spec.pattern, spec.flags, extra=re.MULTILINE if listed else 0)
    if listed:
        return _pattern_matcher(
            spec.kind, pattern, lambda text, start, end: _clip(_line_around(text, start, end))
        ), (spec.kind, pattern)
    return _pattern_matcher(
        spec.kind, pattern, lambda text, start, end: _clip(text[start:end])
    ), (spec.kind, pattern)


def _pattern_matcher(
    key: str, pattern: Pattern, describe: Callable[[str, int, int], str]
) -> _Matcher:
    parts = pattern.parts or (pattern,)
    # Parts without literals are always tried; the others only when the view's literal index
    # names them (see ``_Prefilter``) and all their literal groups are present.
    always = any(not part.groups for part in parts)
    ids = frozenset(id(part) for part in parts)

    def match(view: MessageView) -> tuple[str, ...]:
        text = view.text(key)
        if not text:
            return ()
        candidates = view.candidates(key)
        if not always and ids.isdisjoint(candidates):
            return ()
        present = view.present(key)
        folded = view.folded(key)
        for part in parts:
            if part.groups and (id(part) not in candidates or not part.may_match(present)):
                continue
            span = part.search(text, folded)
            if span:
                return (describe(text, span[0], span[1]),)
        return ()

    return match


class _Prefilter:
    """The literals of one view: an Aho-Corasick automaton over all of them, and for each
    literal the regex parts whose most selective group contains it."""

    def __init__(self, parts: Sequence[Pattern]) -> None:
        self.index: dict[str, set[int]] = {}
        self.automaton = ahocorasick.Automaton()
        for part in parts:
            if not part.groups:
                continue
            best = max(part.groups, key=lambda group: min(map(len, group)))
            for literal in best:
                self.index.setdefault(literal, set()).add(id(part))
            for group in part.groups:
                for literal in group:
                    if literal not in self.automaton:
                        self.automaton.add_word(literal, literal)
        if len(self.automaton):
            self.automaton.make_automaton()
        else:
            self.automaton = None  # no literal at all: every part is always tried

    def candidates(self, present: frozenset[str]) -> frozenset[int]:
        index = self.index
        return frozenset(pid for lit in present if lit in index for pid in index[lit])


def _prefilters(patterns: Iterable[tuple[str, Pattern]]) -> dict[str, _Prefilter]:
    by_key: dict[str, list[Pattern]] = {}
    for key, pattern in patterns:
        by_key.setdefault(key, []).extend(pattern.parts or (pattern,))
    return {key: _Prefilter(parts) for key, parts in by_key.items()}


def _presence(name: str, part: str, key: str, label: str, want: bool) -> _Matcher:
    def match(view: MessageView) -> tuple[str, ...]:
        present = bool(view.text(key)) if part or name == "ALL" else bool(view.msg.header(name))
        if present != want:
            return ()
        return (f"{label} present" if want else f"{label} missing",)

    return match


def _meta_expr(spec: RuleSpec, specs: Mapping[str, tuple[RuleSpec, PackSpec]]) -> MetaExpr:
    try:
        expr = parse_meta(spec.target)
    except ValueError as exc:
        raise RuleError(f"rule {spec.id}: {exc}", path=spec.path, line=spec.line) from None
    for name in expr.names:
        if name not in specs:
            raise RuleError(f"rule {spec.id}: meta refers to unknown rule {name}",
                            path=spec.path, line=spec.line)
        if name == spec.id:
            raise RuleError(f"rule {spec.id}: meta refers to itself",
                            path=spec.path, line=spec.line)
    return expr


def _meta_order(metas: Mapping[str, MetaExpr],
                specs: Mapping[str, tuple[RuleSpec, PackSpec]]) -> list[str]:
    """Meta rules in dependency order (inputs first); a cycle is a ``RuleError``."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(rule_id: str, trail: list[str]) -> None:
        if state.get(rule_id) == 2:
            return
        if state.get(rule_id) == 1:
            cycle = [*trail[trail.index(rule_id):], rule_id]
            spec = specs[rule_id][0]
            raise RuleError(f"meta rules form a cycle: {' -> '.join(cycle)}",
                            path=spec.path, line=spec.line)
        state[rule_id] = 1
        for name in metas[rule_id].names:
            if name in metas:
                visit(name, [*trail, rule_id])
        state[rule_id] = 2
        order.append(rule_id)

    for rule_id in sorted(metas):
        visit(rule_id, [])
    return order
