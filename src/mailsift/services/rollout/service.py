"""``RolloutService``: the rollout use cases behind one object, as the CLI, the REST API, the web
console and the gateway call them. It builds the parts and names their operations; each part is
its own module:

* ``registry`` - what is registered and in which state; staging; status;
* ``gate`` - the replay of a staged version or a single rule against the enforced set;
* ``promotion`` - promote, roll back, withdraw, retire, rule states;
* ``incidents`` - breaker trips, incidents, incident allows and incident release;
* ``policy`` - ``[policy]`` and ``[ml] bands`` changes through the gate.

Every change is audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mailsift.config.schema import Settings
from mailsift.services.alerts import Alerter
from mailsift.services.rollout.gate import Gate
from mailsift.services.rollout.incidents import Incidents
from mailsift.services.rollout.policy import PolicyChanges
from mailsift.services.rollout.promotion import Promotion
from mailsift.services.rollout.registry import Registry
from mailsift.store.store import Store

__all__ = ["RolloutService"]


class RolloutService:
    def __init__(self, store: Store, settings: Settings, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.alerts = Alerter(store, settings)
        self.registry = Registry(store, settings, self.alerts, clock)
        self.gate = Gate(self.registry)
        self.promotion = Promotion(self.registry, self.gate)
        self.incidents = Incidents(self.registry, self.promotion)
        self.policy = PolicyChanges(self.registry, self.gate)
        # The operations callers use, bound once (their signatures are the parts').
        self.state = self.registry.state
        self.status = self.registry.status
        self.stage = self.registry.stage
        self.adopt_builtins = self.registry.adopt_builtins
        self.known_rules = self.registry.known_rules
        self.shadow_rules = self.registry.shadow_rules
        self.check = self.gate.check
        self.check_rule = self.gate.check_rule
        self.promote = self.promotion.promote
        self.rollback = self.promotion.rollback
        self.rollback_plan = self.promotion.rollback_plan
        self.withdraw = self.promotion.withdraw
        self.retire = self.promotion.retire
        self.set_rule = self.promotion.set_rule
        self.young = self.incidents.young
        self.handle_trip = self.incidents.handle_trip
        self.refresh_incident = self.incidents.refresh_incident
        self.incident_allow = self.incidents.incident_allow
        self.release_incident = self.incidents.release_incident
        self.config_version = self.policy.config_version
        self.check_config = self.policy.check_config
        self.accept_config = self.policy.accept_config
        self.note_policy = self.policy.note_policy
