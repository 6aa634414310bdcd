"""Argument shapes the commands share: a command whose actions are required
(``mailsift NAME ACTION ...``), the common ``--config/--json/--as`` options, and an action that
takes them and runs a function.

Only argparse here: ``mailsift --help`` imports every command's ``register``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeAlias

    Actions: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["add_common", "command_group", "store_action"]


def add_common(p: argparse.ArgumentParser) -> None:
    """``--config``, ``--json`` and ``--as``: what every command on the store takes."""
    p.add_argument("--config", metavar="FILE", help="settings file (default: ./mailsift.toml, "
                   "else /etc/mailsift/mailsift.toml)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--as", dest="actor", metavar="NAME", help="name recorded in the audit log")


def command_group(sub: Actions, name: str, doc: str | None, *, help: str, dest: str,
                  metavar: str = "ACTION") -> Actions:
    """The command ``name`` (``doc`` its long description) and its required actions, chosen
    into ``args.<dest>``; add each action to what this returns."""
    p = sub.add_parser(name, help=help, description=doc,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions: Actions = p.add_subparsers(dest=dest, metavar=metavar)
    actions.required = True
    return actions


def store_action(actions: Actions, name: str, func: Callable[[argparse.Namespace], int],
                 **parser_kw: Any) -> argparse.ArgumentParser:
    """The action ``name`` that runs ``func(args)``, with the common options."""
    c: argparse.ArgumentParser = actions.add_parser(name, **parser_kw)
    add_common(c)
    c.set_defaults(func=func)
    return c
