"""Signing helpers for tests: generate keys, DKIM-sign, ARC-seal (dkimpy), publish key records.

Keys are generated per test session (RSA-2048 and ed25519 per RFC 8463), never stored. Each
``SigningKey`` knows the TXT record that publishes it, so a test puts ``key.record`` into the
zones of ``mailsift.testing.dns.DnsServer`` at ``key.dns_name(selector, domain)``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dkim
import nacl.encoding
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "SigningKey",
    "arc_seal",
    "dkim_sign",
    "generate_ed25519_key",
    "generate_rsa_key",
    "simple_message",
]

DEFAULT_HEADERS = ("from", "to", "subject", "date", "message-id")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key in the form dkimpy signs with, and its public DKIM key record."""

    algorithm: str  # "rsa-sha256" or "ed25519-sha256"
    private: bytes = b""
    record: str = ""

    @staticmethod
    def dns_name(selector: str, domain: str) -> str:
        return f"{selector}._domainkey.{domain}"


def generate_rsa_key(bits: int = 2048) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode('ascii')}"
    return SigningKey("rsa-sha256", private, record)


def generate_ed25519_key() -> SigningKey:
    key = nacl.signing.SigningKey.generate()
    private = key.encode(encoder=nacl.encoding.Base64Encoder)
    public = key.verify_key.encode(encoder=nacl.encoding.Base64Encoder).decode("ascii")
    return SigningKey("ed25519-sha256", private, f"v=DKIM1; k=ed25519; p={public}")


def _crlf(message: bytes) -> bytes:
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def dkim_sign(
    message: bytes,
    domain: str,
    selector: str,
    key: SigningKey,
    headers: Sequence[str] = DEFAULT_HEADERS,
    canonicalize: tuple[bytes, bytes] = (b"relaxed", b"relaxed"),
) -> bytes:
    """``message`` with a new DKIM-Signature header on top."""
    message = _crlf(message)
    signer = dkim.DKIM(message)
    sig = signer.sign(
        selector.encode(),
        domain.encode(),
        key.private,
        signature_algorithm=key.algorithm.encode(),
        canonicalize=canonicalize,
        include_headers=[h.encode() for h in headers],
    )
    return bytes(sig) + message


def arc_seal(
    message: bytes,
    domain: str,
    selector: str,
    key: SigningKey,
    authserv_id: str,
    auth_results: str,
    headers: Sequence[str] = DEFAULT_HEADERS,
) -> bytes:
    """One ARC hop: add the sealer's Authentication-Results, then its ARC set (RSA only).

    ``auth_results`` is what the sealer found, e.g. ``"dkim=pass header.d=example.com;
    spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com"``; for the second
    hop it should include ``arc=pass``.
    """
    message = _crlf(message)
    stamped = f"Authentication-Results: {authserv_id}; {auth_results}\r\n".encode() + message
    sealer = dkim.ARC(stamped, signature_algorithm=b"rsa-sha256")
    arc_set = sealer.sign(
        selector.encode(),
        domain.encode(),
        key.private,
        authserv_id.encode(),
        include_headers=[h.encode() for h in headers],
        timestamp=int(time.time()),
    )
    if not arc_set:
        raise ValueError("dkimpy produced no ARC set (no matching Authentication-Results?)")
    return b"".join(bytes(h) for h in arc_set) + stamped


def simple_message(
    from_addr: str = "Alice <alice@example.com>",
    to: str = "bob@rcpt.example",
    subject: str = "Quarterly report",
    body: str = "Hello Bob,\r\nthe report is attached.\r\n",
    message_id: str = "<report-1@example.com>",
    extra_headers: Sequence[str] = (),
) -> bytes:
    """A small well-formed message (CRLF line ends) to sign and scan in tests."""
    lines = [
        *extra_headers,
        f"From: {from_addr}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Thu, 26 Nov 2026 10:00:00 +0000",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")
