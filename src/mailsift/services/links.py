"""Signed, expiring, single-purpose action links for people without an account.

A link token is ``<payload>.<mac>``: the payload (base64url) names the purpose (``release``,
``request``, ``notjunk``, ``optout``, ``signin``), the message, the recipient, the expiry and a
random 128-bit id; the MAC is HMAC-SHA256 over it with a key only mailsift holds
(``[digest] key_file``, default ``<data_dir>/digest.key``; nodes share it). So a token cannot be
guessed or altered (the MAC), used for another message, recipient or action (they are inside
what the MAC covers, and the page checks the message in the URL against it), or used after it
expires. Nothing is stored when a link is made — a digest to thousands of recipients costs no
writes — and a link is honoured once: the first confirmation inserts its id into the store's
single-use ledger (``store.enduser``); every later one is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from mailsift.config.schema import Settings
from mailsift.core.errors import MailsiftError

__all__ = ["PURPOSES", "ActionLink", "LinkError", "LinkProblem", "LinkSigner"]

PURPOSES = ("release", "request", "notjunk", "optout", "signin")


class LinkProblem(StrEnum):
    MALFORMED = "malformed"
    TAMPERED = "tampered"
    EXPIRED = "expired"
    USED = "used"
    WRONG_MESSAGE = "wrong_message"
    WRONG_ACTION = "wrong_action"
    NOT_ALLOWED = "not_allowed"


_TEXT = {
    LinkProblem.MALFORMED: "This link is not complete. Copy the whole link from the mail, or "
                           "open the newest digest.",
    LinkProblem.TAMPERED: "This link is not valid: it was changed after it was sent.",
    LinkProblem.EXPIRED: "This link has expired. The newest digest has fresh links, or ask "
                         "your administrator.",
    LinkProblem.USED: "This link was already used. Nothing more was done.",
    LinkProblem.WRONG_MESSAGE: "This link belongs to another message. Nothing was done.",
    LinkProblem.WRONG_ACTION: "This link is for another action. Nothing was done.",
    LinkProblem.NOT_ALLOWED: "The quarantine policy does not allow this action for this "
                             "message any more. Ask your administrator.",
}


class LinkError(MailsiftError):
    """A link that is refused, with the reason a person is shown."""

    def __init__(self, problem: LinkProblem, detail: str = "") -> None:
        self.problem = problem
        super().__init__(detail or _TEXT[problem])

    @property
    def text(self) -> str:
        return _TEXT[self.problem]


@dataclass(frozen=True, slots=True)
class ActionLink:
    purpose: str
    message: str
    recipient: str
    expires: int
    id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the link key must be at least 16 bytes")
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> LinkSigner:
        from mailsift.services.release_mark import load_key_file

        return cls(load_key_file(path))

    @classmethod
    def for_settings(cls, settings: Settings) -> LinkSigner:
        """``[digest] key_file``, or ``<data_dir>/digest.key`` (made on first use)."""
        conf = settings.enduser.digest
        return cls.from_file(Path(conf.key_file or Path(settings.store.data_dir) / "digest.key"))

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, b"mailsift-link-v1|" + payload.encode(),
                             hashlib.sha256).digest())

    def make(self, purpose: str, message: str, recipient: str, expires: float) -> str:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown link purpose {purpose!r}")
        fields = "\n".join((purpose, message, recipient.lower(), str(int(expires)),
                            secrets.token_hex(16)))
        payload = _b64(fields.encode())
        return f"{payload}.{self._mac(payload)}"

    def read(self, token: str, *, now: float, purpose: str | None = None,
             message: str | None = None) -> ActionLink:
        """The link if it is genuine, unexpired and for this purpose and message; else raises
        ``LinkError`` (the single-use check is the store's, at confirmation)."""
        payload, dot, mac = token.strip().partition(".")
        if not dot or not payload or not mac or len(token) > 2048:
            raise LinkError(LinkProblem.MALFORMED)
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            raise LinkError(LinkProblem.TAMPERED)
        try:
            parts = _unb64(payload).decode().split("\n")
            kind, msg, rcpt, exp, link_id = parts
            expires = int(exp)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise LinkError(LinkProblem.MALFORMED) from exc
        if purpose is not None and kind != purpose:
            raise LinkError(LinkProblem.WRONG_ACTION)
        if message is not None and msg != message:
            raise LinkError(LinkProblem.WRONG_MESSAGE)
        if expires <= now:
            raise LinkError(LinkProblem.EXPIRED)
        return ActionLink(kind, msg, rcpt, expires, link_id)
