"""Rollout alerts reach the configured webhook and mailbox; a dead webhook never fails them."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

from mailsift.config.schema import Settings
from mailsift.services.alerts import Alerter
from mailsift.store.store import Store
from mailsift.testing.sink import SmtpSink, free_port


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_alert_is_stored_posted_and_mailed(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with SmtpSink() as sink:
        settings = Settings.model_validate({
            "store": {"data_dir": str(tmp_path), "release_port": sink.port},
            "rollout": {"alert_webhook": f"http://127.0.0.1:{server.server_port}/hook",
                        "alert_mail_to": ["secops@example.net"]},
        })
        with Store.open(settings.store) as store:
            alert_id = Alerter(store, settings).raise_alert(
                "breaker_rate", "rule:INVOICE_LURE", "40 quarantined of 200",
                artifact="rules:finance", version="abc")
            assert store.rollout.alerts()[0].id == alert_id
        assert sink.wait_for(1)
    server.shutdown()
    server.server_close()
    assert _Hook.received[-1]["subject"] == "rule:INVOICE_LURE"
    assert _Hook.received[-1]["artifact"] == "rules:finance"
    mail = sink.messages[0]
    assert mail.rcpt_to == ("secops@example.net",)
    assert b"breaker_rate: rule:INVOICE_LURE" in mail.data


def test_unreachable_webhook_and_mail_relay_do_not_fail_the_alert(tmp_path: Path) -> None:
    settings = Settings.model_validate({
        "store": {"data_dir": str(tmp_path), "release_port": free_port()},
        "rollout": {"alert_webhook": f"http://127.0.0.1:{free_port()}/",
                    "alert_mail_to": ["secops@example.net"]},
    })
    with Store.open(settings.store) as store:
        Alerter(store, settings, timeout=1).raise_alert("forced_promotion", "x", "y")
        assert len(store.rollout.alerts()) == 1
