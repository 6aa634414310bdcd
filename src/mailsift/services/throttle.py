"""Connection-level defence answered with 4xx: rate limits (at RCPT) and greylisting (at the
end of DATA, after the scan, so its bypasses can read the message's authentication).

Both keep their state in a :class:`~mailsift.services.connstate.ConnState` (Redis shared by every
node, or memory) and decide nothing about content: a deferral only asks the sending server to
try again later, so no message is lost.

* **Rate limits** (``[[ratelimit.limits]]``): per client IP (IPv6 per /64), envelope sender,
  authenticated user or recipient, over a sliding window (this bucket plus the previous one
  weighted by how much of it still lies inside the window); and per outbound sender of ours
  (``outbound_sender``), at the end of DATA once the direction is known.
* **Greylisting** (``[greylist]``): triplet (client /24 or /64, envelope sender, recipient).
  A triplet seen for the first time, or retried before ``delay_seconds``, is deferred; a retry
  inside ``retry_window_seconds`` passes and the triplet stays passed. A client network whose
  messages passed ``auto_allow_after`` times passes at once. Never greylisted: exempt client
  networks, mail matching an admin *allow* entry, DMARC-aligned mail, and senders the sender
  history knows from delivered mail.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass

from mailsift.config.reputation import GreylistSettings, RateLimitSettings
from mailsift.core.lists import ListSnapshot
from mailsift.core.result import ScanResult
from mailsift.pipeline import message_facts
from mailsift.policy.lists import match_entries
from mailsift.services.connstate import ConnState

__all__ = ["Deferral", "Greylist", "RateLimiter", "client_network"]


@dataclass(frozen=True, slots=True)
class Deferral:
    """Why a message or recipient is answered 4xx, and the text of that answer."""

    reason: str  # ratelimit_<key> | greylist
    text: str
    code: int = 451

    @property
    def line(self) -> str:
        return f"{self.code} {self.text}"


def client_network(ip: str, v4_prefix: int = 24, v6_prefix: int = 64) -> str:
    """The network a client is counted by (``192.0.2.0/24``); the address itself if unparsable."""
    try:
        addr = ipaddress.ip_address(ip.strip("[]").removeprefix("IPv6:"))
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = v4_prefix if addr.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


class _Exempt:
    def __init__(self, networks: tuple[str, ...]) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def __call__(self, ip: str | None) -> bool:
        if not ip:
            return False
        try:
            addr = ipaddress.ip_address(ip.strip("[]").removeprefix("IPv6:"))
        except ValueError:
            return False
        return any(addr.version == n.version and addr in n for n in self.networks)


class RateLimiter:
    """Counts per key and window; ``check`` answers a deferral once a limit is exceeded."""

    def __init__(self, settings: RateLimitSettings, state: ConnState,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.state = state
        self.clock = clock
        self.exempt = _Exempt(settings.exempt_networks)

    @property
    def active(self) -> bool:
        return bool(self.settings.limits)

    async def check(self, key: str, value: str | None, client_ip: str | None = None
                    ) -> Deferral | None:
        """Count one message (one recipient for ``recipient``) for ``value`` under every limit on
        ``key``; the first limit exceeded answers."""
        if not value or self.exempt(client_ip):
            return None
        value = value.lower()
        counted = client_network(value, 32, 64) if key == "client_ip" else value
        for limit in self.settings.limits:
            if limit.key != key:
                continue
            if await self._over(key, counted, limit.limit, limit.window_seconds):
                text = self.settings.text.format(key=key.replace("_", " "), value=value)
                return Deferral(f"ratelimit_{key}", text)
        return None

    async def outbound(self, sender: str | None, client_ip: str | None = None
                       ) -> Deferral | None:
        """The ``outbound_sender`` limits for one outbound message of ``sender``. A message
        over a limit is not counted (its retries would otherwise keep the sender blocked); with
        several nodes the read and the count are two steps, so a burst can pass a limit by at
        most one message per node."""
        if not sender or self.exempt(client_ip):
            return None
        value = sender.lower()
        limits = [x for x in self.settings.limits if x.key == "outbound_sender"]
        for limit in limits:
            if await self._over("outbound_sender", value, limit.limit - 1,
                                limit.window_seconds, count=False):
                text = self.settings.text.format(key="outbound sender", value=value)
                return Deferral("ratelimit_outbound_sender", text)
        for limit in limits:
            await self._over("outbound_sender", value, limit.limit, limit.window_seconds)
        return None

    async def _over(self, key: str, value: str, limit: int, window: int, *,
                    count: bool = True) -> bool:
        now = self.clock()
        bucket = int(now // window)
        base = f"{self.settings.key_prefix}rl:{key}:{window}:{value}:"
        if count:
            current = await self.state.incr(base + str(bucket), 2 * window)
        else:
            current = int(await self.state.get(base + str(bucket)) or 0)
        previous = int(await self.state.get(base + str(bucket - 1)) or 0)
        inside = 1.0 - (now - bucket * window) / window  # share of the last bucket still in
        return current + previous * inside > limit


class Greylist:
    """Triplet greylisting with auto-allow and bypasses (see the module docstring)."""

    def __init__(self, settings: GreylistSettings, state: ConnState, *, key_prefix: str,
                 exempt_networks: tuple[str, ...] = (),
                 known: Callable[[str, str], bool] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.state = state
        self.prefix = f"{key_prefix}gl:"
        self.exempt = _Exempt(exempt_networks)
        self.known = known
        self.clock = clock

    def bypass(self, result: ScanResult, lists: ListSnapshot | None) -> str:
        """Why this message is never greylisted, or ``""``."""
        env = result.envelope
        if self.exempt(env.client_ip):
            return "exempt client"
        facts = message_facts(result.message, env, result.auth)
        if facts.auth_aligned:
            return "DMARC-aligned"
        now = self.clock()
        if any(e.action == "allow" for e in match_entries(lists, facts, now, "admin")):
            return "allow list"
        sender = facts.from_addr or facts.mail_from
        if self.known is not None and sender:
            try:
                if any(self.known(sender, r.lower()) for r in env.rcpt_to):
                    return "known sender"
            except Exception:  # history trouble must not defer mail
                return ""
        return ""

    async def check(self, result: ScanResult, lists: ListSnapshot | None) -> Deferral | None:
        """Defer unless every recipient's triplet has passed (or the message bypasses)."""
        env = result.envelope
        if not self.settings.enabled or not env.client_ip or not env.rcpt_to:
            return None
        net = client_network(env.client_ip)
        s = self.settings
        if await self.state.get(f"{self.prefix}auto:{net}") is not None:
            return None
        if self.bypass(result, lists):
            return None
        now = self.clock()
        sender = (env.mail_from or "").lower()
        deferred = False
        for rcpt in env.rcpt_to:
            key = f"{self.prefix}t:{net}|{sender}|{rcpt.lower()}"
            seen = await self.state.get(key)
            if seen == "pass":
                continue
            if seen is None:
                await self.state.set(key, f"{now:.3f}", s.retry_window_seconds, only_new=True)
                deferred = True
            elif now - float(seen) < s.delay_seconds:
                deferred = True
            else:
                await self.state.set(key, "pass", s.pass_seconds)
        if deferred:
            return Deferral("greylist", s.text)
        passes = await self.state.incr(f"{self.prefix}n:{net}", s.auto_allow_seconds)
        if passes >= s.auto_allow_after:
            await self.state.set(f"{self.prefix}auto:{net}", "1", s.auto_allow_seconds)
        return None
