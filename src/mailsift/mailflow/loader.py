"""Loading a mail-flow rule file: all of it or nothing, with ``file:line`` on every error.

A rule file has the shape of the ``[mailflow]`` section of mailsift.toml (``[[mailflow.rules]]``
tables and an optional ``[mailflow.groups]``), so a rule tested from a file can be pasted into
the configuration as it is.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from mailsift.config.mailflow import MailflowSettings
from mailsift.core.errors import ConfigError

__all__ = ["load_rules", "parse_rules", "rules_text"]

_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*\"?([A-Za-z0-9_-]+)\"?\s*=")
_SECTIONS = {"if_": "if", "except_": "except"}


def _line_of(text: str, loc: Sequence[int | str]) -> int:
    """The line an error's location points at: the rule's table, then the sub-table, then
    the key (the closest one found; 1 when nothing is)."""
    lines = text.splitlines()
    if not loc or loc[0] != "rules":
        name = str(loc[0]) if loc else ""
        return next((i + 1 for i, ln in enumerate(lines)
                     if ((m := _KEY.match(ln)) or (m := _TABLE.match(ln)))
                     and m.group(1).split(".")[-1] == name), 1)
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    rest = [str(p) for p in loc[2:] if not isinstance(p, int)]
    section = _SECTIONS.get(rest[0], rest[0]) if rest else ""
    key = rest[-1] if len(rest) > 1 else rest[0] if rest else ""
    best, seen, table = 1, -1, ""
    for i, ln in enumerate(lines):
        if (m := _TABLE.match(ln)) is not None:
            table = m.group(1).replace('"', "")
            if ln.strip().startswith("[[") and table == "mailflow.rules":
                seen += 1
                if seen == index:
                    best = i + 1
            elif seen == index and section and table == f"mailflow.rules.{section}":
                best = i + 1  # the sub-table; its key, when found, is closer
            continue
        if seen != index or not rest or (k := _KEY.match(ln)) is None:
            continue
        if (table == f"mailflow.rules.{section}" and len(rest) > 1 and k.group(1) == key) or (
                table == "mailflow.rules" and k.group(1) == section):
            return i + 1
    return best


def _message(err: dict[str, object]) -> str:
    loc = ".".join(_SECTIONS.get(str(p), str(p)) for p in err["loc"]  # type: ignore[attr-defined]
                   if not isinstance(p, int))
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    return f"{loc}: {msg}" if loc else msg


def parse_rules(text: str, source: str = "<rules>") -> MailflowSettings:
    """The rules in ``text``, validated; ``ConfigError`` names ``source:line`` of every
    problem, and nothing is returned unless the whole file is valid."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = m.group(1) if m else "1"
        raise ConfigError(f"{source}:{line}: syntax error: {exc}") from exc
    unknown = sorted(set(data) - {"mailflow"})
    if unknown:
        line = _line_of(text, [unknown[0]])
        raise ConfigError(f"{source}:{line}: unknown section {unknown[0]!r} "
                          "(a rule file holds [[mailflow.rules]] and [mailflow.groups])")
    try:
        return MailflowSettings.model_validate(data.get("mailflow", {}))
    except ValidationError as exc:
        problems = [f"{source}:{_line_of(text, err['loc'])}: {_message(dict(err))}"
                    for err in exc.errors()]
        raise ConfigError("; ".join(problems)) from exc


def load_rules(path: str | Path) -> MailflowSettings:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the rule file: {exc}") from exc
    return parse_rules(text, str(p))


def rules_text(rules: MailflowSettings) -> str:
    """A rule set as a rule file (``[[mailflow.rules]]``, defaults left out): what
    ``parse_rules`` reads back as the same rules. Needs ``tomli-w`` (the ``server`` extra)."""
    import tomli_w

    data = rules.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return tomli_w.dumps({"mailflow": data}) if data else ""
