"""``mailsift user``: accounts of the web console (create, list, disable, enable, password, role,
end-sessions).

Passwords are never taken from the command line (it would end up in shell history and ``ps``):
they are prompted for twice, or read from the first line of standard input with
``--password-stdin`` (scripts, CI). The commands are calls on ``UserService`` as the ``cli``
admin: the same rules as the console's Users page and ``/v1/users`` (the last enabled admin can
be neither disabled nor demoted), and every change is written to the audit log.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from mailsift.config import load_settings
from mailsift.core.errors import InputError
from mailsift.interfaces.cli.args import command_group
from mailsift.services.access import CLI_ADMIN
from mailsift.services.users import UserService
from mailsift.store import Store
from mailsift.store.users import ROLES, normalise_username

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    us = command_group(sub, "user", __doc__, dest="ucmd", help="web console users")

    c = us.add_parser("create", help="create a user")
    c.add_argument("name")
    c.add_argument("--role", choices=ROLES, required=True)
    c.add_argument("--mailbox", help="the one mailbox a recipient user sees")
    c.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    c.add_argument("--config", metavar="FILE")
    c.set_defaults(func=_create)

    c = us.add_parser("list", help="list users")
    c.add_argument("--config", metavar="FILE")
    c.set_defaults(func=_list)

    for name, helptext in (("disable", "disable a user (ends its sessions)"),
                           ("enable", "enable a user again")):
        c = us.add_parser(name, help=helptext)
        c.add_argument("name")
        c.add_argument("--config", metavar="FILE")
        c.set_defaults(func=_toggle, disable=name == "disable")

    c = us.add_parser("password", help="set a new password (ends the user's sessions)")
    c.add_argument("name")
    c.add_argument("--password-stdin", action="store_true")
    c.add_argument("--config", metavar="FILE")
    c.set_defaults(func=_password)

    c = us.add_parser("role", help="give a user another role")
    c.add_argument("name")
    c.add_argument("--role", choices=ROLES, required=True)
    c.add_argument("--mailbox", help="the one mailbox a recipient user sees")
    c.add_argument("--config", metavar="FILE")
    c.set_defaults(func=_role)

    c = us.add_parser("end-sessions", help="sign a user out everywhere")
    c.add_argument("name")
    c.add_argument("--config", metavar="FILE")
    c.set_defaults(func=_end_sessions)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise InputError("no password on standard input")
        return line
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise InputError("the passwords do not match")
    return first


def _open(args: argparse.Namespace) -> Store:
    return Store.open(load_settings(args.config).settings.store)


def _create(args: argparse.Namespace) -> int:
    password = _read_password(args.password_stdin)
    with _open(args) as store:
        info = UserService(store).create(CLI_ADMIN, args.name, password, args.role,
                                         mailbox=args.mailbox)
    print(f"created {info.role} {info.username}"
          + (f" (mailbox {info.mailbox})" if info.mailbox else ""))
    return 0


def _list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        for s in UserService(store).list(CLI_ADMIN):
            u = s.user
            flags = " disabled" if u.disabled else ""
            flags += " locked" if s.locked_until else ""
            print(f"{u.username}\t{u.role}\t{u.mailbox or '-'}{flags}")
    return 0


def _toggle(args: argparse.Namespace) -> int:
    with _open(args) as store:
        ended = UserService(store).set_disabled(CLI_ADMIN, args.name, args.disable)
    name = normalise_username(args.name)
    print(f"disabled {name} ({ended} sessions ended)" if args.disable else f"enabled {name}")
    return 0


def _password(args: argparse.Namespace) -> int:
    password = _read_password(args.password_stdin)
    with _open(args) as store:
        UserService(store).set_password(CLI_ADMIN, args.name, password)
    print(f"password of {normalise_username(args.name)} changed")
    return 0


def _role(args: argparse.Namespace) -> int:
    with _open(args) as store:
        info = UserService(store).set_role(CLI_ADMIN, args.name, args.role,
                                           mailbox=args.mailbox)
    print(f"{info.username} is now {info.role}"
          + (f" (mailbox {info.mailbox})" if info.mailbox else ""))
    return 0


def _end_sessions(args: argparse.Namespace) -> int:
    with _open(args) as store:
        ended = UserService(store).end_sessions(CLI_ADMIN, args.name)
    print(f"{normalise_username(args.name)}: {ended} sessions ended")
    return 0
