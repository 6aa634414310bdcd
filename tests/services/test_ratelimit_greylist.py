"""Rate limits and greylisting on both state backends: real Redis (a unique key prefix per
test) and memory. Expiry-driven cases run on memory with a controlled clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from mailsift.config.reputation import GreylistSettings, RateLimitSettings
from mailsift.config.schema import Settings
from mailsift.core.auth import AuthResults, AuthStatus, DmarcResult
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.lists import ListEntry, ListSnapshot
from mailsift.core.result import ScanResult
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.services.connstate import ConnState, MemoryConnState, RedisConnState
from mailsift.services.throttle import Greylist, RateLimiter, client_network
from mailsift.testing.messages import make_message

REDIS = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except Exception:
        return False


Backend = tuple[str, str]  # (memory | redis, key prefix)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    prefix = f"mstest:{uuid.uuid4().hex[:12]}:"
    if request.param == "redis" and not _redis_up():
        pytest.fail("Redis must run on 127.0.0.1:6379 for these tests")
    yield request.param, prefix
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def run_with(backend: Backend, fn: Callable[[ConnState], Awaitable[Any]]) -> Any:
    """Run ``fn(state)`` on one event loop (the Redis client's connections belong to it)."""
    async def main() -> Any:
        state: ConnState = MemoryConnState() if backend[0] == "memory" else RedisConnState(REDIS)
        try:
            return await fn(state)
        finally:
            await state.aclose()

    return asyncio.run(main())


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_client_network() -> None:
    assert client_network("192.0.2.77") == "192.0.2.0/24"
    assert client_network("2001:db8:1:2:3::9") == "2001:db8:1:2::/64"
    assert client_network("::ffff:192.0.2.1") == "192.0.2.0/24"
    assert client_network("not-an-ip") == "not-an-ip"


def test_rate_limit_per_key(backend: Backend) -> None:
    settings = RateLimitSettings(key_prefix=backend[1], limits=[
        {"key": "client_ip", "limit": 3, "window_seconds": 60},
        {"key": "recipient", "limit": 2, "window_seconds": 60}])

    async def go(state: ConnState) -> list[Any]:
        limiter = RateLimiter(settings, state, Clock())
        out = [await limiter.check("client_ip", "192.0.2.1", "192.0.2.1") for _ in range(4)]
        out.append(await limiter.check("client_ip", "192.0.2.2", "192.0.2.2"))
        out.append(await limiter.check("client_ip", "127.0.0.1", "127.0.0.1"))  # exempt
        out += [await limiter.check("recipient", "Bob@Example.net", "192.0.2.9")
                for _ in range(3)]
        out.append(await limiter.check("sender", "a@example.org", "192.0.2.9"))  # no limit
        return out

    got = run_with(backend, go)
    assert got[:3] == [None, None, None]
    assert got[3].reason == "ratelimit_client_ip" and got[3].code == 451
    assert got[3].line == ("451 4.7.1 Too many messages from client ip 192.0.2.1, slow down and "
                           "try again later")
    assert got[4] is None and got[5] is None
    assert got[6:8] == [None, None] and got[8].reason == "ratelimit_recipient"
    assert "bob@example.net" in got[8].text
    assert got[9] is None


def test_rate_limit_ipv6_counts_per_64(backend: Backend) -> None:
    async def go(state: ConnState) -> list[Any]:
        limiter = RateLimiter(RateLimitSettings(key_prefix=backend[1], limits=[
            {"key": "client_ip", "limit": 1, "window_seconds": 60}]), state, Clock())
        return [await limiter.check("client_ip", ip, ip)
                for ip in ("2001:db8::1", "2001:db8::2", "2001:db8:0:1::1")]

    first, same64, other64 = run_with(backend, go)
    assert first is None and same64 is not None and other64 is None


def test_rate_limit_window_slides() -> None:
    clock = Clock(1_800_000_000.0)  # a bucket boundary (divisible by 60)
    limiter = RateLimiter(RateLimitSettings(limits=[
        {"key": "sender", "limit": 2, "window_seconds": 60}]), MemoryConnState(clock), clock)

    async def go() -> list[Any]:
        out = [await limiter.check("sender", "a@x.example") for _ in range(2)]
        clock.t += 61  # next bucket, the previous one still 98% inside the window
        out.append(await limiter.check("sender", "a@x.example"))
        clock.t += 120  # both buckets out of the window
        out.append(await limiter.check("sender", "a@x.example"))
        return out

    assert [d is None for d in _run(go())] == [True, True, False, True]


def _result(ip: str = "192.0.2.10", rcpts: tuple[str, ...] = ("bob@example.net",),
            mail_from: str = "alice@sender.example", **auth: Any) -> ScanResult:
    pipeline = build_pipeline(Settings(detectors={"enabled": ["parse"]}),
                              ScanOptions(offline=True))
    env = Envelope(mail_from=mail_from, rcpt_to=rcpts, connection=Connection(client_ip=ip))
    result = pipeline.scan(make_message(from_=f"Alice <{mail_from}>"), env)
    return replace(result, auth=AuthResults(**auth)) if auth else result


def test_greylist_defers_first_then_passes_retry(backend: Backend) -> None:
    clock = Clock()
    res = _result()
    others = _result(ip="192.0.2.99"), _result(rcpts=("carol@example.net",))

    async def go(state: ConnState) -> list[Any]:
        grey = Greylist(GreylistSettings(enabled=True, delay_seconds=60, auto_allow_after=3),
                        state, key_prefix=backend[1], clock=clock)
        out = [await grey.check(res, None)]
        clock.t += 30
        out.append(await grey.check(res, None))  # too early
        clock.t += 31
        out.append(await grey.check(res, None))  # retried in time: passes
        out.append(await grey.check(res, None))  # passed triplet
        out.append(await grey.check(others[0], None))  # same /24, same pair
        out.append(await grey.check(others[1], None))  # new recipient
        return out

    got = run_with(backend, go)
    assert got[0] is not None and got[0].reason == "greylist"
    assert got[0].line == "451 4.7.1 Greylisted, please try again in a few minutes"
    assert got[1] is not None
    assert got[2:5] == [None, None, None]
    # three messages passed from 192.0.2.0/24: the network is auto-allowed, even a new triplet
    assert got[5] is None


def test_greylist_new_triplet_is_deferred_before_auto_allow(backend: Backend) -> None:
    one = _result(rcpts=("bob@example.net", "carol@example.net"))

    async def go(state: ConnState) -> Any:
        grey = Greylist(GreylistSettings(enabled=True, delay_seconds=60, auto_allow_after=5),
                        state, key_prefix=backend[1], clock=Clock())
        return await grey.check(one, None)

    assert run_with(backend, go) is not None


def test_greylist_retry_window_expires() -> None:
    clock = Clock()
    grey = Greylist(GreylistSettings(enabled=True, delay_seconds=60, retry_window_seconds=600),
                    MemoryConnState(clock), key_prefix="t:", clock=clock)
    res = _result()

    async def go() -> list[Any]:
        out = [await grey.check(res, None)]
        clock.t += 700  # the first attempt is forgotten: this is a first attempt again
        out.append(await grey.check(res, None))
        clock.t += 61
        out.append(await grey.check(res, None))
        return out

    first, late, retried = _run(go())
    assert first is not None and late is not None and retried is None


def test_greylist_bypasses(backend: Backend) -> None:
    known_pairs = {("alice@known.example", "bob@example.net")}
    aligned = _result(dmarc=DmarcResult(AuthStatus.PASS, "sender.example"))
    known = _result(mail_from="alice@known.example")
    plain = _result()
    allow = ListSnapshot((ListEntry("domain", "sender.example", "allow"),), "v1")
    block = ListSnapshot((ListEntry("domain", "sender.example", "block"),), "v1")

    async def go(state: ConnState) -> list[Any]:
        grey = Greylist(GreylistSettings(enabled=True), state, key_prefix=backend[1],
                        clock=Clock(), exempt_networks=("198.51.100.0/24",),
                        known=lambda s, r: (s, r) in known_pairs)
        assert grey.bypass(aligned, None) == "DMARC-aligned"
        assert grey.bypass(plain, allow) == "allow list"
        assert grey.bypass(plain, block) == ""
        assert grey.bypass(known, None) == "known sender"
        assert grey.bypass(_result(ip="198.51.100.7"), None) == "exempt client"
        return [await grey.check(aligned, None), await grey.check(known, None),
                await grey.check(plain, allow), await grey.check(plain, None)]

    got = run_with(backend, go)
    assert got[:3] == [None, None, None]
    assert got[3] is not None  # the unknown, unaligned sender is deferred


def test_greylist_off_and_without_client() -> None:
    grey = Greylist(GreylistSettings(enabled=False), MemoryConnState(), key_prefix="t:")
    assert _run(grey.check(_result(), None)) is None
    grey = Greylist(GreylistSettings(enabled=True), MemoryConnState(), key_prefix="t:")
    assert _run(grey.check(_result(ip=""), None)) is None


def test_greylist_settings_validate() -> None:
    with pytest.raises(ValueError, match="retry_window"):
        GreylistSettings(delay_seconds=600, retry_window_seconds=300)
    with pytest.raises(ValueError, match="network"):
        RateLimitSettings(exempt_networks=("nonsense",))
