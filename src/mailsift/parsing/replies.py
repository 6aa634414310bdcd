"""Whether a body quotes an earlier message: the sign of a reply, whatever its headers say.

Exchange and many mobile clients send no In-Reply-To or References, so a reply is recognised
by what it quotes: ``>`` lines, Outlook's "-----Original Message-----" line or its "From: ...
Sent:" header block, or a client's "On <date>, <name> wrote:" line, in English, German,
French, Spanish, Portuguese, Italian and Dutch. Read by the content model (``x:quoted``) and by
the rule pack (``FAKE_REPLY`` is not a fake reply when the body quotes).
"""

from __future__ import annotations

import re

__all__ = ["QUOTED_EARLIER_MESSAGE", "quotes_earlier_message"]

QUOTED_EARLIER_MESSAGE = re.compile(
    r"^(?:>|-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje "
    r"original|mensagem original|messaggio originale)|(?:from|von|de|da|van):[^\n]{1,200}\n"
    r"(?:sent|gesendet|envoyé|enviado|inviato|verzonden)(?: at)?:|.{0,200}\b(?:wrote|schrieb|"
    r"a écrit|escribió|escreveu|ha scritto|schreef):\s*$)",
    re.IGNORECASE | re.MULTILINE)


def quotes_earlier_message(text: str, limit: int = 8_000) -> bool:
    """``text`` (its first ``limit`` characters) quotes an earlier message."""
    return QUOTED_EARLIER_MESSAGE.search(text, 0, limit) is not None
