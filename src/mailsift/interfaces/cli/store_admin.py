"""``mailsift db``, ``mailsift token`` and ``mailsift audit``: running the store.

    mailsift db upgrade | current           (Alembic migrations; also run on open)
    mailsift store migrate-blobs --to local|postgresql|s3 [--from BACKEND] [--delete-source]
                                            (move quarantined originals; resumable)
    mailsift token create --role admin|analyst|recipient [--name N] [--subject ADDR]
                          [--expires 90d]
    mailsift token list | revoke TOKEN-ID
    mailsift audit [--actor A] [--action A] [--target T] [--since T] [--limit N]
"""

from __future__ import annotations

import argparse
import sys

from mailsift.config import load_settings
from mailsift.interfaces.cli.args import command_group, store_action
from mailsift.interfaces.cli.storecli import (
    emit,
    fmt_time,
    open_services,
    parse_time,
    principal,
)
from mailsift.services.lists import parse_duration
from mailsift.services.store_services import StoreServices
from mailsift.store import ROLES
from mailsift.store.blobs import BLOB_BACKENDS

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ds = command_group(sub, "db", __doc__, dest="dcmd", help="store schema migrations")
    for name in ("upgrade", "current"):
        c = store_action(ds, name, _db, help=f"{name} the store schema")
        c.set_defaults(what=name)

    ss = command_group(sub, "store", __doc__, dest="scmd",
                       help="quarantined originals: move between blob backends")
    c = store_action(ss, "migrate-blobs", _migrate_blobs,
                     help="copy every original to another blob backend "
                     "(read back and hash-checked; run again to resume)")
    c.add_argument("--to", required=True, choices=BLOB_BACKENDS, dest="target")
    c.add_argument("--from", choices=BLOB_BACKENDS, dest="source",
                   help="default: the configured [store] blob_backend")
    c.add_argument("--delete-source", action="store_true",
                   help="remove each source copy once the target copy was read back")

    ts = command_group(sub, "token", __doc__, dest="tcmd", help="API tokens")
    c = store_action(ts, "create", _token_create, help="create a token (printed once)")
    c.add_argument("--role", required=True, choices=ROLES)
    c.add_argument("--name", default="")
    c.add_argument("--subject", help="mailbox a recipient token may see")
    c.add_argument("--expires", help="lifetime, e.g. 90d")
    store_action(ts, "list", _token_list, help="list tokens (never the secrets)")
    c = store_action(ts, "revoke", _token_revoke, help="revoke a token by id")
    c.add_argument("token_id")

    p = store_action(sub, "audit", _audit,
                     help="read the audit log", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--actor")
    p.add_argument("--action")
    p.add_argument("--target")
    p.add_argument("--since")
    p.add_argument("--limit", type=int, default=100)


def _db(args: argparse.Namespace) -> int:
    from mailsift.store.db import create_store_engine, current_revision, head_revision, upgrade

    conf = load_settings(args.config).settings.store
    engine = create_store_engine(conf.database_url(), schema=conf.db_schema)
    try:
        if args.what == "upgrade":
            rev = upgrade(engine, schema=conf.db_schema)
        else:
            rev = current_revision(engine)
        head = head_revision()
        emit(args, {"revision": rev, "head": head},
             f"schema at {rev or 'nothing'} (head {head})")
        return 0 if rev == head else 1
    finally:
        engine.dispose()


def _migrate_blobs(args: argparse.Namespace) -> int:
    from mailsift.store.blob_migrate import migrate_blobs
    from mailsift.store.store import Store, open_blobs

    conf = load_settings(args.config).settings.store
    source_name = args.source or conf.blob_backend_name()
    if source_name == args.target:
        print(f"--from and --to are both {args.target}", file=sys.stderr)
        return 2
    with Store.open(conf) as store:
        source = open_blobs(conf, store.engine, source_name)
        target = open_blobs(conf, store.engine, args.target)
        try:
            def progress(r: object) -> None:
                if not args.json:
                    print(f"  copied {getattr(r, 'copied', 0)}, already there "
                          f"{getattr(r, 'present', 0)}", file=sys.stderr)
            report = migrate_blobs(store.engine, source, target,
                                   delete_source=args.delete_source, progress=progress)
        finally:
            source.close()
            target.close()
    lines = [f"{report.source} -> {report.target}: copied {report.copied}, already there "
             f"{report.present}, source copies deleted {report.deleted}, failed "
             f"{len(report.failed)}, referenced but missing {len(report.missing)}"]
    lines += [f"  failed {sha}: {why}" for sha, why in report.failed.items()]
    lines += [f"  missing {sha}" for sha in report.missing[:50]]
    if not report.failed and conf.blob_backend_name() != args.target:
        lines.append(f"now set [store] blob_backend = \"{args.target}\" (and, until the "
                     f"nodes have restarted, blob_read_fallback = \"{source_name}\")")
    emit(args, report.to_dict(), "\n".join(lines))
    return 0 if not report.failed and not report.missing else 1


def _with(args: argparse.Namespace, fn: object) -> int:
    svc = open_services(args)
    try:
        return int(fn(svc, args))  # type: ignore[operator]
    finally:
        svc.close()


def _token_create(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        expires = svc.store.clock.now() + parse_duration(a.expires) if a.expires else None
        token, info = svc.tokens.create(principal(a), a.role, name=a.name, subject=a.subject,
                                        expires_at=expires)
        emit(a, {"token": token, **info.to_dict()}, token)
        if not a.json:
            print(f"id {info.id}, role {info.role}: store it now, it is not shown again",
                  file=sys.stderr)
        return 0
    return _with(args, go)


def _token_list(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        tokens = svc.tokens.list(principal(a))
        emit(a, [t.to_dict() for t in tokens], "\n".join(
            f"{t.id}  {t.role:9} {t.name or '-':16} {t.subject or '-':28} "
            f"created {fmt_time(t.created_at)}"
            f"{'  REVOKED' if t.revoked_at else ''}" for t in tokens) or "no tokens")
        return 0
    return _with(args, go)


def _token_revoke(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        svc.tokens.revoke(principal(a), a.token_id)
        emit(a, {"revoked": a.token_id}, f"revoked {a.token_id}")
        return 0
    return _with(args, go)


def _audit(args: argparse.Namespace) -> int:
    def go(svc: StoreServices, a: argparse.Namespace) -> int:
        entries = svc.audit.entries(principal(a), who=a.actor, action=a.action,
                                    target=a.target, since=parse_time(a.since), limit=a.limit)
        emit(a, [e.to_dict() for e in entries], "\n".join(
            f"{fmt_time(e.at)}  {e.actor:24} {e.action:32} {e.target}" for e in entries)
             or "no entries")
        return 0
    return _with(args, go)
