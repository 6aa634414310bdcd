"""Raw bytes -> ParsedMessage, with every resource limit enforced here."""

from mailsift.parsing.parser import DEFAULT_LIMITS, parse_message
from mailsift.parsing.urls import make_url, registrable_domain

__all__ = ["DEFAULT_LIMITS", "make_url", "parse_message", "registrable_domain"]
