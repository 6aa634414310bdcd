"""Quarantine digests: one mail per recipient and period, exactly once across nodes, with
single-use signed action links that do nothing when tampered, expired, reused or misapplied."""

from __future__ import annotations

import asyncio
import email
import re
from email.message import Message
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from enduser_support import hold, services_for, settings_for

from mailsift.core.verdict import Category
from mailsift.services.digests import DigestService
from mailsift.services.links import LinkError, LinkProblem, LinkSigner
from mailsift.services.self_service import SelfService
from mailsift.store import Store
from mailsift.testing.sink import SmtpSink
from mailsift.testing.storekit import FakeClock

BOB, CAROL = "bob@corp.example", "carol@corp.example"
_LINK = re.compile(r"https?://\S+/q/(\w+)/([^?\s]+)\?t=([\w.-]+)")


def _parse(data: bytes) -> Message:
    return email.message_from_bytes(data)


def _text(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def _links(text: str) -> list[tuple[str, str, str]]:
    return [(m.group(1), unquote(m.group(2)), m.group(3)) for m in _LINK.finditer(text)]


def _digest_for(sink: SmtpSink, rcpt: str) -> list[Message]:
    return [_parse(m.data) for m in sink.messages if rcpt in m.rcpt_to]


def _setup(store: Store, sink: SmtpSink, clock: FakeClock) -> DigestService:
    now = clock.now()
    hold(store, "sp1", Category.SPAM, (BOB, CAROL), subject="Cheap watches", at=now - 600)
    hold(store, "ph1", Category.PHISH, (BOB,), subject="Verify your account", at=now - 500)
    hold(store, "mal1", Category.MALWARE, (BOB,), subject="Invoice attached", at=now - 400)
    hold(store, "bk1", Category.BULK, (CAROL,), subject="Newsletter", at=now - 300)
    hold(store, "old", Category.SPAM, (BOB,), subject="Too old", at=now - 3 * 86400)
    return DigestService(store, settings_for(store, sink), node="n1")


def test_one_digest_per_recipient_and_period_never_twice(store: Store, sink: SmtpSink,
                                                         clock: FakeClock) -> None:
    svc = _setup(store, sink, clock)
    run = asyncio.run(svc.run())
    assert sorted(run.sent) == [BOB, CAROL] and not run.failed
    assert sink.wait_for(2)
    (bob,) = _digest_for(sink, BOB)
    text = _text(bob)
    assert "Cheap watches" in text and "Verify your account" in text
    assert "Invoice attached" not in text  # malware: never listed by default
    assert "Too old" not in text  # before the first period
    assert "spam" in text and "looks like phishing" in text  # the category in plain words
    assert bob["Auto-Submitted"] == "auto-generated"
    assert bob["X-Auto-Response-Suppress"] == "All"
    assert bob["List-Unsubscribe"].startswith("<http")
    assert bob.get_content_type() == "multipart/alternative"
    html = next(p for p in bob.walk() if p.get_content_type() == "text/html")
    body = html.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert b"<img" not in body and b"<script" not in body  # no tracking pixel, nothing active
    kinds = {(k, m) for k, m, _ in _links(text)}
    assert ("release", "sp1") in kinds and ("notjunk", "sp1") in kinds
    assert ("request", "ph1") in kinds and ("release", "ph1") not in kinds  # phish: ask only
    # again, same period: nothing; later, with nothing new: nothing
    assert asyncio.run(svc.run()).sent == []
    clock.advance(86400)
    assert asyncio.run(svc.run()).sent == []
    assert len(sink.messages) == 2
    # a new message: the next digest lists it alone
    hold(store, "sp2", Category.SPAM, (BOB,), subject="Second batch", at=clock.now() - 10)
    assert asyncio.run(svc.run()).sent == [BOB]
    assert sink.wait_for(3)
    newest = _text(_digest_for(sink, BOB)[-1])
    assert "Second batch" in newest and "Cheap watches" not in newest


def test_two_nodes_send_each_digest_once(store: Store, sink: SmtpSink, clock: FakeClock) -> None:
    svc = _setup(store, sink, clock)
    other = DigestService(store, svc.settings, node="n2")

    async def both() -> list[list[str]]:
        runs = await asyncio.gather(svc.run(), other.run())
        return [r.sent for r in runs]

    sent = asyncio.run(both())
    assert sorted(sent[0] + sent[1]) == [BOB, CAROL]
    assert sink.wait_for(2)
    assert sorted(r for m in sink.messages for r in m.rcpt_to) == [BOB, CAROL]


def test_opt_out_language_and_dry_run(store: Store, sink: SmtpSink, clock: FakeClock) -> None:
    svc = _setup(store, sink, clock)
    svc = DigestService(store, settings_for(store, sink, digest={
        "languages": {"@corp.example": "de"}, "opt_out": ["carol@corp.example"]}), node="n1")
    (preview,) = svc.preview()
    assert preview.recipient == BOB and "Nachricht" in preview.subject
    assert "sieht nach Phishing aus" in preview.text
    assert sink.messages == []  # dry run: nothing sent, nothing claimed
    svc.enduser.set_pref(BOB, opted_out=True)
    run = asyncio.run(svc.run())
    assert run.sent == [] and run.opted_out == 2


def test_a_refused_digest_is_retried(store: Store, clock: FakeClock) -> None:
    with SmtpSink(reply="451 4.3.0 try later") as down:
        svc = _setup(store, down, clock)
        run = asyncio.run(svc.run())
        assert sorted(run.failed) == [BOB, CAROL] and run.sent == []
    with SmtpSink() as up:
        svc = DigestService(store, settings_for(store, up), node="n1")
        assert sorted(asyncio.run(svc.run()).sent) == [BOB, CAROL]


# -- action links -----------------------------------------------------------------------------
def _self_service(store: Store, svc: DigestService) -> SelfService:
    services = services_for(store, svc.settings)
    return SelfService(store, svc.signer, quarantine=services.quarantine,
                       release=services.release, reports=services.reports,
                       policies=services.quarantine.policies)


def _released(sink: SmtpSink) -> list[tuple[str, ...]]:
    return [m.rcpt_to for m in sink.messages if m.header("X-Mailsift-Release-Id")]


def test_a_link_releases_once(store: Store, sink: SmtpSink, clock: FakeClock) -> None:
    svc = _setup(store, sink, clock)
    asyncio.run(svc.run())
    assert sink.wait_for(2)
    links = {(k, m): t for k, m, t in _links(_text(_digest_for(sink, BOB)[0]))}
    self_service = _self_service(store, svc)
    token = links[("release", "sp1")]
    preview = self_service.preview(token, "release", "sp1")  # a GET: changes nothing
    assert preview.subject == "Cheap watches" and preview.link.recipient == BOB
    assert _released(sink) == []
    out = asyncio.run(self_service.confirm(token, "release", "sp1", client="192.0.2.1"))
    assert "released" in out.done
    assert sink.wait_for(3) and _released(sink) == [(BOB,)]
    with pytest.raises(LinkError) as used:
        asyncio.run(self_service.confirm(token, "release", "sp1"))
    assert used.value.problem is LinkProblem.USED
    rec = store.trace.get("sp1")
    assert rec is not None
    assert {r.recipient: r.status for r in rec.recipients} == {BOB: "released",
                                                               CAROL: "quarantined"}
    actions = [e.action for e in store.audit.entries()]
    assert "link.release" in actions and "link.refused" in actions
    # "request" on a phish-class message files a request, nothing is released
    out = asyncio.run(self_service.confirm(links[("request", "ph1")], "request", "ph1"))
    assert store.requests.list(state="pending")[0].message == "ph1"
    assert _released(sink) == [(BOB,)]


def test_security_bad_links_release_nothing(store: Store, sink: SmtpSink,
                                            clock: FakeClock) -> None:
    svc = _setup(store, sink, clock)
    self_service = _self_service(store, svc)
    signer = svc.signer
    good = signer.make("release", "sp1", BOB, clock.now() + 3600)
    payload, mac = good.split(".")

    def refused(token: str, purpose: str, message: str) -> LinkProblem:
        with pytest.raises(LinkError) as exc:
            asyncio.run(self_service.confirm(token, purpose, message))
        return exc.value.problem

    # tampered: another message or recipient swapped into the payload, or a changed MAC
    forged = signer.make("release", "sp1", CAROL, clock.now() + 3600).split(".")[0]
    assert refused(f"{forged}.{mac}", "release", "sp1") is LinkProblem.TAMPERED
    assert refused(f"{payload}.{mac[:-2]}AA", "release", "sp1") is LinkProblem.TAMPERED
    assert refused("garbage", "release", "sp1") is LinkProblem.MALFORMED
    other_key = LinkSigner(b"k" * 32).make("release", "sp1", BOB, clock.now() + 3600)
    assert refused(other_key, "release", "sp1") is LinkProblem.TAMPERED
    # cross-message and cross-action: the token is genuine but not for this
    assert refused(good, "release", "bk1") is LinkProblem.WRONG_MESSAGE
    assert refused(good, "notjunk", "sp1") is LinkProblem.WRONG_ACTION
    # malware: a link made for it (by a misconfiguration) is still refused by the policy
    mal = signer.make("release", "mal1", BOB, clock.now() + 3600)
    assert refused(mal, "release", "mal1") is LinkProblem.NOT_ALLOWED
    # expired
    old = signer.make("release", "sp1", BOB, clock.now() + 60)
    clock.advance(61)
    assert refused(old, "release", "sp1") is LinkProblem.EXPIRED
    assert _released(sink) == []
    rec = store.trace.get("sp1")
    assert rec is not None and {r.status for r in rec.recipients} == {"quarantined"}


def test_opt_out_link(store: Store, sink: SmtpSink, clock: FakeClock) -> None:
    svc = _setup(store, sink, clock)
    (preview,) = [d for d in svc.preview() if d.recipient == CAROL]
    (optout,) = [t for k, _, t in _links(preview.text) if k == "optout"]
    self_service = _self_service(store, svc)
    asyncio.run(self_service.confirm(optout, "optout", "-"))
    assert [d.recipient for d in svc.preview()] == [BOB]


def test_link_urls_are_well_formed(store: Store, sink: SmtpSink, clock: FakeClock) -> None:
    svc = _setup(store, sink, clock)
    url = svc.link("release", "a/b c", BOB, clock.now() + 60)
    parts = urlsplit(url)
    assert parts.path == "/q/release/a%2Fb%20c" and "t" in parse_qs(parts.query)
