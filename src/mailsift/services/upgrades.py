"""The built-in rule pack and model across upgrades of mailsift.

A release ships a rule pack and a model. A new release's versions of them are detection changes
like any other, so on a site that already runs mailsift they do not act on upgrade: they are
staged in shadow beside the versions the site enforces today (which keep running from their
local copies), and act once promoted through the gate (``mailsift rollout check`` and
``promote``). On a new site, where nothing is registered yet, the shipped versions are the
baseline and act from the start: nothing changes for mail that never went through mailsift.

Every built-in version is copied into ``[rollout] artifacts_dir`` when it is first seen, so the
version a site enforces survives the package on disk being replaced, and rollback can return
to it. When the enforced version cannot run in the new release (no local copy, kept by releases
before this one, or a model of an older feature version) the new one is activated instead and
an alert says why: the gateway must keep scanning.

``[rollout] builtin_upgrades = "active"`` restores "upgrade means enforce" for sites that want
it; the previous built-in version stays the rollback target and the breaker treats the new one
as young (it can roll it back).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mailsift import __version__
from mailsift.config.schema import Settings
from mailsift.core.errors import StoreError
from mailsift.core.findings import ArtifactState
from mailsift.core.rollout import Deployment
from mailsift.services.alerts import Alerter
from mailsift.store.store import Store

__all__ = ["BUILTIN_ACTOR", "Adoption", "Builtin", "adopt_builtins", "is_baseline",
           "shipped_builtins"]

log = logging.getLogger("mailsift.rollout")

BUILTIN_ACTOR = "mailsift"  # who stages built-in versions in the registry and the audit log


@dataclass(frozen=True, slots=True)
class Builtin:
    """One artifact as this release ships it."""

    kind: str  # "rules" | "model"
    name: str
    version: str
    source: Path  # the pack's .toml, or the model's .json (its .npz beside it)

    @property
    def artifact(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class Adoption:
    """What adopting one built-in did: ``baseline`` (first seen, acts), ``staged`` (shadow,
    beside the enforced version), ``activated`` (acts, the previous one retired), ``copied``
    (already registered; its local copy was added) or ``known`` (nothing to do)."""

    artifact: str
    version: str
    outcome: str
    detail: str = ""


def shipped_builtins(settings: Settings) -> list[Builtin]:
    """The built-in artifacts this release runs under ``settings``: the built-in pack (unless
    ``rules.builtin`` is off) and the shipped model (unless ``ml.model_path`` names another)."""
    from mailsift.ml.model import load_model, shipped_model_path
    from mailsift.rules import BUILTIN_PACK, load_pack

    out = []
    if settings.rules.builtin:
        pack = load_pack(BUILTIN_PACK)
        out.append(Builtin("rules", pack.name, pack.version, Path(BUILTIN_PACK)))
    if settings.ml.enabled and "ml" in settings.detectors.enabled and not settings.ml.model_path:
        model = load_model(shipped_model_path())
        out.append(Builtin("model", model.name, model.version, shipped_model_path()))
    return out


def _slot(store: Store, kind: str, name: str) -> list[Deployment]:
    # A pack's versions share its name; there is one model slot whatever the models' names.
    return store.rollout.deployments(kind, None if kind == "model" else name)


def is_baseline(store: Store, dep: Deployment) -> bool:
    """Is ``dep`` the built-in version a site ran from the start (adopted with nothing before
    it in its slot)? That is not a change, so the breaker never treats it as young."""
    row = store.rollout.row(dep.kind, dep.name, dep.version) or {}
    if row.get("staged_by") != BUILTIN_ACTOR:
        return False
    earlier = (store.rollout.row(d.kind, d.name, d.version) or {}
               for d in _slot(store, dep.kind, dep.name) if d.version != dep.version)
    return not any(r.get("id", 0) < row["id"] for r in earlier)


def _copy_file(src: Path, target: Path) -> None:
    # into a temporary name, then renamed: nodes sharing the folder never read half a copy
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, target)


def _copy(artifacts: Path, b: Builtin) -> str:
    suffix = ".toml" if b.kind == "rules" else ".json"
    target = artifacts / b.kind / b.name / f"{b.version}{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if b.kind == "model":  # arrays first: a .json beside no .npz would be a broken copy
        _copy_file(b.source.with_suffix(".npz"), target.with_suffix(".npz"))
    _copy_file(b.source, target)
    return str(target)


def _unrunnable(dep: Deployment) -> str | None:
    """Why ``dep`` cannot run in this release (``None``: it can)."""
    if not dep.path:
        return "the release that enforced it kept no local copy of it"
    if not Path(dep.path).is_file():
        return f"its local copy is missing ({dep.path})"
    try:
        if dep.kind == "model":
            from mailsift.ml.model import load_model

            load_model(dep.path)
        else:
            from mailsift.rules import load_pack

            load_pack(dep.path)
    except Exception as exc:  # any reason it cannot load is a reason it cannot enforce
        return f"it does not load in mailsift {__version__}: {exc}"
    return None


def _adopt(store: Store, settings: Settings, artifacts: Path, alerts: Alerter,
           b: Builtin) -> Adoption:
    slot = _slot(store, b.kind, b.name)
    mine = next((d for d in slot if d.name == b.name and d.version == b.version), None)
    if mine is not None:
        if mine.path:
            return Adoption(b.artifact, b.version, "known")
        store.rollout.set_path(b.kind, b.name, b.version, _copy(artifacts, b))
        return Adoption(b.artifact, b.version, "copied", "local copy added")
    enforced = next((d for d in reversed(slot) if d.state is ArtifactState.ACTIVE), None)
    path = _copy(artifacts, b)
    if enforced is None:
        # A new site (or one whose every version was retired: then this release's version runs,
        # as it would unregistered). Not a change to any mail this site has scanned.
        store.rollout.stage(Deployment(b.kind, b.name, b.version, ArtifactState.ACTIVE, path),
                            actor=BUILTIN_ACTOR, note=f"built in (mailsift {__version__})")
        return Adoption(b.artifact, b.version, "baseline")
    problem = _unrunnable(enforced)
    site_owned = (store.rollout.row(enforced.kind, enforced.name, enforced.version) or {}) \
        .get("staged_by") != BUILTIN_ACTOR
    if problem is None and (settings.rollout.builtin_upgrades == "shadow" or site_owned):
        store.rollout.stage(Deployment(b.kind, b.name, b.version, ArtifactState.SHADOW, path),
                            actor=BUILTIN_ACTOR,
                            note=f"shipped with mailsift {__version__}; staged on upgrade")
        detail = (f"mailsift {__version__} ships {b.artifact}@{b.version}; it runs in shadow "
                  f"beside {enforced.artifact}@{enforced.version}, which this site enforces. "
                  f"Review its shadow verdicts, run `mailsift rollout check {b.artifact}` and "
                  "promote it when it passes")
        alerts.raise_alert("builtin_staged", b.artifact, detail, artifact=b.artifact,
                           version=b.version)
        return Adoption(b.artifact, b.version, "staged", detail)
    why = problem or 'configured: [rollout] builtin_upgrades = "active"'
    store.rollout.stage(Deployment(b.kind, b.name, b.version, ArtifactState.SHADOW, path),
                        actor=BUILTIN_ACTOR,
                        note=f"shipped with mailsift {__version__}; activated on upgrade: {why}")
    store.rollout.set_state(enforced.kind, enforced.name, enforced.version,
                            ArtifactState.RETIRED)
    store.rollout.set_state(b.kind, b.name, b.version, ArtifactState.ACTIVE)
    detail = (f"mailsift {__version__} enforces {b.artifact}@{b.version} instead of "
              f"{enforced.artifact}@{enforced.version}: {why}")
    alerts.raise_alert("builtin_activated", b.artifact, detail, artifact=b.artifact,
                       version=b.version)
    return Adoption(b.artifact, b.version, "activated", detail)


def adopt_builtins(store: Store, settings: Settings, artifacts: Path, alerts: Alerter,
                   builtins: Sequence[Builtin] | None = None) -> list[Adoption]:
    """Register this release's built-in versions (see the module's text). Idempotent: run at
    every gateway start, it does something only the first time a version is seen."""
    done = []
    for b in shipped_builtins(settings) if builtins is None else builtins:
        try:
            adoption = _adopt(store, settings, artifacts, alerts, b)
        except StoreError:
            # Several gateway nodes start together: another one registered this version first
            # (it also raised the alert). What it registered is what every node runs.
            adoption = Adoption(b.artifact, b.version, "known", "registered by another node")
        if adoption.outcome != "known":
            store.audit.append(BUILTIN_ACTOR, f"rollout.builtin_{adoption.outcome}",
                               f"{adoption.artifact}@{adoption.version}",
                               {"detail": adoption.detail, "release": __version__})
            log.info("built-in %s@%s: %s %s", adoption.artifact, adoption.version,
                     adoption.outcome, adoption.detail)
        done.append(adoption)
    return done
