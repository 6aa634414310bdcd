"""Policy changes through the gate: ``[policy]`` thresholds, actions and ``[ml] bands``.

A configuration change can make findings act as surely as a new rule pack, so it passes the same
gate (``RolloutService.check_config``: the running configuration's pipeline and the
candidate's replay the gate's inputs) or is forced (``accept_config``, audited as
``rollout.force`` with an alert). The record is the audit log, keyed by the *config version*
``POLICY+b:BANDS`` (``POLICY`` is the ``policy`` version verdicts carry, ``BANDS`` a hash of
``[ml] bands``): a version is accepted once a check of it passed (``rollout.check`` with
``passed``), it was forced (``rollout.force``) or it was the first one a gateway ran
(``policy.baseline``). At every start (``note_policy``) a version not accepted is logged,
audited as ``policy.unchecked`` and alerted; the gateway still starts.
"""

from __future__ import annotations

import hashlib
import json
import logging

from mailsift.config.schema import Settings
from mailsift.pipeline import policy_hash
from mailsift.services.alerts import Alerter
from mailsift.store.store import Store

__all__ = ["BASELINE", "UNCHECKED", "accepted", "config_version", "note_policy",
           "policy_target"]

log = logging.getLogger("mailsift.rollout")

BASELINE = "policy.baseline"
UNCHECKED = "policy.unchecked"
_ACTOR = "mailsift"
_PREFIX = "policy@"


def config_version(settings: Settings) -> str:
    """``POLICY+b:BANDS``: the verdicts' policy version and a hash of ``[ml] bands``."""
    bands = json.dumps([b.model_dump(mode="json") for b in settings.ml.bands], sort_keys=True)
    return f"{policy_hash(settings.policy)}+b:{hashlib.sha256(bands.encode()).hexdigest()[:8]}"


def policy_target(version: str) -> str:
    return f"{_PREFIX}{version}"


def accepted(store: Store, version: str) -> bool:
    """A passing check, a forced acceptance or the baseline recorded for ``version``."""
    target = policy_target(version)
    for action in (BASELINE, "rollout.force"):
        if store.audit.entries(action=action, target=target, limit=1):
            return True
    return any(e.detail.get("passed") for e in
               store.audit.entries(action="rollout.check", target=target, limit=1000))


def _started_before(store: Store) -> bool:
    """Has a gateway of this feature started on this store (a baseline or a warning)?"""
    return any(store.audit.entries(action=action, limit=1) for action in (BASELINE, UNCHECKED))


def note_policy(store: Store, settings: Settings, alerts: Alerter) -> str:
    """At gateway start: ``ok``, ``baseline`` (first start: recorded, no alert) or
    ``unchecked`` (warned, audited, alerted; mail still flows)."""
    version = config_version(settings)
    if accepted(store, version):
        return "ok"
    target = policy_target(version)
    if not _started_before(store):
        store.audit.append(_ACTOR, BASELINE, target, {"version": version})
        return "baseline"
    message = (f"the running policy {version} ([policy] thresholds/actions, [ml] bands) has "
               "not passed the gate: run 'mailsift rollout check-config' on it, or "
               "'mailsift rollout accept-config --force --reason'")
    log.warning("%s", message)
    store.audit.append(_ACTOR, UNCHECKED, target, {"version": version})
    alerts.raise_alert("policy_unchecked", target, message)
    return "unchecked"
