"""Issue 23: an account of ours that starts sending like a compromised one raises an alert with
the evidence -- judged on counts (pure), counted on memory and on the real Redis, and end to end
through the gateway (real SMTP in and out, the real store, the /v1 API)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path

import httpx2
import pytest

from mailsift.config.mailflow import CompromiseSettings, DirectionSettings
from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.result import ScanResult
from mailsift.pipeline import Pipeline
from mailsift.pipeline.build import ScanOptions, build_pipeline
from mailsift.services.compromise import CompromiseMonitor, HourCounts, judge
from mailsift.services.connstate import ConnState, MemoryConnState, RedisConnState
from mailsift.store.store import Store
from mailsift.testing.gateway import RunningGateway, send_smtp
from mailsift.testing.messages import make_message
from mailsift.testing.sink import SmtpSink
from mailsift.testing.waiting import wait_until

REDIS = "redis://127.0.0.1:6379/0"
LOW = CompromiseSettings(min_messages=10, volume_ratio=5, baseline_hours=4, new_recipients=6,
                         bad_messages=3, bad_share=0.5, held_by_limit=2)


def test_judge_each_signal() -> None:
    quiet = HourCounts(messages=9, baseline=2.0, new_recipients=1, bad=0, held=0)
    assert judge(quiet, LOW) == []
    assert judge(HourCounts(10, 3.0, 0, 0, 0), LOW) == []  # 10 < 5 x 3
    (volume,) = judge(HourCounts(40, 2.0, 0, 0, 0), LOW)
    assert volume == "40 outbound messages this hour, 20x its baseline of 2.0/h"
    assert judge(HourCounts(6, 0, 6, 0, 0), LOW) == ["6 new outside recipients this hour"]
    assert judge(HourCounts(8, 0, 0, 3, 0), LOW) == []  # 3 of 8 is below half
    assert judge(HourCounts(5, 0, 0, 3, 0), LOW) == [
        "3 of 5 outbound messages this hour judged spam, phishing or malware"]
    assert judge(HourCounts(1, 0, 0, 0, 2), LOW) == [
        "2 messages this hour held by the outbound rate limit"]


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def outbound(pipeline: Pipeline, i: int, rcpt: str, *, spam: bool = False) -> ScanResult:
    text = ("XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n" if spam
            else "Hello there.\n")
    env = Envelope(mail_from="clerk@customer.test", rcpt_to=(rcpt,),
                   connection=Connection(client_ip="10.1.2.3"))
    raw = make_message(message_id=f"<m{i}@customer.test>", text=text,
                       from_="clerk@customer.test")
    result = pipeline.scan(raw, env, message_id=f"ref-{i}")
    return replace(result, verdict=replace(result.verdict, direction="outbound"))


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_monitor_counts_baseline_and_alerts_once(backend: str) -> None:
    pipeline = build_pipeline(Settings.model_validate({"scan": {"offline": True}}),
                              ScanOptions(offline=True))
    direction = DirectionSettings(accepted_domains=("customer.test",), compromise=LOW)
    prefix = f"mstest:{uuid.uuid4().hex[:12]}:"
    alerts: list[tuple[str, str]] = []

    async def main() -> None:
        state: ConnState = MemoryConnState() if backend == "memory" else RedisConnState(REDIS)
        clock = Clock()
        monitor = CompromiseMonitor(direction, state, lambda s, m: alerts.append((s, m)),
                                    prefix=prefix, clock=clock)
        try:
            for hour in range(4):  # a quiet baseline: 2 messages an hour to known partners
                clock.t += 3600
                for i in range(2):
                    assert await monitor.track(outbound(pipeline, hour * 10 + i,
                                                        f"p{i}@partner.example")) == []
            clock.t += 3600
            reasons: list[str] = []
            for i in range(12):  # the burst: the same two partners, 12 in the hour
                reasons = await monitor.track(outbound(pipeline, 100 + i,
                                                       f"p{i % 2}@partner.example"))
            assert reasons == ["12 outbound messages this hour, 6x its baseline of 2.0/h"]
            assert len(alerts) == 1  # once per realert_hours, however many signals follow
            subject, message = alerts[0]
            assert subject == "sender:clerk@customer.test"
            assert message.startswith("10 outbound messages this hour, 5x its baseline of 2.0/h")
            assert "ref-109" in message and "mailsift trace --sender clerk@customer.test" in message
        finally:
            if backend == "redis":
                client = state.client  # type: ignore[attr-defined]
                keys = [k async for k in client.scan_iter(f"{prefix}*")]
                if keys:
                    await client.delete(*keys)
            await state.aclose()

    asyncio.run(main())


def test_gateway_alerts_on_new_recipients_and_spam_with_evidence(tmp_path: Path) -> None:
    with SmtpSink() as sink:
        settings = Settings.model_validate({
            "store": {"data_dir": str(tmp_path / "data")},
            "gateway": {"next_hop_port": sink.port, "workers": 0, "relay_connections": 2},
            "smtp": {"port": 0, "hostname": "mx.test"}, "http": {"port": 0},
            "milter": {"enabled": False}, "scan": {"offline": True},
            "direction": {"accepted_domains": ["customer.test"],
                          "internal_networks": ["10.0.0.0/8"],
                          "compromise": {"new_recipients": 4, "bad_messages": 2,
                                         "bad_share": 0.3}},
        })
        with Store.open(settings.store) as store:
            admin = store.tokens.create("admin", name="adm")[0]
        with RunningGateway(settings) as gw:
            port = gw.ports["smtp"]
            for i in range(2):  # normal mail to one partner: no alert
                assert send_smtp(port, make_message(message_id=f"<ok{i}@customer.test>",
                                                    from_="clerk@customer.test"),
                                 ["ann@partner.example"], "clerk@customer.test",
                                 xforward="ADDR=10.1.2.3")[0] == 250
            for i in range(4):  # four new outside recipients in the hour
                assert send_smtp(port, make_message(message_id=f"<x{i}@customer.test>",
                                                    from_="clerk@customer.test"),
                                 [f"victim{i}@elsewhere.example"], "clerk@customer.test",
                                 xforward="ADDR=10.1.2.3")[0] == 250
            base = f"http://127.0.0.1:{gw.ports['http']}/v1/mailflow/alerts"
            auth = {"Authorization": f"Bearer {admin}"}
            got: list[dict[str, object]] = []

            def alerted() -> bool:
                got[:] = httpx2.get(base, headers=auth, timeout=30).json()
                return bool(got)

            wait_until(alerted, what="a compromised-account alert", timeout=20)
        (alert,) = got
        assert alert["kind"] == "compromised_account"
        assert alert["subject"] == "sender:clerk@customer.test"
        assert "4 new outside recipients this hour" in str(alert["message"])
        assert "mailsift trace --sender clerk@customer.test" in str(alert["message"])
