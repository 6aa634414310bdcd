"""Reading rule packs from TOML: validation with file:line, normalisation and content hashes.

A pack is one ``.toml`` file or a folder of them; one ``[pack]`` table names it and any number
of ``[[rule]]`` tables hold the rules. ``tomllib`` reports no positions for valid TOML, so the
line of a rule is found in the file text: the ``id = "..."`` line inside the n-th ``[[rule]]``
block (or the block header when the id itself is missing).

Versions are content hashes of the *normalised* data (sorted keys, canonical JSON), so comments,
whitespace and rule order do not change them, while any change to what a rule does does.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mailsift.core.errors import RuleError
from mailsift.core.findings import ArtifactState
from mailsift.rules.checks import make_check
from mailsift.rules.fields import parse_header_field
from mailsift.rules.meta import parse_meta
from mailsift.rules.model import (
    CATEGORIES,
    MATCHER_KINDS,
    PATTERN_KINDS,
    PackSpec,
    RuleSpec,
    is_subrule,
    reserved_prefixes,
    valid_id,
)
from mailsift.rules.patterns import check_pattern

__all__ = ["load_pack", "parse_pack_text", "rule_version"]

_PACK_KEYS = {"name", "description", "default_state"}
_RULE_KEYS = {
    "id", "description", "category", "weight", "state", "tags",
    "pattern", "flags", "exists", "absent", "args", *MATCHER_KINDS,
}
_PACK_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")
_TOML_LINE = re.compile(r"line (\d+)")
_STATES = {s.value: s for s in ArtifactState}


def load_pack(path: str | Path) -> PackSpec:
    """Load a pack from a ``.toml`` file or a folder of them; ``RuleError`` if invalid."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.rglob("*.toml") if p.is_file())
        if not files:
            raise RuleError("folder holds no .toml rule files", path=str(root))
    elif root.is_file():
        files = [root]
    else:
        raise RuleError("no such rule file or folder", path=str(root))
    header: dict[str, Any] | None = None
    header_at = ""
    rules: list[RuleSpec] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(f"cannot read: {exc}", path=str(file)) from None
        pack, file_rules = _parse_file(text, str(file))
        if pack is not None:
            if header is not None:
                raise RuleError(f"second [pack] table (first in {header_at})", path=str(file))
            header, header_at = pack, str(file)
        rules.extend(file_rules)
    if header is None:
        if root.is_dir():
            header = {"name": root.name.lower()}
        else:
            raise RuleError("missing [pack] table", path=str(root))
    return _finish(header, rules, str(root), header_at or str(root))


def parse_pack_text(text: str, path: str = "<string>") -> PackSpec:
    """Parse one pack from TOML text (``path`` is only used in messages)."""
    header, rules = _parse_file(text, path)
    if header is None:
        raise RuleError("missing [pack] table", path=path)
    return _finish(header, rules, path, path)


