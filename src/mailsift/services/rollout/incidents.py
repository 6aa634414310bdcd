"""Breaker trips and incidents, the part of the rollout use cases that runs after something
went wrong: who is young, what a trip does (demote or roll back, alert, incident with a retention
hold), incident allows and the exactly-once incident release. A trip acts through the same
promotion operations an administrator uses (rule demotion, rollback), so it is audited alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mailsift.core.errors import InputError, StoreError
from mailsift.core.findings import ArtifactState
from mailsift.core.lists import ListEntry
from mailsift.core.rollout import Deployment
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.rollout.breaker import Trip
from mailsift.services.access import Principal, require
from mailsift.services.rollout.promotion import Promotion
from mailsift.services.rollout.registry import Registry, RegistryPart
from mailsift.services.upgrades import is_baseline
from mailsift.store.query import TraceQuery

__all__ = ["Incidents"]

log = logging.getLogger("mailsift.rollout")


class Incidents(RegistryPart):
    def __init__(self, registry: Registry, promotion: Promotion) -> None:
        super().__init__(registry)
        self.promotion = promotion

    def young(self, subject: str) -> bool:
        """Did the subject enter enforcement less than ``young_days`` ago: an artifact version
        promoted since (a site's baseline and configured versions never are), or a rule made
        active since, or new or changed in a pack version promoted since?"""
        limit = self.settings.rollout.young_days * 86400
        now = self.clock()
        if subject.startswith("artifact:"):
            artifact, _, version = subject[9:].rpartition("@")
            kind, _, name = artifact.partition(":")
            dep = next((d for d in self.store.rollout.deployments(kind, name)
                        if d.version == version), None)
            return dep is not None and bool(dep.path) and now - dep.since < limit \
                and not is_baseline(self.store, dep)
        if subject.startswith("rule:"):
            rule = subject[5:]
            row = self.store.rollout.rule_states().get(rule)
            if row is not None and row["state"] in ("active", "canary") \
                    and now - row["since"] < limit:
                return True
            packs = self.store.rollout.deployments("rules")
            for dep in packs:
                if dep.path and dep.state in (ArtifactState.ACTIVE, ArtifactState.CANARY) \
                        and now - dep.since < limit and not is_baseline(self.store, dep) \
                        and rule in self._changed_rules(dep, packs):
                    return True
        return False

    def _changed_rules(self, dep: Deployment,
                       packs: Sequence[Deployment]) -> frozenset[str]:
        """The rules of ``dep`` that entered enforcement with it: new, or changed in logic,
        weight, category or state since every earlier version of its pack with a local copy (a
        pack upgrade does not make its unchanged, established rules young)."""
        mine = self.registry.rules_of(dep.path)
        order = {d.version: (self.store.rollout.row(d.kind, d.name, d.version) or {})
                 .get("id", 0) for d in packs if d.name == dep.name}
        before: set[tuple[str, str, str]] = set()
        for other in packs:
            if other.name == dep.name and order[other.version] < order[dep.version] \
                    and other.path and Path(other.path).is_file():
                before |= self.registry.rules_of(other.path)
        return frozenset(rule for rule, *_ in mine - before)

    @staticmethod
    def _query(subject: str, since: float, action: str | None = None) -> TraceQuery:
        if subject.startswith("rule:"):
            return TraceQuery(finding=subject[5:], since=since, action=action)
        if subject.startswith("artifact:"):
            artifact, _, version = subject[9:].rpartition("@")
            return TraceQuery(artifact=artifact, version=version, since=since, action=action)
        return TraceQuery(category=subject[9:], since=since, action=action)

    def _affected(self, subject: str, since: float) -> list[str]:
        """Messages the subject helped quarantine or reject since ``since``."""
        query = Incidents._query(subject, since)
        ids: list[str] = []
        cursor = None
        while True:
            page = self.store.trace.search(query, cursor=cursor, limit=500)
            ids.extend(i.message for i in page.items if i.action in ("quarantine", "reject"))
            cursor = page.next_cursor
            if not cursor:
                break
        return list(dict.fromkeys(ids))

    def handle_trip(self, trip: Trip, *, window_seconds: float) -> str | None:
        """Act on a trip. A young subject (promoted within ``young_days``) is demoted or rolled
        back, alerted and gets an incident listing what it quarantined. An established rule or
        category is only alerted: a spike there is as likely a real campaign as a misfire, and
        demoting an old phishing rule in the middle of a campaign would let the campaign in."""
        actor = Principal("circuit-breaker", "admin")
        subject = trip.subject
        artifact = version = ""
        if subject.startswith("artifact:"):
            artifact, _, version = subject[9:].rpartition("@")
        if not self.young(subject):
            self.alerts.raise_alert(f"breaker_{trip.kind}", subject,
                                     f"{trip.reason}; established, so not demoted: review",
                                     artifact=artifact, version=version)
            log.warning("circuit breaker (alert only): %s: %s", subject, trip.reason)
            return None
        action = "alert only"
        if subject.startswith("rule:"):
            self.promotion.set_rule(actor, subject[5:], ArtifactState.SHADOW.value,
                                    reason=trip.reason)
            action = f"rule {subject[5:]} demoted to shadow"
        elif subject.startswith("artifact:"):
            kind, _, name = artifact.partition(":")
            try:
                back = self.promotion.rollback(actor, artifact, reason=trip.reason)
                action = f"{artifact} rolled back to {back.version}"
            except InputError:
                self.store.rollout.set_state(kind, name, version, ArtifactState.SHADOW)
                action = f"{artifact}@{version} demoted to shadow"
        existing = self.store.rollout.open_incident_for(subject)
        since = self.clock() - max(window_seconds, 24 * 3600)
        affected = self._affected(subject, since)
        if existing is not None:
            self.store.rollout.add_incident_messages(existing.id, affected)
            incident = existing.id
        else:
            # The hold keeps the originals through retention purges until the incident is done.
            hold = self.store.retention.place_hold(
                f"incident {subject}", Incidents._query(subject, since, "quarantine"),
                actor=actor.name, reason=trip.reason) if affected else None
            incident = self.store.rollout.open_incident(
                subject, artifact=artifact, version=version, reason=trip.reason,
                action_taken=action, messages=affected,
                hold_id=hold.id if hold is not None else "")
        self.alerts.raise_alert(f"breaker_{trip.kind}", subject,
                                 f"{trip.reason}; {action}; incident {incident} lists "
                                 f"{len(affected)} message(s)", artifact=artifact,
                                 version=version, incident=incident)
        log.warning("circuit breaker: %s: %s; %s; incident %s (%d messages)", subject,
                    trip.reason, action, incident, len(affected))
        return incident

    def refresh_incident(self, incident: str) -> int:
        """Add messages the subject quarantined after the incident opened: until every node has
        restarted its scan workers on the demotion, a few more can be caught. Returns how many."""
        info = self.store.rollout.incident(incident)
        if info is None or info.subject.startswith("category:"):
            return 0
        window = max(24 * 3600.0, self.settings.rollout.window_buckets
                     * self.settings.rollout.bucket_seconds)
        return self.store.rollout.add_incident_messages(
            incident, self._affected(info.subject, info.opened_at - window))

    def incident_allow(self, actor: Principal, incident: str, kind: str, value: str, *,
                       hours: float, note: str = "") -> ListEntry:
        """A time-boxed, audited allow that beats even high-confidence verdicts (step 4)."""
        from mailsift.services.access import NotFound
        from mailsift.services.lists import normalise_value

        require(actor, "rollout.write")
        if not 0 < hours <= 24 * 7:
            raise InputError("an incident allow must expire within a week")
        if not value.strip():
            raise InputError("an incident allow needs a value")
        value = normalise_value(kind, value)  # an unknown kind or a bad value: InputError
        if self.store.rollout.incident(incident) is None:
            raise NotFound(f"no incident {incident}")
        entry = ListEntry(kind=kind, value=value, action="allow", scope=f"incident:{incident}",
                          expires_at=self.clock() + hours * 3600, note=note or incident,
                          author=actor.name)
        added = self.store.lists.add(entry)
        self.store.audit.append(actor.name, "incident.allow", incident,
                                {"kind": kind, "value": value, "hours": hours})
        return added

    async def release_incident(self, actor: Principal, incident: str, *,
                               offline: bool | None = None, reason: str = "") -> dict[str, Any]:
        """Re-scan every message of the incident with the current set and release those that
        are no longer quarantined — exactly once per recipient (the release ledger), recorded
        as released by the incident. Safe to run again: done recipients are skipped."""
        from mailsift.services.access import NotFound
        from mailsift.services.release import ReleaseService

        require(actor, "quarantine.release")
        info = self.store.rollout.incident(incident)
        if info is None:
            raise NotFound(f"no incident {incident}")
        started = self.clock()
        self.refresh_incident(incident)
        pipeline = build_pipeline(self.settings, ScanOptions(offline=offline,
                                                             rollout=self.registry.state()))
        lists = self.store.lists.snapshot()
        service = ReleaseService(self.store, rescan=lambda raw, env: pipeline.scan(
            raw, env, lists=lists))
        outcomes: dict[str, str] = {}
        # messages: released / kept / already / failed / skipped; "sent": copies handed over
        counts = {"released": 0, "kept": 0, "already": 0, "failed": 0, "skipped": 0,
                  "sent": 0}
        for message, previous in self.store.rollout.incident_messages(incident):
            if previous == "released":
                counts["already"] += 1
                continue
            try:
                report = await service.release(actor, message, rescan=True,
                                               reason=f"incident {incident}")
            except (NotFound, InputError) as exc:
                outcomes[message] = f"skipped: {exc}"[:200]
                counts["skipped"] += 1
                continue
            except StoreError as exc:  # carry on: this one is retried by the next run
                outcomes[message] = f"failed: {exc}"[:200]
                counts["failed"] += 1
                continue
            counts["sent"] += len(report.sent)
            if report.sent or (report.already and not report.kept and not report.failed):
                outcomes[message] = "released"
                counts["released" if report.sent else "already"] += 1
            elif report.kept:
                outcomes[message] = "kept: " + "; ".join(report.kept.values())[:180]
                counts["kept"] += 1
            else:
                outcomes[message] = "failed: " + "; ".join(
                    f"{k}: {v}" for k, v in report.failed.items())[:180]
                counts["failed"] += 1
        self.store.rollout.set_incident_outcome(incident, outcomes)
        released = sum(1 for _, o in self.store.rollout.incident_messages(incident)
                       if o == "released")
        done = counts["failed"] == 0
        self.store.rollout.update_incident(
            incident, released=released, state="released" if done else "open",
            closed_at=self.clock() if done else None)
        if done and info.hold_id:
            self.store.retention.release_hold(info.hold_id)
        summary = {"incident": incident, **counts, "seconds": round(self.clock() - started, 3)}
        self.store.audit.append(actor.name, "incident.release", incident,
                                {**summary, "reason": reason} if reason else summary)
        return summary
