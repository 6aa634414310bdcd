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
)

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailsift",
        description="Email threat-protection gateway: authenticate, detect, decide, explain.",
    )
    parser.add_argument("--version", action="version", version=f"mailsift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
