"""Connection and transaction facts (the SMTP envelope), kept apart as aiosmtpd does."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailsift.core.state import compact_state

__all__ = ["Connection", "Envelope"]


@compact_state
@dataclass(frozen=True, slots=True)
class Connection:
    """Facts about the SMTP connection: who connected and how."""

    client_ip: str | None = None
    client_name: str | None = None
    helo: str | None = None
    tls: bool = False


@compact_state
@dataclass(frozen=True, slots=True)
class Envelope:
    """One SMTP transaction: sender, recipients and the connection it arrived on.

    ``mail_from`` is ``""`` for the null sender (bounces) and ``None`` when unknown (a stored
    message scanned after the fact).
    """

    mail_from: str | None = None
    rcpt_to: tuple[str, ...] = ()
    connection: Connection = field(default_factory=Connection)
    smtputf8: bool = False

    @property
    def client_ip(self) -> str | None:
        return self.connection.client_ip

    @property
    def helo(self) -> str | None:
        return self.connection.helo

    @property
    def tls(self) -> bool:
        return self.connection.tls

    @property
    def mail_from_domain(self) -> str | None:
        if not self.mail_from or "@" not in self.mail_from:
            return None
        return self.mail_from.rsplit("@", 1)[1].lower()
