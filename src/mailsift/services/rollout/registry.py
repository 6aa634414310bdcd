"""The rollout registry as the use cases see it: what is registered and in which state, how a
version gets in (staged in shadow, validated and copied locally), name lookup, status.

Rollback never depends on the update path that broke: each staged version is copied into
``[rollout] artifacts_dir`` when it is staged, and the built-in pack ships with mailsift, so
the previous good version is always on local disk.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mailsift.config.schema import Settings
from mailsift.core.errors import InputError
from mailsift.core.findings import ArtifactState
from mailsift.core.rollout import Deployment, RolloutState
from mailsift.rules import BUILTIN_PACK, load_pack
from mailsift.services.access import Principal, require
from mailsift.services.alerts import Alerter
from mailsift.services.rollout.flow import FlowVersions, is_flow_file
from mailsift.services.rollout.rule_states import shadow_rules
from mailsift.services.upgrades import Adoption, Builtin, adopt_builtins
from mailsift.store.store import Store

__all__ = ["Registry"]


class Registry:
    def __init__(self, store: Store, settings: Settings, alerts: Alerter,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.settings = settings
        self.alerts = alerts
        self.clock = clock
        base = settings.rollout.artifacts_dir or str(Path(settings.store.data_dir) / "artifacts")
        self.artifacts = Path(base)
        self._pack_rules: dict[str, frozenset[tuple[str, str, str]]] = {}
        self.flow = FlowVersions(self)

    def state(self) -> RolloutState:
        return self.store.rollout.state()

    def configured_packs(self) -> dict[str, tuple[str, str]]:
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
    def split(name: str) -> tuple[str | None, str]:
        """``rules:site`` / ``model:default`` / ``mailflow:rules`` / a bare name (kind looked
        up)."""
        kind, sep, bare = name.partition(":")
        return (kind, bare) if sep and kind in ("rules", "model", "mailflow") else (None, name)

    def find(self, name: str, version: str | None) -> Deployment:
        """The one staged version a name (and version prefix) means; without a version the
        newest one not yet active, else the active one."""
        kind, bare = self.split(name)
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
        (``.toml`` file or folder), a model (its ``.json`` with the ``.npz`` beside it) or a
        flow-rule file (``[[mailflow.rules]]``, see ``services.rollout.flow``)."""
        require(actor, "rollout.write")
        if is_flow_file(Path(path)):
            return self.flow.stage_path(actor, path, note=note)
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
        configured = self.configured_packs()
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

    def shadow_diff(self, dep: Deployment) -> dict[str, Any]:
        return self.store.rollout.shadow_diff(f"{dep.artifact}@{dep.version}")

    def shadow_rules(self, dep: Deployment) -> list[str]:
        """Rules of a pack version that stay in shadow when it is promoted."""
        return shadow_rules(dep, self.state().rule_states)

    def rule_target(self, rule: str, state: str | None) -> ArtifactState | None:
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
        paths = [p for _, p in self.configured_packs().values()]
        paths += [d.path for d in self.store.rollout.deployments("rules")
                  if d.path and Path(d.path).is_file()]
        ids = {r for path in paths for r, *_ in self.rules_of(path or str(BUILTIN_PACK))}
        return frozenset(ids)

    def rules_of(self, path: str) -> frozenset[tuple[str, str, str]]:
        """(id, version, written state) of every rule of the pack at ``path`` (cached)."""
        cached = self._pack_rules.get(path)
        if cached is None:
            cached = frozenset((r.id, r.version, r.state.value) for r in load_pack(path).rules)
            self._pack_rules[path] = cached
        return cached

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