def _parse_file(text: str, path: str) -> tuple[dict[str, Any] | None, list[RuleSpec]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        raise RuleError(f"invalid TOML: {exc}", path=path,
                        line=int(found.group(1)) if found else None) from None
    lines = text.splitlines()
    for key in data:
        if key not in ("pack", "rule"):
            raise RuleError(f"unknown top-level key {key!r} (expected [pack] and [[rule]])",
                            path=path, line=_line_of_key(lines, key))
    pack = data.get("pack")
    if pack is not None and not isinstance(pack, dict):
        raise RuleError("[pack] must be a table", path=path, line=_line_of_key(lines, "pack"))
    if pack is not None:
        unknown = set(pack) - _PACK_KEYS
        if unknown:
            raise RuleError(f"unknown [pack] field(s): {', '.join(sorted(unknown))}",
                            path=path, line=_line_of_key(lines, "pack"))
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise RuleError("'rule' must be an array of tables ([[rule]])", path=path,
                        line=_line_of_key(lines, "rule"))
    blocks = _rule_blocks(lines)
    default_state = (pack or {}).get("default_state", "shadow")
    if default_state not in _STATES:
        raise RuleError(f"bad default_state {default_state!r}", path=path,
                        line=_line_of_key(lines, "pack"))
    rules = []
    for index, item in enumerate(raw_rules):
        line = _rule_line(lines, blocks, index, item)
        if not isinstance(item, dict):
            raise RuleError("each rule must be a table", path=path, line=line)
        rules.append(_rule(item, path, line, _STATES[default_state]))
    return pack, rules


def _rule(data: Mapping[str, Any], path: str, line: int | None,
          default_state: ArtifactState) -> RuleSpec:
    def fail(message: str) -> RuleError:
        rid = data.get("id")
        return RuleError(f"rule {rid}: {message}" if isinstance(rid, str) else message,
                         path=path, line=line)

    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise fail(f"unknown field(s): {', '.join(sorted(unknown))}")
    rule_id = data.get("id")
    if not isinstance(rule_id, str) or not valid_id(rule_id):
        raise fail(f"id must be UPPER_SNAKE_CASE, got {rule_id!r}")
    bare = rule_id.lstrip("_")
    reserved = reserved_prefixes()
    if any(bare.startswith(prefix) for prefix in reserved):
        raise fail(f"id uses a reserved prefix ({', '.join(reserved)})")
    description = data.get("description")
    if not isinstance(description, str) or not description.strip():
        raise fail("description is required (it is shown in every explanation)")
    kinds = [k for k in MATCHER_KINDS if k in data]
    if len(kinds) != 1:
        got = ", ".join(kinds) or "none"
        raise fail(f"needs exactly one matcher of {', '.join(MATCHER_KINDS)}; got {got}")
    kind = kinds[0]
    target = data[kind]
    if not isinstance(target, str) or not target:
        raise fail(f"{kind} must be a non-empty string")
    for key, allowed in (("pattern", "header"), ("exists", "header"), ("absent", "header"),
                         ("args", "check")):
        if key in data and kind != allowed:
            raise fail(f"{key!r} only goes with {allowed!r}")
    flags = data.get("flags", "")
    if not isinstance(flags, str):
        raise fail("flags must be a string like 'i'")
    pattern: str | None = None
    presence = ""
    args: Mapping[str, object] = MappingProxyType({})
    try:
        if kind == "header":
            parse_header_field(target)
            pattern, presence = _header_mode(data)
        elif kind in PATTERN_KINDS:
            pattern, target = target, ""
        elif kind == "check":
            raw_args = data.get("args", {})
            if not isinstance(raw_args, dict):
                raise ValueError("args must be a table")
            make_check(target, raw_args)
            args = MappingProxyType(dict(raw_args))
        else:
            parse_meta(target)
        if pattern is not None:
            check_pattern(pattern, flags)
        elif flags:
            raise ValueError("flags only go with a pattern")
    except ValueError as exc:
        raise fail(str(exc)) from None
    category = data.get("category")
    if category is not None and category not in CATEGORIES:
        raise fail(f"category must be one of {', '.join(CATEGORIES)} (or omitted)")
    weight = data.get("weight", 0.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise fail("weight must be a number")
    if category is not None and "weight" not in data:
        raise fail("a rule with a category needs a weight")
    if is_subrule(rule_id) and (category is not None or weight):
        raise fail("sub-rules (__ids) are meta inputs only: no category or weight")
    state_name = data.get("state")
    if state_name is not None and state_name not in _STATES:
        raise fail(f"state must be one of {', '.join(_STATES)}")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise fail("tags must be a list of strings")
    spec = RuleSpec(
        id=rule_id, description=description.strip(), kind=kind, target=target,
        pattern=pattern, flags=flags, presence=presence, args=args, category=category,
        weight=float(weight), state=_STATES[state_name] if state_name else default_state,
        tags=tuple(tags), path=path, line=line,
    )
    return _with_version(spec)


def _header_mode(data: Mapping[str, Any]) -> tuple[str | None, str]:
    modes = [k for k in ("pattern", "exists", "absent") if k in data]
    if len(modes) != 1:
        raise ValueError("a header rule needs exactly one of pattern, exists = true, absent = true")
    mode = modes[0]
    if mode == "pattern":
        if not isinstance(data["pattern"], str):
            raise ValueError("pattern must be a string")
        return data["pattern"], ""
    if data[mode] is not True:
        raise ValueError(f"{mode} must be true")
    return None, mode


def _normalised(spec: RuleSpec) -> dict[str, Any]:
    """What the rule *does*: its logic, category and weight (not its wording or state)."""
    return {
        "id": spec.id, "kind": spec.kind, "target": spec.target, "pattern": spec.pattern,
        "flags": spec.flags, "presence": spec.presence, "args": dict(spec.args),
        "category": spec.category, "weight": spec.weight,
    }


def _digest(data: object) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def rule_version(spec: RuleSpec) -> str:
    """Content hash of a rule's behaviour; stays the same when only state or wording change."""
    return _digest(_normalised(spec))


def _with_version(spec: RuleSpec) -> RuleSpec:
    return replace(spec, version=rule_version(spec))


def _finish(header: Mapping[str, Any], rules: list[RuleSpec], path: str, header_at: str
            ) -> PackSpec:
    name = header.get("name")
    if not isinstance(name, str) or not _PACK_NAME.match(name):
        raise RuleError(f"[pack] name must match {_PACK_NAME.pattern}, got {name!r}",
                        path=header_at)
    description = header.get("description", "")
    if not isinstance(description, str):
        raise RuleError("[pack] description must be a string", path=header_at)
    seen: dict[str, RuleSpec] = {}
    for spec in rules:
        if spec.id in seen:
            first = seen[spec.id]
            raise RuleError(f"duplicate rule id {spec.id} (first at {first.path}:{first.line})",
                            path=spec.path, line=spec.line)
        seen[spec.id] = spec
    normalised = {
        "name": name, "description": description,
        "rules": [
            {**_normalised(s), "description": s.description, "state": s.state.value,
             "tags": list(s.tags)}
            for s in sorted(rules, key=lambda r: r.id)
        ],
    }
    return PackSpec(name, description, tuple(rules), _digest(normalised), path)


def _line_of_key(lines: list[str], key: str) -> int | None:
    pattern = re.compile(rf"^\s*(?:\[+\s*{re.escape(key)}\s*\]+|{re.escape(key)}\s*=)")
    for number, text in enumerate(lines, start=1):
        if pattern.match(text):
            return number
    return None


def _rule_blocks(lines: list[str]) -> list[int]:
    return [n for n, text in enumerate(lines, start=1) if _RULE_HEADER.match(text)]


def _rule_line(lines: list[str], blocks: list[int], index: int, item: object) -> int | None:
    if index >= len(blocks):
        return None  # rules written as an inline array: no block to point at
    start = blocks[index]
    end = blocks[index + 1] if index + 1 < len(blocks) else len(lines) + 1
    rule_id = item.get("id") if isinstance(item, dict) else None
    if isinstance(rule_id, str):
        wanted = re.compile(rf"^\s*id\s*=\s*(['\"]){re.escape(rule_id)}\1")
        for number in range(start, end):
            if wanted.match(lines[number - 1]):
                return number
    return start
