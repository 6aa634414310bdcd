"""The rule language as data: load TOML packs, validate, compile and evaluate them.

    pack = load_pack("my-rules.toml")              # or a folder of .toml files
    rules = RuleSet([load_pack(BUILTIN_PACK), pack], disabled=[...], weights={...})
    rules.findings(parsed_message)                 # -> [Finding, ...]

The language is described in ``docs/rules.md``; ``BUILTIN_PACK`` is the default pack shipped
with mailsift.
"""

from __future__ import annotations

from pathlib import Path

from mailsift.rules.checks import CHECKS
from mailsift.rules.engine import RuleHit, RuleSet
from mailsift.rules.loader import load_pack, parse_pack_text, rule_version
from mailsift.rules.model import CATEGORIES, PackSpec, RuleMeta, RuleSpec, reserved_prefixes

__all__ = [
    "BUILTIN_PACK",
    "CATEGORIES",
    "CHECKS",
    "PackSpec",
    "RuleHit",
    "RuleMeta",
    "RuleSet",
    "RuleSpec",
    "load_pack",
    "parse_pack_text",
    "reserved_prefixes",
    "rule_version",
]

#: The default pack shipped as package data.
BUILTIN_PACK = Path(__file__).with_name("packs") / "default.toml"
