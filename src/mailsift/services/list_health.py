"""Watching DNS lists for silent failure: alert when a list answers only errors.

A list that times out, SERVFAILs or answers 127.255.255.x (the operators' "refused" code: a
resolver they do not allow, an exceeded free quota) lists nothing, and the reputation detector
rightly treats that as "not listed". Unwatched, the protection is simply gone. This observer
reads the operational findings of each scanned message (``REPUTATION_DNS_ERROR``,
``REPUTATION_LIST_REFUSED``, whose evidence starts with the list's name) and, once a list has
failed on ``after`` messages in a row, raises one alert (stored, logged, webhook/mail as
configured) and sets ``mailsift_dnslist_failing{list}`` to 1; the first message on which the list
answered again clears it. A message on which a list was not failing counts as an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Gauge

from mailsift.core.result import ScanResult

__all__ = ["ListHealth"]

log = logging.getLogger("mailsift.dnslists")
_ERROR_CODES = ("REPUTATION_DNS_ERROR", "REPUTATION_LIST_REFUSED")


class ListHealth:
    def __init__(self, lists: Iterable[str], alert: Callable[[str, str], None], *,
                 registry: CollectorRegistry, after: int = 20) -> None:
        self.lists = tuple(lists)
        self.alert = alert
        self.after = after
        self.streak = dict.fromkeys(self.lists, 0)
        self.failing: set[str] = set()
        self.gauge = Gauge("mailsift_dnslist_failing", "1 while a DNS list answers only errors",
                           ["list"], registry=registry)
        for name in self.lists:
            self.gauge.labels(name).set(0)

    def observe(self, result: ScanResult) -> None:
        failed: dict[str, str] = {}
        for f in result.findings:
            if f.code in _ERROR_CODES:
                for line in f.evidence:
                    name = line.split(" ", 1)[0]
                    failed.setdefault(name, line)
        for name in self.lists:
            if name in failed:
                self.streak[name] += 1
                if self.streak[name] >= self.after and name not in self.failing:
                    self.failing.add(name)
                    self.gauge.labels(name).set(1)
                    text = (f"DNS list {name} answered only errors on the last "
                            f"{self.streak[name]} messages; it lists nothing until fixed. "
                            f"Last: {failed[name]}")
                    log.error("%s", text)
                    self.alert(f"DNS list {name} is failing", text)
            else:
                self.streak[name] = 0
                if name in self.failing:
                    self.failing.discard(name)
                    self.gauge.labels(name).set(0)
                    log.warning("DNS list %s answers again", name)
