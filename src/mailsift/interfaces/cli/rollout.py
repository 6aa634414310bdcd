"""``mailsift rollout`` and ``mailsift incident``: safe rollout of detection changes.

    mailsift rollout status
    mailsift rollout stage PACK.toml|MODEL.json [--note TEXT]  (new version, in shadow)
    mailsift rollout check CANDIDATE [--corpus LABEL:PATH ...] (the gate; exit 1 when refused)
    mailsift rollout check rule:RULE_ID                         (the gate for one rule)
    mailsift rollout check-config CANDIDATE.toml [--corpus LABEL:PATH ...]
                     (the gate for a [policy] / [ml] bands change; exit 1 when refused)
    mailsift rollout accept-config CANDIDATE.toml --force --reason TEXT  (audited, alerts)
    mailsift rollout promote NAME [--version V] --to canary|active
                     [--recipient A ...] [--domain D ...] [--percent N] [--force --reason TEXT]
    mailsift rollout withdraw NAME [--version V] --reason TEXT  (canary -> shadow)
    mailsift rollout retire NAME [--version V] --reason TEXT    (shadow/canary -> retired)
    mailsift rollout rollback NAME --reason TEXT
    mailsift rollout rule RULE_ID --state shadow|canary|active|retired|clear [--force]
    mailsift incident list | show ID | release ID --reason TEXT | allow ID --domain D --hours H

CANDIDATE and NAME are a staged pack or model name (``rules:NAME``/``model:NAME`` where both
exist), ``mailflow:rules`` for flow rules, or, for ``check``, a pack, model or flow-rule file
(staged first if new). Rollback returns to the
previous version from its local copy; it never needs the update that broke.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from mailsift.config import load_settings
from mailsift.core.errors import InputError
from mailsift.core.rollout import CanaryScope
from mailsift.interfaces.cli.args import command_group, store_action
from mailsift.interfaces.cli.storecli import emit, fmt_time, principal
from mailsift.mailflow.loader import load_rules
from mailsift.mailflow.versions import FLOW_KIND, FLOW_NAME, flow_version
from mailsift.services.access import require_reason
from mailsift.services.rollout import RolloutService
from mailsift.services.rollout.flow import is_flow_file
from mailsift.store.store import Store

__all__ = ["register"]

_STATES = ("shadow", "canary", "active", "retired", "clear")


def _service(args: argparse.Namespace) -> RolloutService:
    settings = load_settings(getattr(args, "config", None)).settings
    return RolloutService(Store.open(settings.store), settings)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rs = command_group(sub, "rollout", __doc__, dest="rcmd",
                       help="stage, check, promote and roll back detection changes")
    store_action(rs, "status", _status,
                 help="deployed versions, states, shadow diffs, incidents")
    c = store_action(rs, "stage", _stage,
                     help="register a rule pack file as a new version in shadow")
    c.add_argument("path")
    c.add_argument("--note", default="")
    c = store_action(rs, "check", _check, help="the promotion gate: replay against known-good mail")
    c.add_argument("candidate", help="staged pack name, or a pack file")
    c.add_argument("--version")
    c.add_argument("--corpus", action="append", default=[], metavar="LABEL:PATH",
                   help="extra labelled corpus (ham/spam/phish) for per-rule statistics")
    c.add_argument("--recent", type=int, help="stored messages to replay (default: config)")
    c = store_action(rs, "check-config", _check_config,
                     help="the gate for a [policy] / [ml] bands change")
    c.add_argument("candidate", help="the candidate configuration file (TOML)")
    c.add_argument("--corpus", action="append", default=[], metavar="LABEL:PATH")
    c.add_argument("--recent", type=int, help="stored messages to replay (default: config)")
    c = store_action(rs, "accept-config", _accept_config,
                     help="accept a policy the gate refused or never ran "
                                            "on (audited as rollout.force, alerts)")
    c.add_argument("candidate", help="the configuration file (TOML) whose policy to accept")
    c.add_argument("--force", action="store_true", help="required unless the gate passed it")
    c.add_argument("--reason", default="", help="why (required with --force)")
    c = store_action(rs, "promote", _promote, help="move a version to canary or active")
    c.add_argument("name")
    c.add_argument("--version")
    c.add_argument("--to", choices=("canary", "active"), required=True)
    c.add_argument("--recipient", action="append", default=[])
    c.add_argument("--domain", action="append", default=[])
    c.add_argument("--percent", type=float, default=0.0)
    c.add_argument("--force", action="store_true", help="override a refusing gate (audited)")
    c.add_argument("--reason", default="")
    for verb, text in (("withdraw", "take a canary back to shadow (it stops acting)"),
                       ("retire", "stop running a shadow or canary version")):
        c = store_action(rs, verb, _take_back, help=text)
        c.add_argument("name")
        c.add_argument("--version")
        c.add_argument("--reason", required=True, help="why (required, audited)")
        c.set_defaults(verb=verb)
    c = store_action(rs, "rollback", _rollback, help="return to the previous version")
    c.add_argument("name")
    c.add_argument("--reason", required=True, help="why (required, audited)")
    c = store_action(rs, "rule", _rule, help="set the rollout state of one rule")
    c.add_argument("rule")
    c.add_argument("--state", choices=_STATES, required=True)
    c.add_argument("--reason", default="")
    c.add_argument("--force", action="store_true",
                   help="override the rule's refusing gate (audited)")

    ins = command_group(sub, "incident", None, dest="icmd",
                        help="incidents opened by the circuit breaker")
    c = store_action(ins, "list", _incidents)
    c.add_argument("--state", choices=("open", "released"))
    c = store_action(ins, "show", _incident_show)
    c.add_argument("id")
    c = store_action(ins, "release", _incident_release,
                     help="re-scan the incident's messages, release the clean ones")
    c.add_argument("id")
    c.add_argument("--offline", action="store_true", default=None)
    c.add_argument("--reason", required=True, help="why (required, audited)")
    c = store_action(ins, "allow", _incident_allow,
                     help="time-boxed allow that beats high-confidence verdicts")
    c.add_argument("id")
    c.add_argument("--domain")
    c.add_argument("--sender")
    c.add_argument("--url")
    c.add_argument("--hours", type=float, default=24.0)
    c.add_argument("--note", default="")


def _status(args: argparse.Namespace) -> int:
    data = _service(args).status()
    lines = [f"rollout state {data['version']}"]
    for d in data["deployments"]:
        gate = d["gate"]
        verdict = "-" if gate is None else ("passed" if gate["passed"] else "REFUSED")
        lines.append(f"  {d['artifact']:<24} {d['version']:<14} {d['state']:<8} "
                     f"since {fmt_time(d['since'])}  gate {verdict}"
                     + (f"  scope {','.join(d['scope'])}" if d["scope"] else ""))
        if "shadow" in d:
            sh = d["shadow"]
            lines.append(f"      shadow: {sh['changed']} of {sh['total']} verdicts would change")
    for rule, row in data["rules"].items():
        lines.append(f"  rule {rule:<30} {row['state']:<8} {row['reason']}")
    for inc in data["incidents"]:
        lines.append(f"  OPEN INCIDENT {inc['id']}: {inc['subject']} ({inc['messages']} "
                     f"messages) - {inc['action_taken']}")
    emit(args, data, "\n".join(lines))
    return 0


def _stage(args: argparse.Namespace) -> int:
    dep = _service(args).stage(principal(args), args.path, note=args.note)
    emit(args, {"artifact": dep.artifact, "version": dep.version, "state": dep.state.value},
         f"staged {dep.artifact}@{dep.version} in shadow")
    return 0


def _check(args: argparse.Namespace) -> int:
    service = _service(args)
    name, version = args.candidate, args.version
    if name.startswith("rule:"):
        report = service.check_rule(principal(args), name[5:])
        emit(args, report.to_dict(), _render_report(report.to_dict()))
        return 0 if report.passed else 1
    if Path(args.candidate).exists():
        if is_flow_file(Path(args.candidate)):
            rules = load_rules(args.candidate)
            kind, bare, version = FLOW_KIND, FLOW_NAME, flow_version(rules)
        elif args.candidate.endswith(".json"):
            from mailsift.ml.model import load_model

            model = load_model(args.candidate)
            kind, bare, version = "model", model.name, model.version
        else:
            from mailsift.rules import load_pack

            pack = load_pack(args.candidate)
            kind, bare, version = "rules", pack.name, pack.version
        name = f"{kind}:{bare}"
        if service.store.rollout.row(kind, bare, version) is None:
            service.stage(principal(args), args.candidate, note="staged by rollout check")
    report = service.check(principal(args), name, version, corpora=_corpora(args.corpus),
                           recent=args.recent)
    emit(args, report.to_dict(), _render_report(report.to_dict()))
    return 0 if report.passed else 1


def _corpora(items: list[str]) -> list[tuple[str, str]]:
    corpora = []
    for item in items:
        label, _, path = item.partition(":")
        if label not in ("ham", "spam", "phish") or not path:
            raise InputError(f"--corpus wants LABEL:PATH with LABEL ham/spam/phish, got {item}")
        corpora.append((label, path))
    return corpora


def _check_config(args: argparse.Namespace) -> int:
    service = _service(args)
    candidate = load_settings(args.candidate).settings
    report = service.check_config(principal(args), candidate, corpora=_corpora(args.corpus),
                                  recent=args.recent, source=str(args.candidate))
    emit(args, report.to_dict(), _render_report(report.to_dict()))
    return 0 if report.passed else 1


def _accept_config(args: argparse.Namespace) -> int:
    service = _service(args)
    candidate = load_settings(args.candidate).settings
    outcome = service.accept_config(principal(args), candidate, force=args.force,
                                    reason=args.reason)
    version = service.config_version(candidate)
    emit(args, {"version": version, "outcome": outcome}, f"policy {version}: {outcome}")
    return 0


def _render_report(r: dict[str, Any]) -> str:
    lines = [f"gate for {r['candidate']}: {'PASSED' if r['passed'] else 'REFUSED'}"]
    lines += [f"  - {reason}" for reason in r["reasons"]]
    lines += [f"  note: {note}" for note in r.get("notes", ())]
    lines.append(f"  messages replayed: {r['messages']}; known-good {r.get('known_good', 0)} "
                 f"{r.get('known_good_sources') or ''}")
    if r["changes"]:
        lines.append("  verdict changes (source: before -> after):")
        lines += [f"    {c['source']}: {c['before']} -> {c['after']}: {c['count']}"
                  for c in r["changes"]]
    if r["rules"]:
        lines.append("  rule            ham%     spam%    phish%   S/O   hits")
        for rule in r["rules"]:
            lines.append(f"  {rule['rule']:<15} {rule['ham_rate']:>7.3%} "
                         f"{rule['spam_rate']:>7.3%} {rule['phish_rate']:>7.3%}  "
                         f"{rule['s_o']:.2f}  {rule['hits']}")
    if r["newly_quarantined"]:
        lines.append(f"  newly quarantined ({len(r['newly_quarantined'])}):")
        lines += [f"    [{m['source']}:{m['id']}] {m['subject']!r} {m['before']} -> "
                  f"{m['after']} by {', '.join(m['rules'])}"
                  for m in r["newly_quarantined"][:50]]
    through = r.get("let_through") or []
    if through:
        lines.append(f"  threats the active set catches and the candidate lets through "
                     f"({len(through)}):")
        lines += [f"    [{m['source']}:{m['id']}] {m['subject']!r} {m['before']} -> {m['after']}"
                  for m in through[:50]]
    still = r.get("still_quarantined") or []
    if still:
        lines.append(f"  known-good mail the active set already quarantines ({len(still)}; "
                     "not the candidate's doing):")
        lines += [f"    [{m['source']}:{m['id']}] {m['subject']!r} {m['verdict']} by "
                  f"{', '.join(m['reasons'])}" for m in still[:50]]
    return "\n".join(lines)


def _promote(args: argparse.Namespace) -> int:
    scope = None
    if args.to == "canary":
        scope = CanaryScope(tuple(args.recipient), tuple(args.domain), args.percent)
    service = _service(args)
    dep = service.promote(principal(args), args.name, args.version, to=args.to,
                          scope=scope, force=args.force, reason=args.reason)
    shadow = service.shadow_rules(dep)
    text = f"{dep.artifact}@{dep.version} is now {dep.state.value}"
    if shadow:  # what the promotion did not make act
        text += (f"\n{len(shadow)} rule(s) stay in shadow: {', '.join(shadow)} (each is "
                 "promoted on its own: mailsift rollout rule ID --state active, gated)")
    emit(args, {"artifact": dep.artifact, "version": dep.version, "state": dep.state.value,
                "shadow_rules": shadow}, text)
    return 0


def _take_back(args: argparse.Namespace) -> int:
    service = _service(args)
    take = service.withdraw if args.verb == "withdraw" else service.retire
    dep = take(principal(args), args.name, args.version,
               reason=require_reason(args.reason, f"{args.verb} {args.name}"))
    emit(args, {"artifact": dep.artifact, "version": dep.version, "state": dep.state.value},
         f"{dep.artifact}@{dep.version} is now {dep.state.value}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    dep = _service(args).rollback(principal(args), args.name,
                                  reason=require_reason(args.reason, "a rollback"))
    emit(args, {"artifact": dep.artifact, "version": dep.version},
         f"rolled back: {dep.artifact}@{dep.version} is active again")
    return 0


def _rule(args: argparse.Namespace) -> int:
    state = None if args.state == "clear" else args.state
    _service(args).set_rule(principal(args), args.rule, state, reason=args.reason,
                            force=args.force)
    emit(args, {"rule": args.rule, "state": args.state}, f"rule {args.rule}: {args.state}")
    return 0


def _incidents(args: argparse.Namespace) -> int:
    found = _service(args).store.rollout.incidents(args.state)
    emit(args, [i.to_dict() for i in found], "\n".join(
        f"{i.id}  {fmt_time(i.opened_at)}  {i.state:<8} {i.subject}  {i.messages} messages, "
        f"{i.released} released  - {i.action_taken}" for i in found) or "no incidents")
    return 0


def _incident_show(args: argparse.Namespace) -> int:
    service = _service(args)
    info = service.store.rollout.incident(args.id)
    if info is None:
        raise InputError(f"no incident {args.id}")
    members = service.store.rollout.incident_messages(args.id)
    data = {**info.to_dict(), "members": [{"message": m, "outcome": o} for m, o in members]}
    emit(args, data, "\n".join([
        f"incident {info.id} ({info.state}) opened {fmt_time(info.opened_at)}",
        f"  subject: {info.subject}", f"  why: {info.reason}", f"  action: {info.action_taken}",
        f"  messages: {info.messages}, released: {info.released}",
        *[f"    {m}  {o or 'pending'}" for m, o in members[:200]]]))
    return 0


def _incident_release(args: argparse.Namespace) -> int:
    summary = asyncio.run(_service(args).release_incident(
        principal(args), args.id, offline=args.offline,
        reason=require_reason(args.reason, "an incident release")))
    emit(args, summary, ", ".join(f"{k} {v}" for k, v in summary.items()))
    return 0 if not summary.get("failed") else 1


def _incident_allow(args: argparse.Namespace) -> int:
    kinds = [(k, v) for k, v in (("domain", args.domain), ("sender", args.sender),
                                 ("url", args.url)) if v]
    if len(kinds) != 1:
        raise InputError("give exactly one of --domain, --sender, --url")
    entry = _service(args).incident_allow(principal(args), args.id, kinds[0][0], kinds[0][1],
                                          hours=args.hours, note=args.note)
    emit(args, {"id": entry.entry_id, "expires_at": entry.expires_at},
         f"incident allow {entry.kind}:{entry.value} until {fmt_time(entry.expires_at)}")
    return 0
