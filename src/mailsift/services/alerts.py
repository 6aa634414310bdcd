"""Alerts of safe rollout (breaker trips, forced promotions): stored, logged, and sent to a
webhook and by mail when configured. Sending never raises: an unreachable webhook or mail relay
is logged, and the stored alert stays the record."""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import urllib.request
from email.message import EmailMessage
from typing import Any

from mailsift.config.schema import Settings
from mailsift.store.store import Store

__all__ = ["Alerter"]

log = logging.getLogger("mailsift.alerts")


class Alerter:
    def __init__(self, store: Store, settings: Settings, *, timeout: float = 5.0) -> None:
        self.store = store
        self.settings = settings
        self.timeout = timeout

    def raise_alert(self, kind: str, subject: str, message: str, **meta: str) -> int:
        alert_id = self.store.rollout.alert(kind, subject, message, **meta)
        log.warning("ALERT %s %s: %s", kind, subject, message)
        payload = {"id": alert_id, "kind": kind, "subject": subject, "message": message, **meta}
        self._webhook(payload)
        self._mail(payload)
        return alert_id

    def _webhook(self, payload: dict[str, Any]) -> None:
        url = self.settings.rollout.alert_webhook
        if not url:
            return
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read(1024)
        except (OSError, ValueError) as exc:
            log.error("alert webhook %s failed: %s", url, exc)

    def _mail(self, payload: dict[str, Any]) -> None:
        rcpts = list(self.settings.rollout.alert_mail_to)
        if not rcpts:
            return
        store = self.settings.store
        msg = EmailMessage()
        msg["From"] = f"mailsift <mailsift@{socket.getfqdn()}>"
        msg["To"] = ", ".join(rcpts)
        msg["Subject"] = f"[mailsift] {payload['kind']}: {payload['subject']}"
        msg.set_content(payload["message"] + "\n\n" + json.dumps(payload, indent=2) + "\n")
        try:
            with smtplib.SMTP(*store.release_target(),
                              timeout=self.timeout) as smtp:
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("alert mail to %s failed: %s", ", ".join(rcpts), exc)
