"""Entry point of the ``mailsift`` command: one sub-command module per concern.

Each module in ``COMMANDS`` exposes ``register(subparsers)`` which adds its parser and sets
``func`` to a callable taking the parsed arguments and returning the exit status.
Exit status: 0 success, 1 the command ran and found a problem (e.g. ``config check``),
2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mailsift import __version__
from mailsift.core.errors import MailsiftError

__all__ = ["main"]

COMMANDS: tuple[str, ...] = (
    "mailsift.interfaces.cli.scan",
    "mailsift.interfaces.cli.config_cmd",
    "mailsift.interfaces.cli.serve",
    "mailsift.interfaces.cli.train",
    "mailsift.interfaces.cli.eval",
    "mailsift.interfaces.cli.quarantine",
    "mailsift.interfaces.cli.trace",
    "mailsift.interfaces.cli.lists",
    "mailsift.interfaces.cli.store_admin",
    "mailsift.interfaces.cli.rollout",
    "mailsift.interfaces.cli.users",
    "mailsift.interfaces.cli.reports",
    "mailsift.interfaces.cli.mailflow",
)

#: Which module registers each top-level command: only that module is imported to run it
#: (importing them all, the store and the ML stack included, cost ~0.8 s per invocation).
COMMAND_MODULES: dict[str, str] = {
    "scan": "mailsift.interfaces.cli.scan",
    "config": "mailsift.interfaces.cli.config_cmd",
    "serve": "mailsift.interfaces.cli.serve",
    "train": "mailsift.interfaces.cli.train",
    "eval": "mailsift.interfaces.cli.eval",
    "quarantine": "mailsift.interfaces.cli.quarantine",
    "trace": "mailsift.interfaces.cli.trace",
    "lists": "mailsift.interfaces.cli.lists",
    "db": "mailsift.interfaces.cli.store_admin",
    "token": "mailsift.interfaces.cli.store_admin",
    "audit": "mailsift.interfaces.cli.store_admin",
    "rollout": "mailsift.interfaces.cli.rollout",
    "incident": "mailsift.interfaces.cli.rollout",
    "user": "mailsift.interfaces.cli.users",
    "reports": "mailsift.interfaces.cli.reports",
    "mailflow": "mailsift.interfaces.cli.mailflow",
}

#: The one-line help of each command, for ``mailsift --help`` (and a bad or missing command):
#: listing the commands imports none of their modules, so ``--help`` works whatever extras are
#: installed (a test checks these match what each module registers).
COMMAND_HELP: dict[str, str] = {
    "scan": "scan messages and explain the verdicts",
    "config": "check, dump or explain the configuration",
    "serve": "run the gateway, HTTP API and web UI",
    "train": "train the content model from labelled sources",
    "eval": "measure false-positive and catch rates on labelled mail",
    "quarantine": "quarantined mail: list, show, release, delete",
    "trace": "search the message trace",
    "lists": "allow/block lists",
    "db": "store schema migrations",
    "token": "API tokens",
    "audit": "read the audit log",
    "rollout": "stage, check, promote and roll back detection changes",
    "incident": "incidents opened by the circuit breaker",
    "user": "web console users",
    "reports": "user reports (phish, spam, not junk): list, triage, export",
    "mailflow": "mail-flow rules: list, test",
}

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2


def build_parser(command: str | None = None, *,
                 load_all: bool = False) -> argparse.ArgumentParser:
    """The parser. With a known ``command`` only the module that registers it is imported;
    otherwise (``--help``, no or a bad command) the commands are listed from ``COMMAND_HELP``
    and no command module is imported, unless ``load_all``."""
    parser = argparse.ArgumentParser(
        prog="mailsift",
        description="Email threat-protection gateway: authenticate, detect, decide, explain.",
    )
    parser.add_argument("--version", action="version", version=f"mailsift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    if command not in COMMAND_MODULES and not load_all:
        for name in COMMAND_MODULES:
            sub.add_parser(name, help=COMMAND_HELP[name], add_help=False)
        return parser
    modules = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else COMMANDS
    for name in dict.fromkeys(modules):
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    first = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(first)
    args = parser.parse_args(words)
    try:
        return int(args.func(args))
    except MailsiftError as exc:
        print(f"mailsift: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
