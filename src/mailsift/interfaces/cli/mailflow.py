"""``mailsift mailflow``: list the configured flow rules, test a rule file on a message, or
stage the declared rules as a version of the rollout registry.

    mailsift mailflow list [--rules FILE]
    mailsift mailflow test RULEFILE MESSAGE.eml [--mail-from A] [--rcpt B] [--client-ip IP]
    mailsift mailflow stage [--rules FILE] [--note TEXT]   (the configuration's rules by default)

A staged version (``mailflow:rules@VERSION``) then goes through the same commands as a rule
pack: ``mailsift rollout check mailflow:rules`` (the gate), ``promote``, ``withdraw``,
``retire``, ``rollback``; ``mailsift rollout status`` shows it beside packs and models.

``test`` scans the message with the real pipeline and applies the rules as the gateway would
(direction from ``[direction]`` of the configuration), printing the direction, each rule that
matched and what it did or, in test mode, would have done. Nothing is recorded or delivered.
A rule file with an error is refused with file:line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mailsift.config import load_settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.errors import InputError
from mailsift.interfaces.cli.storecli import add_common, emit, principal
from mailsift.mailflow.loader import load_rules
from mailsift.services.mailflow import list_rules, try_rules

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("mailflow", help="mail-flow rules: list, test",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="mailflow_command", metavar="SUBCOMMAND")
    cmds.required = True
    ls = cmds.add_parser("list", help="the rules in evaluation order")
    ls.add_argument("--rules", metavar="FILE", help="a rule file instead of the configuration")
    ls.add_argument("--config", metavar="FILE")
    ls.add_argument("--format", choices=("text", "json"), default="text")
    ls.set_defaults(func=_list)
    t = cmds.add_parser("test", help="what the rules of RULEFILE do to MESSAGE")
    t.add_argument("rulefile", metavar="RULEFILE")
    t.add_argument("message", metavar="MESSAGE.eml")
    t.add_argument("--mail-from", metavar="ADDR")
    t.add_argument("--rcpt", metavar="ADDR", action="extend", nargs="+", default=[])
    t.add_argument("--client-ip", metavar="IP")
    t.add_argument("--offline", action="store_true", help="skip every DNS-based check")
    t.add_argument("--config", metavar="FILE")
    t.add_argument("--format", choices=("text", "json"), default="text")
    t.set_defaults(func=_test)
    st = cmds.add_parser("stage", help="register the declared rules as a new version in shadow")
    st.add_argument("--rules", metavar="FILE", help="a rule file instead of the configuration")
    st.add_argument("--note", default="")
    add_common(st)
    st.set_defaults(func=_stage)


def _list(args: argparse.Namespace) -> int:
    rules = (load_rules(args.rules) if args.rules
             else load_settings(args.config).settings.mailflow)
    rows = list_rules(rules)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no mail-flow rules")
    for r in rows:
        cond = {k: r[k] for k in ("if", "any", "except") if r[k]}
        print(f"{r['priority']:>5}  {r['name']}  [{r['mode']}, {r['stage']} detection"
              f"{', stop' if r['stop'] else ''}]  {json.dumps(cond)} -> {json.dumps(r['then'])}")
    return 0


def _test(args: argparse.Namespace) -> int:
    rules = load_rules(args.rulefile)
    try:
        raw = Path(args.message).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {args.message}: {exc}") from exc
    settings = load_settings(args.config).settings
    from mailsift.pipeline.build import ScanOptions, build_pipeline

    pipeline = build_pipeline(settings, ScanOptions(offline=args.offline or None))
    envelope = Envelope(mail_from=args.mail_from, rcpt_to=tuple(args.rcpt),
                        connection=Connection(client_ip=args.client_ip))
    report = try_rules(rules, settings.direction, raw, envelope, pipeline)
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return 0
    out = sys.stdout
    print(f"direction: {report['direction']} ({report['why']})", file=out)
    print(f"verdict:   {report['category']} -> {report['action']}", file=out)
    if not report["rules"]:
        print("no rule matched", file=out)
    for hit in report["rules"]:
        verb = "did" if hit["mode"] == "enforce" else f"would have ({hit['mode']})"
        print(f"rule {hit['name']}: {verb}: {'; '.join(hit['effects'])}", file=out)
    for rcpt, action in report["recipients"].items():
        print(f"  {rcpt}: {action}", file=out)
    print(f"subject:   {report['subject']}", file=out)
    return 0


def _stage(args: argparse.Namespace) -> int:
    from mailsift.services.rollout import RolloutService
    from mailsift.store.store import Store

    settings = load_settings(args.config).settings
    rules = load_rules(args.rules) if args.rules else settings.mailflow
    source = args.rules or "configuration [mailflow]"
    with Store.open(settings.store) as store:
        service = RolloutService(store, settings)
        dep = service.registry.flow.stage(principal(args), rules, source=source, note=args.note)
    emit(args, {"artifact": dep.artifact, "version": dep.version, "state": dep.state.value},
         f"staged {dep.artifact}@{dep.version} in shadow ({len(rules.rules)} rules from "
         f"{source}); next: mailsift rollout check {dep.artifact}")
    return 0
