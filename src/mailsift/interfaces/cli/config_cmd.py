"""``mailsift config check|dump|explain``: validate, print and trace the layered settings."""

from __future__ import annotations

import argparse
import json
import sys

from mailsift.config import load_settings
from mailsift.config.schema import Settings
from mailsift.core.errors import ConfigError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("config", help="check, dump or explain the configuration")
    p.add_argument("action", choices=("check", "dump", "explain"))
    p.add_argument("--config", metavar="FILE")
    p.add_argument("--format", choices=("toml", "json"), default="toml",
                   help="dump format (default toml)")
    p.set_defaults(func=run)


def _toml_value(value: object) -> str:
    """A TOML value: strings, numbers and booleans are written as JSON writes them (the same
    syntax); tables inline, arrays element by element; unset (``None``) keys are left out."""
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {_toml_value(v)}"
                          for k, v in value.items() if v is not None)
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _dump_toml(data: dict[str, object], prefix: str = "") -> list[str]:
    """TOML for the settings: plain keys first, then arrays of tables, then sub-tables (a
    plain key written after a ``[[table]]`` header would land inside that table)."""
    inline = ("weights", "actions", "guardrails", "timeouts_ms")
    plain = [(k, v) for k, v in data.items()
             if (not isinstance(v, dict) or k in inline) and not _is_table_array(v)]
    arrays = [(k, v) for k, v in data.items() if _is_table_array(v)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict) and k not in inline]
    lines: list[str] = []
    if prefix and (plain or not (arrays or tables)):
        lines.append(f"[{prefix}]")
    for key, value in plain:
        if isinstance(value, dict):
            lines.append(f"{key} = {_toml_value(value)}")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    if plain and prefix:
        lines.append("")
    for key, items in arrays:
        assert isinstance(items, list)
        for item in items:
            lines.append(f"[[{prefix}.{key}]]" if prefix else f"[[{key}]]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items() if v is not None)
            lines.append("")
    for key, value in tables:
        assert isinstance(value, dict)
        lines.extend(_dump_toml(value, f"{prefix}.{key}" if prefix else key))
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_settings(args.config)
    except ConfigError as exc:
        if args.action == "check":
            print(f"config: INVALID\n{exc}", file=sys.stderr)
            return 1
        raise
    if args.action == "check":
        from mailsift.pipeline.build import ScanOptions, build_pipeline

        # Building the pipeline proves every detector, rule pack and setting loads.
        build_pipeline(loaded.settings, ScanOptions(offline=True))
        print(f"config: OK ({' -> '.join(loaded.layers)})")
        _notes(loaded.settings)
        return 0
    if args.action == "dump":
        data = loaded.settings.model_dump(mode="json")
        if args.format == "json":
            print(json.dumps(data, indent=2))
        else:
            print("\n".join(_dump_toml(data)))
        return 0
    width = max(len(k) for k, _, _ in loaded.explain())
    for key, value, source in loaded.explain():
        print(f"{key:<{width}}  {json.dumps(value, ensure_ascii=False):<30}  # {source}")
    _notes(loaded.settings)
    return 0


def _notes(settings: Settings) -> None:
    """Say which enabled detectors are left out because their extra is not installed."""
    from mailsift.detectors.registry import unavailable_detectors

    for line in unavailable_detectors(settings).values():
        print(f"note: {line}")
