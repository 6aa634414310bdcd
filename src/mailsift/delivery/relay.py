"""SMTP client to the next hop (aiosmtplib), used to re-deliver released quarantine.

``Relay.send`` runs one SMTP transaction and reports, per recipient, which of three things
happened, because release idempotency depends on telling them apart:

* ``accepted``  - the next hop answered 250 to DATA: delivered.
* ``refused``   - refused (RCPT or DATA reply, or the connection failed before DATA): certainly
  not delivered, safe to try again.
* ``uncertain`` - the message was being handed over when the connection broke or timed out: the
  next hop may or may not have queued it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

import aiosmtplib

__all__ = ["Relay", "RelayOutcome", "smtp_path"]

# An envelope address is passed on as it arrived (our SMTP server already parsed it), never
# re-parsed as a header address; what it may not contain outside a quoted local part is what
# could smuggle parameters or commands into MAIL/RCPT.
_QUOTED_LOCAL = re.compile(r'^"(?:[^"\\\r\n]|\\.)*"')
_UNSAFE = re.compile(r'[\s<>"\x00-\x1f\x7f]')


@dataclass(frozen=True, slots=True)
class RelayOutcome:
    accepted: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)
    uncertain: tuple[str, ...] = ()
    reply: str = ""


def smtp_path(address: str) -> str:
    """``<address>`` for MAIL FROM / RCPT TO (``<>`` for the null sender); ``ValueError`` for an
    address that cannot be put on a command line safely."""
    if _UNSAFE.search(_QUOTED_LOCAL.sub("", address, count=1)):
        raise ValueError(f"address {address!r} cannot be sent on an SMTP command line")
    return f"<{address}>"


class Relay:
    """One reusable SMTP session to the next hop; reconnects after a failure."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0, helo: str = "",
                 start_tls: bool | None = False) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.helo = helo or None
        self.start_tls = start_tls
        self._smtp: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> Relay:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()

    def abort(self) -> None:
        """Drop the connection without QUIT (after a cancellation mid-transaction)."""
        self._drop()

    async def _session(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        smtp = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout,
                               local_hostname=self.helo, start_tls=self.start_tls)
        await smtp.connect()
        try:  # EHLO now, so the extensions are known before the first MAIL
            await smtp.ehlo()
        except aiosmtplib.SMTPHeloError:
            await smtp.helo()
        self._smtp = smtp
        return smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None

    async def send(self, raw: bytes, mail_from: str | None,
                   rcpt_to: Sequence[str]) -> RelayOutcome:
        """Send ``raw`` with this envelope in one transaction."""
        rcpts = list(dict.fromkeys(rcpt_to))
        refused: dict[str, str] = {}
        paths: dict[str, str] = {}
        for r in rcpts:
            try:
                paths[r] = smtp_path(r)
            except ValueError:
                refused[r] = "553 5.1.3 Recipient address cannot be relayed"
        try:
            # "<>" is the null sender as aiosmtpd spells it (and older trace rows kept it)
            sender = smtp_path("" if not mail_from or mail_from.strip() == "<>" else mail_from)
        except ValueError:
            reply = "553 5.1.7 Sender address cannot be relayed"
            return RelayOutcome(refused={r: reply for r in rcpts}, reply=reply)
        utf8 = not (sender.isascii() and all(p.isascii() for p in paths.values()))
        try:
            smtp = await self._session()
            if utf8 and not smtp.supports_extension("smtputf8"):
                reply = "553 5.6.7 The next hop does not support SMTPUTF8 addresses"
                return RelayOutcome(refused={r: reply for r in rcpts}, reply=reply)
            options = [b"SMTPUTF8"] if utf8 else []
            if not raw.isascii() and smtp.supports_extension("8bitmime"):
                options.append(b"BODY=8BITMIME")
            # execute_command rather than mail()/rcpt(): those re-parse the address as a
            # header address (email.utils.parseaddr), a tenth of the gateway's CPU, and would
            # refuse what SMTPUTF8 allows.
            resp = await smtp.execute_command(b"MAIL", b"FROM:" + sender.encode(), *options)
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            return RelayOutcome(refused={r: f"connection: {exc}" for r in rcpts},
                                reply=f"connection: {exc}")
        if resp.code != 250:
            await self._reset()
            return RelayOutcome(refused={r: f"{resp.code} {resp.message}" for r in rcpts},
                                reply=f"{resp.code} {resp.message}")
        accepted: list[str] = []
        for r, path in paths.items():
            try:
                resp = await smtp.execute_command(b"RCPT", b"TO:" + path.encode())
            except (aiosmtplib.SMTPException, OSError) as exc:
                self._drop()
                refused.update({x: f"connection: {exc}" for x in rcpts if x not in refused})
                return RelayOutcome(refused=refused, reply=f"connection: {exc}")
            if resp.code in (250, 251):
                accepted.append(r)
            else:
                refused[r] = f"{resp.code} {resp.message}"
        if not accepted:
            await self._reset()
            return RelayOutcome(refused=refused, reply="no recipient accepted")
        try:
            resp = await smtp.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            # The next hop answered: a definite "not taken".
            await self._reset()
            refused.update({r: f"{exc.code} {exc.message}" for r in accepted})
            return RelayOutcome(refused=refused, reply=f"{exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Broken during the hand-over: it may have been queued. Never call this refused.
            self._drop()
            return RelayOutcome(refused=refused, uncertain=tuple(accepted),
                                reply=f"lost during DATA: {exc}")
        return RelayOutcome(accepted=tuple(accepted), refused=refused,
                            reply=f"{resp.code} {resp.message}")

    async def _reset(self) -> None:
        if self._smtp is None:
            return
        try:
            await self._smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._drop()
