"""Safe rollout use cases: stage, check (the gate), promote, withdraw, retire, roll back; breaker
trips, incidents and incident release come from ``rollout_incidents``, policy changes through
the gate (``check_config``, ``accept_config``) from ``rollout_policy``. Shared by the CLI, the
REST API and the web UI.

Every change is audited. Rollback never depends on the update path that broke: each staged
version is copied into ``[rollout] artifacts_dir`` when it is staged, and the built-in pack ships
with mailsift, so the previous good version is always on local disk.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mailsift.config.schema import Settings
from mailsift.core.envelope import Envelope
from mailsift.core.errors import InputError
from mailsift.core.findings import ArtifactState
from mailsift.core.rollout import CanaryScope, Deployment, RolloutState
from mailsift.parsing.sources import iter_messages
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.rollout.gate import (
    GateInput,
    GateReport,
    candidate_state,
    judge_shadow,
    run_gate,
    shadow_problem,
)
from mailsift.rollout.robustness import ROBUSTNESS_SOURCE, robustness_cases
from mailsift.rules import BUILTIN_PACK, load_pack
from mailsift.services.access import Principal, require
from mailsift.services.alerts import Alerter
from mailsift.services.report_corpus import reported_ham_inputs
from mailsift.services.rollout_gate import (
    pack_of_rule,
    raises_rule,
    rule_trial_state,
    shadow_rules,
)
from mailsift.services.rollout_incidents import IncidentOps
from mailsift.services.rollout_policy import PolicyOps
from mailsift.services.upgrades import Adoption, Builtin, adopt_builtins
from mailsift.store.query import TraceQuery
from mailsift.store.store import Store

__all__ = ["RolloutService"]

log = logging.getLogger("mailsift.rollout")


class RolloutService(IncidentOps, PolicyOps):
    def __init__(self, store: Store, settings: Settings, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        base = settings.rollout.artifacts_dir or str(Path(settings.store.data_dir) / "artifacts")
        self.artifacts = Path(base)
        self._pack_rules: dict[str, frozenset[tuple[str, str, str]]] = {}
        self.alerts = Alerter(store, settings)

    # -- the registry ---------------------------------------------------------------------------
    def state(self) -> RolloutState:
        return self.store.rollout.state()

    def _configured_packs(self) -> dict[str, tuple[str, str]]:
        """Packs named by config: name -> (version, path); the built-in one has path ""."""
        out: dict[str, tuple[str, str]] = {}
        if self.settings.rules.builtin:
            pack = load_pack(BUILTIN_PACK)
            out[pack.name] = (pack.version, "")
        for path in self.settings.rules.paths:
            pack = load_pack(path)
            out[pack.name] = (pack.version, str(path))
        return out

    @staticmethod
    def _split(name: str) -> tuple[str | None, str]:
        """``rules:site`` / ``model:default`` / a bare name (kind looked up)."""
        kind, sep, bare = name.partition(":")
        return (kind, bare) if sep and kind in ("rules", "model") else (None, name)

    def _find(self, name: str, version: str | None) -> Deployment:
        kind, bare = self._split(name)
        deps = self.store.rollout.deployments(kind, bare)
        if version:
            deps = [d for d in deps if d.version.startswith(version)]
        else:
            live = [d for d in deps if d.state is not ArtifactState.RETIRED]
            deps = [d for d in live if d.state is not ArtifactState.ACTIVE][-1:] or live[-1:]
        kinds = {d.kind for d in deps}
        if len(deps) != 1 or len(kinds) != 1:
            raise InputError(f"no single staged version of {name}"
                             + (f"@{version}" if version else "")
                             + " (see rollout status; name it rules:NAME or model:NAME)")
        return deps[0]

    def adopt_builtins(self, builtins: Sequence[Builtin] | None = None) -> list[Adoption]:
        """Register this release's built-in pack and model: the baseline on a new site, staged
        in shadow on an upgraded one (``services.upgrades``). Run at every gateway start."""
        return adopt_builtins(self.store, self.settings, self.artifacts, self.alerts, builtins)

    def stage(self, actor: Principal, path: str, *, note: str = "") -> Deployment:
        """Register a new version in shadow, validated and copied locally: a rule pack
        (``.toml`` file or folder) or a model (its ``.json`` with the ``.npz`` beside it)."""
        require(actor, "rollout.write")
        self.adopt_builtins()  # what runs today is registered (and copied) before it changes
        if path.endswith(".json"):
            dep = self._stage_model(actor, Path(path))
        else:
            dep = self._stage_pack(actor, Path(path))
        self.store.rollout.stage(dep, actor=actor.name, note=note)
        self.store.audit.append(actor.name, "rollout.stage", f"{dep.artifact}@{dep.version}",
                                {"path": str(path), "note": note})
        return dep

    def _baseline(self, actor: Principal, kind: str, name: str, version: str, path: str) -> None:
        """Record what runs today as the active baseline, so rollback has a target."""
        if not self.store.rollout.deployments(kind, name):
            self.store.rollout.stage(Deployment(kind, name, version, ArtifactState.ACTIVE, path),
                                     actor=actor.name, note="configured version (baseline)")

    def _stage_pack(self, actor: Principal, src: Path) -> Deployment:
        pack = load_pack(src)  # a bad pack fails here with file:line
        target = self.artifacts / "rules" / pack.name / f"{pack.version}.toml"
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            target.write_text("\n".join(p.read_text() for p in sorted(src.glob("*.toml"))))
        else:
            shutil.copyfile(src, target)
        configured = self._configured_packs()
        if pack.name in configured:
            self._baseline(actor, "rules", pack.name, *configured[pack.name])
        return Deployment("rules", pack.name, pack.version, ArtifactState.SHADOW, str(target))

    def _stage_model(self, actor: Principal, src: Path) -> Deployment:
        from mailsift.ml.model import load_model, shipped_model_path

        model = load_model(src)  # format, feature version and hash are checked here
        target = self.artifacts / "model" / model.name / f"{model.version}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        shutil.copyfile(src.with_suffix(".npz"), target.with_suffix(".npz"))
        current = load_model(self.settings.ml.model_path or shipped_model_path())
        if not self.store.rollout.deployments("model"):
            self._baseline(actor, "model", current.name, current.version,
                           self.settings.ml.model_path)
        return Deployment("model", model.name, model.version, ArtifactState.SHADOW, str(target))

    # -- the gate -------------------------------------------------------------------------------
    def _inputs(self, corpora: Iterable[tuple[str, str]], recent: int) -> Iterator[GateInput]:
        for label, path in corpora:
            for msg_id, raw in iter_messages([path]):
                yield GateInput(source=Path(path).name, label=label, id=msg_id, raw=raw)
        # the shipped robustness set, on every check: its legitimate mail is known-good, and
        # the candidate must not let through a lure the active set catches
        for case in robustness_cases() if self.settings.rollout.robustness_set else ():
            yield GateInput(ROBUSTNESS_SOURCE, case.label, case.id, case.raw,
                            must_catch=case.label == "threat")
        seen: set[str] = set()  # a reported message is not replayed again as traffic
        if self.settings.rollout.reported_ham:
            yield from reported_ham_inputs(self.store, seen)
        if recent:
            page = self.store.trace.search(TraceQuery(), limit=recent)
            for item in page.items:
                if item.message in seen:
                    continue
                seen.add(item.message)
                try:
                    raw = self.store.trace.raw(item.message)
                except Exception:  # original not kept (retention): nothing to replay
                    continue
                rec = self.store.trace.get(item.message)
                env = Envelope(mail_from=rec.mail_from if rec else None,
                               rcpt_to=tuple(rec.rcpt_to) if rec else ())
                yield GateInput("stored-traffic", "traffic", item.message, raw, env)

    def check(self, actor: Principal, name: str, version: str | None = None, *,
              corpora: Iterable[tuple[str, str]] = (), recent: int | None = None) -> GateReport:
        """Replay the candidate against the active set and record the report on it."""
        require(actor, "rollout.read")
        dep = self._find(name, version)
        current = self.state()
        report = self._replay(current, candidate_state(current, dep), dep, corpora, recent)
        judge_shadow(report, self._shadow_diff(dep), self.settings.rollout.traffic_budget)
        report.shadow_rules = shadow_rules(dep, current.rule_states)
        if report.shadow_rules:
            report.notes.append(
                f"{len(report.shadow_rules)} rule(s) stay in shadow after this promotion "
                f"({', '.join(report.shadow_rules)}): promoting does not make them act; "
                "'mailsift rollout rule ID --state canary|active' is gated on each one's effect")
        self.store.rollout.set_state(dep.kind, dep.name, dep.version, dep.state,
                                     gate={**report.to_dict(), "at": self.clock()})
        self.store.audit.append(actor.name, "rollout.check", f"{dep.artifact}@{dep.version}",
                                {"passed": report.passed, "reasons": report.reasons})
        return report

    def _replay(self, current: RolloutState, trial_state: RolloutState, dep: Deployment,
                corpora: Iterable[tuple[str, str]] = (), recent: int | None = None, *,
                rule: str | None = None) -> GateReport:
        """The gate's replay: every input with the enforced set and with ``trial_state``."""
        options = ScanOptions(offline=True)
        active = build_pipeline(self.settings, replace(options, rollout=current))
        trial = build_pipeline(self.settings, replace(options, rollout=trial_state))
        known = [("ham", p) for p in self.settings.rollout.known_good]
        return run_gate(self.settings, active, trial, dep, self._inputs(
            [*known, *corpora],
            self.settings.rollout.recent_messages if recent is None else recent), rule=rule)

    def _shadow_diff(self, dep: Deployment) -> dict[str, Any]:
        return self.store.rollout.shadow_diff(f"{dep.artifact}@{dep.version}")

    def shadow_rules(self, dep: Deployment) -> list[str]:
        """Rules of a pack version that stay in shadow when it is promoted."""
        return shadow_rules(dep, self.state().rule_states)

    def check_rule(self, actor: Principal, rule: str, state: str = "active") -> GateReport:
        """The gate for one rule: what changes when it acts (with the rest of the set)."""
        require(actor, "rollout.read")
        target = self._rule_target(rule, state) or ArtifactState.ACTIVE
        current = self.state()
        pack = pack_of_rule(rule, current.deployments)
        if pack is None:
            raise InputError(f"rule {rule} is in no registered pack version (rollout status)")
        report = self._replay(current, rule_trial_state(current, rule, target), pack, rule=rule)
        self.store.audit.append(actor.name, "rollout.check", f"rule:{rule}",
                                {"passed": report.passed, "reasons": report.reasons})
        return report

    # -- state changes --------------------------------------------------------------------------
    def promote(self, actor: Principal, name: str, version: str | None = None, *,
                to: str = "active", scope: CanaryScope | None = None, force: bool = False,
                reason: str = "") -> Deployment:
        require(actor, "rollout.write")
        try:
            target = ArtifactState(to)
        except ValueError:
            raise InputError(f"unknown state {to!r}") from None
        dep = self._find(name, version)
        row = self.store.rollout.row(dep.kind, dep.name, dep.version) or {}
        gate = json.loads(row.get("gate_json") or "null")
        problems = []
        if target not in (ArtifactState.CANARY, ArtifactState.ACTIVE):
            raise InputError(f"promote to canary or active, not {to!r} (withdraw or retire "
                             "take a version out of shadow or canary)")
        if target is ArtifactState.CANARY and (scope is None or scope.empty):
            raise InputError("a canary needs a scope (recipients, domains or percent)")
        if target in (ArtifactState.CANARY, ArtifactState.ACTIVE):
            if gate is None:
                problems.append("the gate has not run (mailsift rollout check)")
            elif not gate.get("passed"):
                problems.append("the gate refused it: " + "; ".join(gate.get("reasons", [])))
            # the shadow diff keeps growing after the gate ran: judge it as it is now
            shadow = shadow_problem(self._shadow_diff(dep), self.settings.rollout.traffic_budget)
            if shadow is not None and shadow not in (gate or {}).get("reasons", []):
                problems.append(shadow)
            shadow_hours = (self.clock() - dep.since) / 3600
            if dep.state is ArtifactState.SHADOW and \
                    shadow_hours < self.settings.rollout.min_shadow_hours:
                problems.append(f"in shadow for {shadow_hours:.1f} h, minimum "
                                f"{self.settings.rollout.min_shadow_hours:g} h")
        if problems and not force:
            raise InputError("promotion refused: " + "; ".join(problems)
                             + " (use --force to override; it is audited)")
        if target is ArtifactState.ACTIVE:
            slot = self.store.rollout.deployments(
                dep.kind, None if dep.kind == "model" else dep.name)
            for other in slot:
                if other.version != dep.version and other.state is ArtifactState.ACTIVE:
                    self.store.rollout.set_state(other.kind, other.name, other.version,
                                                 ArtifactState.RETIRED)
        self.store.rollout.set_state(dep.kind, dep.name, dep.version, target, scope=scope)
        self.store.audit.append(actor.name, "rollout.force" if problems else "rollout.promote",
                                f"{dep.artifact}@{dep.version}",
                                {"to": target.value, "overridden": problems, "reason": reason,
                                 "scope": scope.members() if scope else None})
        if problems:
            self.alerts.raise_alert("forced_promotion", f"{dep.artifact}@{dep.version}",
                                     f"{actor.name} forced promotion to {target.value}: "
                                     + "; ".join(problems), artifact=dep.artifact,
                                     version=dep.version)
        return replace(dep, state=target, scope=scope)

    def rollback(self, actor: Principal, name: str, *, reason: str = "") -> Deployment:
        """Retire the active version and re-activate the previous one (from local copies)."""
        require(actor, "rollout.write")
        kind, bare = self._split(name)
        deps = self.store.rollout.deployments(kind, bare)
        if len({d.kind for d in deps}) > 1:
            raise InputError(f"both rules:{bare} and model:{bare} exist: name one of them")
        if kind == "model" or any(d.kind == "model" for d in deps):
            deps = self.store.rollout.deployments("model")  # one model slot, any name
        current = next((d for d in reversed(deps) if d.state is ArtifactState.ACTIVE), None)
        if current is None:
            raise InputError(f"{name} has no active version to roll back")
        # only a version that once acted is a rollback target: one retired from shadow or
        # canary (``retire``) never enforced anything
        previous = [d for d in deps if d.state is ArtifactState.RETIRED
                    and d.kind == current.kind and d.version != current.version
                    and (self.store.rollout.row(d.kind, d.name, d.version) or {})
                    .get("promoted_at") is not None]
        if not previous:
            raise InputError(f"{current.artifact} has no earlier version to return to")
        back = previous[-1]
        if back.path and not Path(back.path).is_file():
            raise InputError(f"the local copy of {back.version} is missing: {back.path}")
        self.store.rollout.set_state(current.kind, current.name, current.version,
                                     ArtifactState.RETIRED)
        self.store.rollout.set_state(back.kind, back.name, back.version, ArtifactState.ACTIVE)
        self.store.rollout.mark_alerts_rolled_back(current.artifact, current.version)
        self.store.audit.append(actor.name, "rollout.rollback", current.artifact,
                                {"from": current.version, "to": back.version, "reason": reason})
        return replace(back, state=ArtifactState.ACTIVE)

    def set_rule(self, actor: Principal, rule: str, state: str | None, *,
                 reason: str = "", force: bool = False) -> None:
        """Promote or demote one rule inside its pack (``None`` clears the override). A change
        that makes the rule act more (to canary or active, or clearing a shadow override of a
        rule written active) passes the rule's own gate first, or is forced (audited)."""
        require(actor, "rollout.write")
        target = self._rule_target(rule, state)
        current = self.state()
        pack = pack_of_rule(rule, current.deployments)
        written = next((r.state for r in load_pack(pack.path or str(BUILTIN_PACK)).rules
                        if r.id == rule), None) if pack is not None else None
        problems: list[str] = []
        if raises_rule(current.rule_states, rule, written, target):
            report = self.check_rule(actor, rule, (target or written or ArtifactState.ACTIVE)
                                     .value)
            problems = report.reasons
        if problems and not force:
            raise InputError(f"rule {rule} refused: " + "; ".join(problems)
                             + " (use --force to override; it is audited)")
        self.store.rollout.set_rule_state(rule, target, actor=actor.name, reason=reason)
        self.store.audit.append(actor.name, "rollout.force" if problems else "rollout.rule",
                                f"rule:{rule}" if problems else rule,
                                {"state": state, "reason": reason, "overridden": problems})
        if problems:
            self.alerts.raise_alert("forced_promotion", f"rule:{rule}",
                                     f"{actor.name} forced rule {rule} to {state or 'written'}: "
                                     + "; ".join(problems))

    # -- taking staged versions back --------------------------------------------------------
    def withdraw(self, actor: Principal, name: str, version: str | None = None, *,
                 reason: str = "") -> Deployment:
        """A canary goes back to shadow: it stops acting anywhere and keeps being recorded."""
        return self._take_back(actor, name, version, ArtifactState.SHADOW, reason,
                               allowed=(ArtifactState.CANARY,))

    def retire(self, actor: Principal, name: str, version: str | None = None, *,
               reason: str = "") -> Deployment:
        """A shadow or canary version stops running (its local copy stays). The active version
        is left alone: ``rollback`` returns it to its predecessor."""
        return self._take_back(actor, name, version, ArtifactState.RETIRED, reason,
                               allowed=(ArtifactState.SHADOW, ArtifactState.CANARY))

    def _take_back(self, actor: Principal, name: str, version: str | None,
                   target: ArtifactState, reason: str,
                   allowed: tuple[ArtifactState, ...]) -> Deployment:
        require(actor, "rollout.write")
        dep = self._find(name, version)
        if dep.state not in allowed:
            raise InputError(f"{dep.artifact}@{dep.version} is {dep.state.value}; only "
                             f"{' or '.join(s.value for s in allowed)} versions can be "
                             f"{'withdrawn' if target is ArtifactState.SHADOW else 'retired'}"
                             + (" (use rollback for the active one)"
                                if dep.state is ArtifactState.ACTIVE else ""))
        self.store.rollout.set_state(dep.kind, dep.name, dep.version, target)
        if dep.state is ArtifactState.CANARY:
            self.store.rollout.mark_alerts_rolled_back(dep.artifact, dep.version)
        verb = "withdraw" if target is ArtifactState.SHADOW else "retire"
        self.store.audit.append(actor.name, f"rollout.{verb}", f"{dep.artifact}@{dep.version}",
                                {"from": dep.state.value, "to": target.value, "reason": reason})
        return replace(dep, state=target, scope=None)

    def _rule_target(self, rule: str, state: str | None) -> ArtifactState | None:
        """Validate a rule state change: a known state, a rule some registered pack has."""
        try:
            target = ArtifactState(state) if state else None
        except ValueError:
            raise InputError(f"unknown rule state {state!r} (one of "
                             f"{', '.join(s.value for s in ArtifactState)}, or clear)") from None
        if rule not in self.known_rules():
            raise InputError(f"no rule {rule!r} in any registered or configured pack")
        return target

    def known_rules(self) -> frozenset[str]:
        """Rule ids of every configured pack and every registered pack version."""
        paths = [p for _, p in self._configured_packs().values()]
        paths += [d.path for d in self.store.rollout.deployments("rules")
                  if d.path and Path(d.path).is_file()]
        ids = {r for path in paths for r, *_ in self._rules_of(path or str(BUILTIN_PACK))}
        return frozenset(ids)

    def status(self) -> dict[str, Any]:
        deps = []
        for d in self.store.rollout.deployments():
            row = self.store.rollout.row(d.kind, d.name, d.version) or {}
            gate = json.loads(row.get("gate_json") or "null")
            entry = {"artifact": d.artifact, "version": d.version, "state": d.state.value,
                     "since": d.since, "scope": d.scope.members() if d.scope else None,
                     "path": d.path or "(configured)", "note": row.get("note", ""),
                     "gate": {"passed": gate.get("passed"), "reasons": gate.get("reasons")}
                     if gate else None}
            if d.state is ArtifactState.SHADOW:
                entry["shadow"] = self.store.rollout.shadow_diff(f"{d.artifact}@{d.version}")
            deps.append(entry)
        return {"version": self.state().version, "deployments": deps,
                "rules": self.store.rollout.rule_states(),
                "incidents": [i.to_dict() for i in self.store.rollout.incidents("open")],
                "alerts": [a.to_dict() for a in self.store.rollout.alerts(20)]}

    def _rules_of(self, path: str) -> frozenset[tuple[str, str, str]]:
        cached = self._pack_rules.get(path)
        if cached is None:
            cached = frozenset((r.id, r.version, r.state.value) for r in load_pack(path).rules)
            self._pack_rules[path] = cached
        return cached
