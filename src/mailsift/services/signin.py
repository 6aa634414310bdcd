"""Signing in with a password, throttled: the only place mailsift checks a password.

Failed sign-ins are counted in the store (``store.throttle``) per username — normalised as the
accounts are, and whether or not the account exists, so a lockout reveals nothing about which
names exist — and per client address (IPv6 per network: one host usually holds a /64), more
generously, so one address cannot spray passwords over many usernames. While a key is locked
even the right password is refused (``Throttled``, which the console answers with 429 and
``Retry-After``) and the password is not checked at all, which also keeps a flood of guesses
from costing a scrypt hash each. A successful sign-in clears its username's counter; the
address keeps its failures (a valid account must not let an address reset its count).

Every outcome is audited under the name that was typed: ``web.login``, ``web.login_failed``
and ``web.login_throttled`` (with the client address), never with the password.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, datetime

from mailsift.config.gateway import LoginThrottleSettings
from mailsift.core.errors import MailsiftError
from mailsift.store import Store
from mailsift.store.throttle import ADDRESS, USER, Key, Limit
from mailsift.store.users import UserInfo, normalise_username

__all__ = ["SignInService", "Throttled", "address_key"]


class Throttled(MailsiftError):
    """Too many failed sign-ins for this username or from this address: wait until ``until``."""

    def __init__(self, until: float, now: float) -> None:
        self.until = until
        self.retry_after = max(1, math.ceil(until - now))
        when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M:%S")
        super().__init__(f"too many failed sign-ins: try again in {_wait(self.retry_after)} "
                         f"(after {when} UTC)")


def _wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


def address_key(address: str, ipv6_prefix: int = 64) -> str:
    """What a client address is counted as: the IPv4 address, or its IPv6 network."""
    text = address.strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text.lower()  # not an IP (a Unix socket, a test client): counted as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{ipv6_prefix}", strict=False))
    return str(ip)


class SignInService:
    def __init__(self, store: Store, settings: LoginThrottleSettings | None = None, *,
                 via: str = "web") -> None:
        self.store = store
        self.settings = settings or LoginThrottleSettings()
        self.via = via
        s = self.settings
        self.user_limit = Limit(s.user_attempts, s.window_seconds, s.lockout_seconds,
                                s.max_lockout_seconds, s.forget_seconds)
        self.address_limit = Limit(s.address_attempts, s.window_seconds, s.lockout_seconds,
                                   s.max_lockout_seconds, s.forget_seconds)

    def sign_in(self, username: str, password: str, address: str | None = None
                ) -> UserInfo | None:
        """The user when the password is right; None when it is not (or the account is
        unknown or disabled: the caller cannot tell which). Raises ``Throttled``."""
        name = normalise_username(username)
        actor = name[:320] or "-"
        where = {"address": address} if address else {}
        user_key = Key(USER, name, self.user_limit)
        others = [Key(ADDRESS, address_key(address, self.settings.ipv6_prefix),
                      self.address_limit)] if address else []
        throttle = self.store.throttle if self.settings.enabled else None
        if throttle is not None:
            refusal = throttle.begin([user_key, *others])
            if refusal is not None:
                self.store.audit.append(actor, f"{self.via}.login_throttled", "", {
                    **where, "locked": refusal.kind, "until": refusal.until})
                raise Throttled(refusal.until, self.store.clock.now())
        user = self.store.users.authenticate(name, password)
        if user is None:
            locked = throttle.failed([user_key, *others]) if throttle is not None else None
            detail = {**where, "locked_until": locked} if locked else where
            self.store.audit.append(actor, f"{self.via}.login_failed", "", detail)
            return None
        if throttle is not None:
            throttle.succeeded([user_key], others)
        self.store.audit.append(user.username, f"{self.via}.login", "", where)
        return user
