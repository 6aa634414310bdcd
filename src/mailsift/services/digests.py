"""Quarantine notification digests: one mail per recipient and period listing what was held.

``DigestService.run`` (scheduled by ``mailsift serve``, or ``mailsift digest send --now``):

1. collect the quarantined copies (``status = quarantined``) of the listed categories — by
   default those whose quarantine policy says ``notify``, never malware unless
   ``[digest] include_malware`` — received after each recipient's watermark (the newest message
   its last sent digest covered; one period back for a recipient never sent one);
2. drop opted-out recipients (``[digest] opt_out`` or their own "stop these" link);
3. claim ``(recipient, period)`` in the store (``store.enduser``): whichever node inserts the
   row sends that digest, so every node may run the schedule and each digest goes out once;
4. render text and HTML parts in the recipient's language, with one signed single-use link per
   action the policy allows (``services.links``), send each through the release path's relay
   (``[store] release_*``, i.e. the next hop) with ``Auto-Submitted: auto-generated``, and mark
   the claims sent (the watermark moves) or failed (claimable again in the same period).

The mail carries no tracking: no images, no remote resources, no per-open identifiers; its
only links are the action links and the console's sign-in page.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import socket
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select

from mailsift.config.enduser import DigestSettings
from mailsift.config.schema import Settings
from mailsift.delivery.relay import Relay
from mailsift.services.links import LinkSigner
from mailsift.services.quarantine_policy import QuarantinePolicies
from mailsift.store import Store
from mailsift.store.db import read_only
from mailsift.store.enduser import EndUserStore
from mailsift.store.models import TraceRow

__all__ = ["MAIL_POLICY", "Digest", "DigestItem", "DigestRun", "DigestService"]

log = logging.getLogger("mailsift.digests")

#: CRLF, and no folding of long headers: folding would RFC 2047-encode the List-Unsubscribe
#: URL (it has no space to fold at) and no client could follow it.
MAIL_POLICY = SMTP.clone(max_line_length=998)

_BUILTIN = Path(str(files("mailsift.services").joinpath("digest_templates")))


@dataclass(frozen=True, slots=True)
class DigestItem:
    message: str
    sender: str
    subject: str
    received_at: float
    category: str
    reason: str


@dataclass(slots=True)
class Digest:
    recipient: str
    language: str
    items: list[DigestItem]
    until: float
    more: int = 0
    raw: bytes = b""
    subject: str = ""
    text: str = ""


@dataclass(slots=True)
class DigestRun:
    period: int
    due: int = 0
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    opted_out: int = 0
    taken: int = 0  # claimed by another node (or an earlier run) for this period
    items: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "due": self.due, "sent": len(self.sent),
                "failed": self.failed, "opted_out": self.opted_out,
                "already_sent_or_claimed": self.taken, "items": self.items,
                "seconds": round(self.seconds, 3)}


def _reason(verdict_json: str) -> str:
    try:
        verdict = json.loads(verdict_json or "{}")
    except ValueError:
        return ""
    text = str(verdict.get("explanation") or "")
    return text if len(text) <= 240 else text[:237] + "..."


class DigestService:
    def __init__(self, store: Store, settings: Settings, *,
                 relay_factory: Callable[[], Relay] | None = None,
                 signer: LinkSigner | None = None, node: str = "") -> None:
        self.store = store
        self.settings = settings
        self.conf: DigestSettings = settings.enduser.digest
        self.policies = QuarantinePolicies(settings.enduser.access)
        self.enduser = EndUserStore(store.engine, store.clock)
        self.signer = signer or LinkSigner.for_settings(settings)
        host, port = settings.store.release_target()
        s = settings.store
        self.relay_factory = relay_factory or (
            lambda: Relay(host, port, timeout=s.release_timeout, helo=s.release_helo))
        self.node = node or socket.gethostname()
        dirs = [d for d in (self.conf.template_dir, str(_BUILTIN)) if d]
        loader = FileSystemLoader(dirs)
        self._html = Environment(loader=loader, autoescape=select_autoescape(["html"]),
                                 undefined=StrictUndefined, trim_blocks=False)
        self._text = Environment(loader=loader, autoescape=False, undefined=StrictUndefined)
        self._strings: dict[str, dict[str, Any]] = {}

    # -- what is due ----------------------------------------------------------------------------
    @property
    def period_seconds(self) -> float:
        return self.conf.period_hours * 3600.0

    def period(self, now: float) -> int:
        return int(now // self.period_seconds)

    def categories(self) -> tuple[str, ...]:
        if self.conf.categories:
            cats = self.conf.categories
        else:
            from mailsift.config.enduser import DEFAULT_CATEGORY_POLICIES

            cats = tuple(c for c in DEFAULT_CATEGORY_POLICIES if self.policies.allows(c, "notify"))
        return tuple(c for c in cats if c != "malware" or self.conf.include_malware)

    def _opted_out(self, recipient: str, stored: dict[str, tuple[bool, str]]) -> bool:
        if stored.get(recipient, (False, ""))[0]:
            return True
        domain = "@" + recipient.rpartition("@")[2]
        return recipient in self.conf.opt_out or domain in self.conf.opt_out

    def _language(self, recipient: str, stored: dict[str, tuple[bool, str]]) -> str:
        mine = stored.get(recipient, (False, ""))[1]
        domain = "@" + recipient.rpartition("@")[2]
        return (mine or self.conf.languages.get(recipient) or self.conf.languages.get(domain)
                or self.conf.language)

    def collect(self, now: float, recipient: str | None = None) -> tuple[list[Digest], int]:
        """The digests due now (not claimed: see ``run``) and how many recipients opted out."""
        cats = self.categories()
        if not cats:
            return [], 0
        marks = self.enduser.watermarks([recipient.lower()] if recipient else None)
        first = now - self.period_seconds
        horizon = min([first, *marks.until.values()])
        stmt = (select(TraceRow.recipient, TraceRow.message_pk, TraceRow.received_at,
                       TraceRow.from_addr, TraceRow.mail_from, TraceRow.subject,
                       TraceRow.category, TraceRow.verdict_json)
                .where(TraceRow.action == "quarantine", TraceRow.status == "quarantined",
                       TraceRow.category.in_(cats), TraceRow.received_at > horizon,
                       TraceRow.received_at <= now)
                .order_by(TraceRow.recipient, TraceRow.received_at))
        if recipient:
            stmt = stmt.where(TraceRow.recipient == recipient.lower())
        held: dict[str, list[DigestItem]] = defaultdict(list)
        with read_only(self.store.engine) as conn:
            for r in conn.execute(stmt):
                if r.received_at <= marks.of(r.recipient, first):
                    continue
                held[r.recipient].append(DigestItem(
                    r.message_pk, r.from_addr or r.mail_from or "", r.subject or "",
                    r.received_at, r.category, _reason(r.verdict_json)))
        prefs = self.enduser.prefs(held)
        out: list[Digest] = []
        opted = 0
        for rcpt, items in held.items():
            if self._opted_out(rcpt, prefs):
                opted += 1
                continue
            until = max(i.received_at for i in items)
            items.sort(key=lambda i: i.received_at, reverse=True)
            shown = items[: self.conf.max_items]
            out.append(Digest(rcpt, self._language(rcpt, prefs), shown, until,
                              more=len(items) - len(shown)))
        return out, opted

    # -- rendering ------------------------------------------------------------------------------
    def strings(self, language: str) -> dict[str, Any]:
        if language not in self._strings:
            base = tomllib.loads((_BUILTIN / "en.toml").read_text("utf-8"))
            for folder in (_BUILTIN, Path(self.conf.template_dir) if self.conf.template_dir
                           else None):
                path = folder / f"{language}.toml" if folder else None
                if path is not None and path.is_file() and language.isalnum():
                    extra = tomllib.loads(path.read_text("utf-8"))
                    base = {**base, **extra,
                            "category": {**base["category"], **extra.get("category", {})}}
            self._strings[language] = base
        return self._strings[language]

    def link(self, purpose: str, message: str, recipient: str, expires: float) -> str:
        token = self.signer.make(purpose, message, recipient, expires)
        where = quote(message, safe="") if message else "-"
        return f"{self.conf.base_url}/q/{purpose}/{where}?t={token}"

    def render(self, digest: Digest, now: float) -> Digest:
        t = self.strings(digest.language)
        expires = now + self.conf.link_ttl_hours * 3600.0
        rows = []
        for item in digest.items:
            acts = self.policies.actions(item.category)
            links: list[tuple[str, str]] = []
            if "release" in acts:
                links.append((t["release"], self.link("release", item.message,
                                                      digest.recipient, expires)))
            elif "request_release" in acts:
                links.append((t["request"], self.link("request", item.message,
                                                      digest.recipient, expires)))
            if "report" in acts:
                links.append((t["notjunk"], self.link("notjunk", item.message,
                                                      digest.recipient, expires)))
            rows.append({
                "sender": item.sender, "subject": item.subject or "(no subject)",
                "date": datetime.fromtimestamp(item.received_at, UTC)
                .strftime("%Y-%m-%d %H:%M UTC"),
                "category_words": t["category"].get(item.category, item.category),
                "reason": item.reason, "links": links,
            })
        optout = self.link("optout", "", digest.recipient, expires)
        values = {
            "t": t, "lang": digest.language, "recipient": digest.recipient, "items": rows,
            "more": digest.more, "signin_url": f"{self.conf.base_url}/signin/link",
            "optout_url": optout,
            "expires": datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        count = len(digest.items) + digest.more
        subject = t["subject"].format(count=count)
        text = self._text.get_template("digest.txt").render(**values, subject=subject)
        html = self._html.get_template("digest.html").render(**values, subject=subject)
        digest.raw = self._mime(digest, subject, text, html, optout, now)
        digest.subject, digest.text = subject, text
        return digest

    def _mime(self, digest: Digest, subject: str, text: str, html: str, optout: str,
              now: float) -> bytes:
        """The mail, assembled directly: ``email``'s header registry re-parses every header
        and cost more than everything else of a digest run together (measured, bench/)."""
        boundary = "=_mailsift_" + secrets.token_hex(12)
        domain = self.conf.from_address.rpartition("@")[2] or "mailsift.local"
        headers = [
            ("From", formataddr((self.conf.from_name, self.conf.from_address), "utf-8")),
            ("To", digest.recipient),
            ("Subject", subject if subject.isascii() else Header(subject, "utf-8").encode()),
            ("Date", format_datetime(datetime.fromtimestamp(now, UTC))),
            ("Message-ID", f"<digest.{secrets.token_hex(12)}@{domain}>"),
            # RFC 3834: machine-made; out-of-office and other auto-replies must not answer it
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
            ("Precedence", "bulk"),
            ("List-Unsubscribe", f"<{optout}>"),
            ("Content-Language", digest.language),
            ("MIME-Version", "1.0"),
            ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
        ]
        lines = [f"{k}: {v}" for k, v in headers]
        for subtype, body in (("plain", text), ("html", html)):
            lines += ["", f"--{boundary}", f'Content-Type: text/{subtype}; charset="utf-8"',
                      "Content-Transfer-Encoding: base64", "",
                      base64.encodebytes(body.encode("utf-8")).decode("ascii").rstrip("\n")]
        lines += ["", f"--{boundary}--", ""]
        return "\r\n".join(lines).replace("\n", "\r\n").replace("\r\r\n", "\r\n").encode()

    # -- sending --------------------------------------------------------------------------------
    def preview(self, now: float | None = None, recipient: str | None = None) -> list[Digest]:
        """``--dry-run``: what would be sent now, rendered, without claiming or sending."""
        when = self.store.clock.now() if now is None else now
        digests, _ = self.collect(when, recipient)
        return [self.render(d, when) for d in digests]

    async def run(self, now: float | None = None, recipient: str | None = None) -> DigestRun:
        started = time.perf_counter()
        when = self.store.clock.now() if now is None else now
        period = self.period(when)
        run = DigestRun(period)
        self.enduser.expire_claims()
        digests, run.opted_out = self.collect(when, recipient)
        run.due = len(digests)
        won = self.enduser.claim(period, [(d.recipient, d.until, len(d.items) + d.more)
                                          for d in digests],
                                 node=self.node, lease=self.conf.lease_seconds)
        mine = [d for d in digests if d.recipient in won]
        run.taken = run.due - len(mine)
        if mine:
            await self._send_all(mine, when, run)
        run.items = sum(len(d.items) + d.more for d in mine if d.recipient in run.sent)
        run.seconds = time.perf_counter() - started
        if run.due:
            self.store.audit.append(f"digest:{self.node}", "digest.run", str(period),
                                    run.to_dict())
        log.info("digests: %d sent, %d failed, %d already sent or claimed, %d opted out",
                 len(run.sent), len(run.failed), run.taken, run.opted_out)
        return run

    async def _send_all(self, digests: Sequence[Digest], now: float, run: DigestRun) -> None:
        queue: asyncio.Queue[Digest] = asyncio.Queue()
        for d in digests:
            queue.put_nowait(d)
        results: list[tuple[str, str, float, int, str]] = []
        sender = self.conf.from_address

        async def worker() -> None:
            async with self.relay_factory() as relay:
                while True:
                    try:
                        digest = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    self.render(digest, now)
                    outcome = await relay.send(digest.raw, sender, [digest.recipient])
                    count = len(digest.items) + digest.more
                    if digest.recipient in outcome.accepted:
                        run.sent.append(digest.recipient)
                        results.append((digest.recipient, "sent", digest.until, count,
                                        outcome.reply))
                    elif digest.recipient in outcome.uncertain:
                        # may have been queued: not sent again (its messages roll over)
                        run.failed[digest.recipient] = f"uncertain: {outcome.reply}"
                        results.append((digest.recipient, "uncertain", digest.until, count,
                                        outcome.reply))
                    else:
                        why = outcome.refused.get(digest.recipient, outcome.reply)
                        run.failed[digest.recipient] = why
                        results.append((digest.recipient, "failed", digest.until, count, why))
                    digest.raw = b""  # 2,000 rendered mails need not stay in memory
                    if len(results) >= 200:
                        self.enduser.finish(run.period, results[:])
                        results.clear()

        workers = min(self.settings.store.release_connections, len(digests))
        try:
            await asyncio.gather(*(worker() for _ in range(workers)))
        finally:
            if results:
                self.enduser.finish(run.period, results)
