"""Counter backends, including the real Redis on 127.0.0.1:6379 (skipped if unreachable)."""

from __future__ import annotations

import uuid

import pytest

from mailsift.rollout.counters import MemoryCounters, RedisCounters


def backends() -> list[object]:
    out: list[object] = [MemoryCounters()]
    try:
        import redis

        redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
        out.append(RedisCounters("redis://127.0.0.1:6379/0",
                                 prefix=f"mailsift-test:{uuid.uuid4().hex}"))
    except Exception as exc:
        print(f"Redis not reachable, testing memory counters only: {exc}")
    return out


@pytest.mark.parametrize("counters", backends(), ids=lambda c: type(c).__name__)
def test_add_and_sum_windows(counters: MemoryCounters | RedisCounters) -> None:
    counters.add(100, {("all", "seen"): 10, ("rule:INVOICE", "hits"): 2})
    counters.add(101, {("all", "seen"): 5, ("rule:INVOICE", "hits"): 3})
    counters.add(105, {("all", "seen"): 7})
    assert counters.sums(["all", "rule:INVOICE"], 100, 101) == {
        ("all", "seen"): 15, ("rule:INVOICE", "hits"): 5}
    assert counters.sums(["all"], 102, 110) == {("all", "seen"): 7}
    assert counters.subjects(100, 101) == {"all", "rule:INVOICE"}
    if isinstance(counters, RedisCounters):
        counters.clear()


def test_two_nodes_share_redis_counters() -> None:
    try:
        a = RedisCounters("redis://127.0.0.1:6379/0", prefix="mailsift-test:shared")
        a.client.ping()
    except Exception as exc:
        pytest.skip(f"Redis not reachable: {exc}")
    b = RedisCounters("redis://127.0.0.1:6379/0", prefix="mailsift-test:shared")
    a.clear()
    a.add(7, {("all", "seen"): 1})
    b.add(7, {("all", "seen"): 2})
    assert a.sums(["all"], 7, 7) == {("all", "seen"): 3}
    a.clear()
