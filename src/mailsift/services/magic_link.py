"""Recipients sign in to the console with a one-time link mailed to their own address.

Asking for a link (``request``) always gets the same answer and takes the same time, whether
or not mailsift knows the address: the check and the mail happen afterwards, in the background
(``deliver``). A link goes only to an address that may have a quarantine here — one mailsift
has recorded mail for, or one in ``[self_service] domains`` — and the request is counted per
address and per client address in the store's throttle (``store.throttle``), so neither a
mailbox nor the relay can be flooded. The link (``services.links``, purpose ``signin``) lasts
``link_ttl_minutes`` and works once; following it shows a page that signs in with a POST (mail
scanners pre-fetch links). The first use creates a ``recipient`` console account for that
mailbox (no password anyone knows: links only); an address that is the username of a staff
account is refused (staff sign in with their password). Every step is audited
(``web.magic_link.*``).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from sqlalchemy import select

from mailsift.config.schema import Settings
from mailsift.delivery.relay import Relay
from mailsift.services.digests import MAIL_POLICY
from mailsift.services.links import LinkError, LinkProblem, LinkSigner
from mailsift.store import Store
from mailsift.store.db import read_only
from mailsift.store.enduser import EndUserStore
from mailsift.store.models import TraceRow
from mailsift.store.throttle import Key, Limit
from mailsift.store.users import UserInfo

__all__ = ["MagicLinkService"]

log = logging.getLogger("mailsift.magic_link")
_ADDRESS = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


class MagicLinkService:
    def __init__(self, store: Store, settings: Settings, *, signer: LinkSigner | None = None,
                 relay_factory: Callable[[], Relay] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.conf = settings.enduser.self_service
        self.signer = signer or LinkSigner.for_settings(settings)
        self.enduser = EndUserStore(store.engine, store.clock)
        host, port = settings.store.release_target()
        s = settings.store
        self.relay_factory = relay_factory or (
            lambda: Relay(host, port, timeout=s.release_timeout, helo=s.release_helo))
        hour = 3600.0
        self.address_limit = Limit(self.conf.per_address_per_hour, hour, hour, hour, hour)
        self.client_limit = Limit(self.conf.per_client_per_hour, hour, hour, hour, hour)

    def _known(self, address: str) -> bool:
        domain = address.rpartition("@")[2]
        if domain in {d.lower().lstrip("@") for d in self.conf.domains}:
            return True
        with read_only(self.store.engine) as conn:
            return conn.execute(select(TraceRow.id).where(TraceRow.recipient == address)
                                .limit(1)).first() is not None

    async def deliver(self, typed: str, client: str = "") -> str:
        """Check, count and mail: run after the answer was sent. Returns what happened (for
        the audit log and tests), never tells the person who asked."""
        address = typed.strip().lower()
        where = {"client": client} if client else {}
        if not self.conf.magic_link or not _ADDRESS.match(address):
            outcome = "invalid"
        else:
            keys = [Key("magic_addr", address, self.address_limit)]
            if client:
                keys.append(Key("magic_client", client, self.client_limit))
            refusal = self.store.throttle.begin(keys)
            if refusal is not None:
                outcome = "throttled"
            elif not self._known(address):
                outcome = "unknown"
            else:
                staff = self.store.users.get(address)
                if staff is not None and staff.role != "recipient":
                    outcome = "staff"
                else:
                    outcome = await self._send(address)
        self.store.audit.append(address[:320] or "-", "web.magic_link.request", "",
                                {**where, "outcome": outcome})
        return outcome

    async def _send(self, address: str) -> str:
        now = self.store.clock.now()
        expires = now + self.conf.link_ttl_minutes * 60
        token = self.signer.make("signin", "", address, expires)
        digest = self.settings.enduser.digest
        url = f"{digest.base_url}/q/signin/-?t={token}"
        msg = EmailMessage(policy=MAIL_POLICY)
        msg["From"] = formataddr((digest.from_name, digest.from_address))
        msg["To"] = address
        msg["Subject"] = "Your sign-in link to the mail quarantine"
        msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
        msg["Message-ID"] = make_msgid("signin", digest.from_address.rpartition("@")[2]
                                       or "mailsift.local")
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        minutes = int(self.conf.link_ttl_minutes)
        msg.set_content(
            f"Someone (hopefully you) asked to sign in to the mail quarantine as {address}.\n\n"
            f"Open this link within {minutes} minutes to sign in; it works once:\n\n{url}\n\n"
            "If you did not ask, ignore this mail: nothing happens without the link.\n")
        async with self.relay_factory() as relay:
            outcome = await relay.send(msg.as_bytes(), digest.from_address, [address])
        if address in outcome.accepted:
            return "sent"
        log.warning("sign-in link to %s not sent: %s", address, outcome.reply)
        return "not_sent"

    def check(self, token: str) -> str:
        """The address of a genuine, unexpired, unused sign-in link (LinkError otherwise)."""
        link = self.signer.read(token, now=self.store.clock.now(), purpose="signin")
        if self.enduser.link_used(link.id):
            raise LinkError(LinkProblem.USED)
        return link.recipient

    def confirm(self, token: str, client: str = "") -> UserInfo:
        """Use the link: the recipient account (made on first use) to start a session for."""
        try:
            link = self.signer.read(token, now=self.store.clock.now(), purpose="signin")
            if not self.enduser.use_link(link.id, "signin", "", link.recipient, client):
                raise LinkError(LinkProblem.USED)
        except LinkError as exc:
            self.store.audit.append("link:-", "web.magic_link.refused", "",
                                    {"problem": exc.problem.value, "client": client})
            raise
        user = self.store.users.get(link.recipient)
        if user is None:
            # links only: a password nobody knows (an admin may set one later)
            user = self.store.users.create(link.recipient, secrets.token_urlsafe(32),
                                           "recipient", mailbox=link.recipient)
            self.store.audit.append(f"link:{link.recipient}", "user.create", link.recipient,
                                    {"role": "recipient", "via": "magic_link"})
        if user.role != "recipient" or user.disabled:
            self.store.audit.append(f"link:{link.recipient}", "web.magic_link.refused", "",
                                    {"problem": "not a recipient account", "client": client})
            raise LinkError(LinkProblem.NOT_ALLOWED,
                            "This address signs in with a password, not a link.")
        self.store.audit.append(user.username, "web.login", "",
                                {"via": "magic_link", "address": client})
        return user
