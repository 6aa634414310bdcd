"""Drive the same messages through one mail-flow adapter and read back what it left behind.

``run_adapter("smtp" | "milter", data_dir, messages)`` builds a gateway from settings (the real
composition root, pipeline and store; the breaker gets a clock the caller moves), sends every
message through the SMTP content filter's path (``Gateway.process``, relaying to a real SMTP
sink) or the milter's (``MilterService.decide``), and returns the trace rows (verdict, score,
deciding step, finding codes per recipient) and the circuit breaker's counts. Used by
tests/interfaces/test_adapter_parity.py and bench/adapter_parity.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from mailsift.app import GatewayParts, build_gateway
from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.rollout.breaker import Breaker
from mailsift.rollout.counters import MemoryCounters
from mailsift.store.query import TraceQuery
from mailsift.store.store import Store
from mailsift.testing.sink import SmtpSink

__all__ = ["Clock", "TraceRow", "envelope", "gateway_settings", "run_adapter", "with_gateway"]

T = TypeVar("T")
TraceRow = tuple[str, str, str, str, float, str, tuple[str, ...]]


class Clock:
    """A clock the caller moves (``clock.now += 60``)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def gateway_settings(data_dir: Path, sink_port: int = 9, **extra: Any) -> Settings:
    """Offline scanning, in-process workers, minute buckets, history warm after 5 messages."""
    base: dict[str, Any] = {
        "store": {"data_dir": str(data_dir)},
        "gateway": {"workers": 0, "next_hop_port": sink_port, "relay_connections": 2},
        "milter": {"quarantine": "store"},
        "scan": {"offline": True},
        "history": {"min_learned": 5},
        "rollout": {"bucket_seconds": 60, "window_buckets": 5, "baseline_buckets": 30,
                    "min_hits": 5, "min_shadow_hours": 0},
    }
    for key, value in extra.items():
        base[key] = {**base.get(key, {}), **value}
    return Settings.model_validate(base)


def with_gateway(settings: Settings, clock: Clock,
                 body: Callable[[GatewayParts], Awaitable[T]]) -> T:
    """Build the gateway's parts, give its breaker ``clock``, run ``body`` on a fresh loop."""
    async def main() -> T:
        parts = build_gateway(settings)
        assert parts.watcher.breaker is not None  # [rollout] breaker_enabled
        parts.watcher.breaker = Breaker(MemoryCounters(), settings.rollout, clock)
        try:
            return await body(parts)
        finally:
            await parts.aclose()

    return asyncio.run(main())


def envelope(i: int, rcpt: str = "tom@example.net") -> Envelope:
    return Envelope(mail_from="sender@example.org", rcpt_to=(rcpt,),
                    connection=Connection(client_ip=f"192.0.2.{i % 200 + 1}"))


def run_adapter(adapter: str, data_dir: Path, messages: Sequence[bytes]
                ) -> tuple[list[TraceRow], dict[tuple[str, str], int]]:
    from mailsift.interfaces.milter.decision import MilterService

    with SmtpSink() as sink:
        settings = gateway_settings(data_dir, sink.port)
        clock = Clock()

        async def body(parts: GatewayParts) -> dict[tuple[str, str], int]:
            milter = MilterService(parts.gateway, settings.gateway, settings.milter)
            for i, raw in enumerate(messages):
                clock.now += 1
                if adapter == "milter":
                    await milter.decide(raw, envelope(i))
                else:
                    await parts.gateway.process(raw, envelope(i))
                # The history learner runs on the writer thread after the message; wait for it
                # (a look-up queued behind it) so both runs see the same history at each scan.
                await parts.recorder.statuses("sync")
            breaker = parts.watcher.breaker
            assert breaker is not None  # with_gateway gave it one
            breaker.flush()
            last = breaker.bucket()
            first = last - 100_000
            return dict(breaker.counters.sums(breaker.counters.subjects(first, last), first,
                                              last))

        counts = with_gateway(settings, clock, body)
    rows: list[TraceRow] = []
    with Store.open(settings.store) as store:
        for item in store.trace.search(TraceQuery(), limit=len(messages) * 4 + 10).items:
            rec = store.trace.get(item.message)
            codes = tuple(sorted(f["code"] for f in rec.findings)) if rec else ()
            rows.append((rec.subject if rec else "", item.recipient, item.category, item.action,
                         round(item.score, 3), item.decided_by, codes))
    return sorted(rows), counts
