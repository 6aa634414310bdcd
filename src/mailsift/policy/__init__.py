"""Policy: findings + auth + lists -> Verdict. Pure: no I/O, one precedence table."""

from mailsift.policy.engine import ERROR_CODES, PolicyInput, decide
from mailsift.policy.lists import MessageFacts
from mailsift.policy.presets import PRESETS, choose_policy

__all__ = ["ERROR_CODES", "PRESETS", "MessageFacts", "PolicyInput", "choose_policy", "decide"]
