"""The milter's own parts without an MTA: rebuilding the message from callbacks, the socket
spec, reply texts, and the decision taken on the gateway (real pipeline, real store).
The full protocol with a real Postfix is in tests/integration/test_postfix_milter.py."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from mailsift.app import build_gateway
from mailsift.config.schema import Settings
from mailsift.core.envelope import Connection, Envelope
from mailsift.core.errors import ConfigError
from mailsift.interfaces.milter import MilterDecision, MilterService, parse_socket_spec
from mailsift.interfaces.milter.decision import split_reply
from mailsift.interfaces.milter.message import Transaction, fold_value, strip_brackets
from mailsift.interfaces.milter.server import _is_forged
from mailsift.store.store import Store
from mailsift.testing.messages import make_message

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_transaction_rebuilds_the_message_with_crlf_and_folded_headers() -> None:
    txn = Transaction(connection=Connection(client_ip="192.0.2.1"))
    txn.start("<>", ("BODY=8BITMIME", "SMTPUTF8"))
    txn.rcpt_to += [strip_brackets("<bob@example.net>"), strip_brackets("carol@example.net")]
    txn.headers += [(b"Received", b"from a\n\tby b"), (b"Subject", b"Gr\xc3\xbc\xc3\x9fe"),
                    (b"received", b"from c")]
    txn.body.append(b"line 1\r\nline 2\r\n")
    assert txn.raw() == (b"Received: from a\r\n\tby b\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n"
                         b"received: from c\r\n\r\nline 1\r\nline 2\r\n")
    env = txn.envelope()
    assert env.mail_from == "" and env.rcpt_to == ("bob@example.net", "carol@example.net")
    assert env.smtputf8 and env.client_ip == "192.0.2.1"
    assert [(n, i) for n, i, _ in txn.occurrences()] == [
        ("received", 1), ("subject", 1), ("received", 2)]
    # a second message on the same connection starts clean but keeps the connection
    txn.start("<a@example.org>", ())
    assert txn.headers == [] and txn.rcpt_to == [] and not txn.smtputf8
    assert txn.envelope().client_ip == "192.0.2.1"


def test_socket_spec() -> None:
    assert parse_socket_spec("inet:9900@127.0.0.1") == ("inet", "127.0.0.1", 9900)
    assert parse_socket_spec("inet:0") == ("inet", "127.0.0.1", 0)
    assert parse_socket_spec("inet6:9900@::1") == ("inet6", "::1", 9900)
    assert parse_socket_spec("unix:/run/ms.sock") == ("unix", "/run/ms.sock", 0)
    assert parse_socket_spec("local:/run/ms.sock") == ("unix", "/run/ms.sock", 0)
    for bad in ("9900", "tcp:9900@h", "inet:x@h", "inet:70000@h"):
        with pytest.raises(ConfigError):
            parse_socket_spec(bad)


def test_reply_texts_and_folding() -> None:
    assert split_reply("5.7.1 Message rejected (ref ms-x)", "5.7.1") == (
        "5.7.1", "Message rejected (ref ms-x)")
    assert split_reply("no code here", "4.7.1") == ("4.7.1", "no code here")
    folded = fold_value("mailsift.local; " + "spf=pass smtp.mailfrom=a@example.org " * 5)
    assert all(len(line) <= 77 for line in folded.split("\n\t"))
    assert " ".join(folded.split()) == " ".join(
        ("mailsift.local; " + "spf=pass smtp.mailfrom=a@example.org " * 5).split())


def test_forged_headers_are_recognised() -> None:
    assert _is_forged("x-mailsift-category", b"clean", "mailsift.local")
    assert _is_forged("authentication-results", b"mailsift.local; spf=pass", "mailsift.local")
    assert not _is_forged("authentication-results", b"mx.example.com; spf=pass",
                          "mailsift.local")
    assert not _is_forged("subject", b"x-mailsift-", "mailsift.local")


def _settings(tmp: Path, quarantine: str = "store") -> Settings:
    return Settings.model_validate({
        "store": {"data_dir": str(tmp / "data")},
        "gateway": {"workers": 0, "junk_subject_tag": "[SPAM] "},
        "milter": {"quarantine": quarantine},
        "scan": {"offline": True},
        "policy": {"policies": [
            {"name": "strict", "recipients": ["reject@example.net"],
             "actions": {"phish_high": "reject", "phish": "reject"}},
            {"name": "later", "recipients": ["later@example.net"],
             "actions": {"spam_high": "tempfail"}},
        ]},
    })


def _decide(settings: Settings, cases: list[tuple[bytes, tuple[str, ...]]]
            ) -> list[MilterDecision]:
    async def main() -> list[MilterDecision]:
        parts = build_gateway(settings)
        try:
            service = MilterService(parts.gateway, settings.gateway, settings.milter)
            out = []
            for raw, rcpts in cases:
                env = Envelope(mail_from="alice@example.org", rcpt_to=rcpts,
                               connection=Connection(client_ip="192.0.2.10"))
                out.append(await service.decide(raw, env))
            return out
        finally:
            await parts.aclose()

    return asyncio.run(main())


def test_decisions_apply_the_strictest_recipient_action(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    phish = (SAMPLES / "phish-credential.eml").read_bytes()
    gtube = (SAMPLES / "spam-gtube.eml").read_bytes()
    ham = make_message(message_id="<milter-ham@example.org>")
    bob = ("bob@example.net",)
    d_ham, d_phish, d_mixed, d_junk, d_later, d_again = _decide(settings, [
        (ham, bob), (phish, bob), (phish, ("bob@example.net", "reject@example.net")),
        (gtube, bob), (gtube, ("later@example.net",)), (phish, bob)])
    assert d_ham.kind == "accept" and d_ham.action == "deliver"
    names = [n for n, _ in d_ham.add_headers]
    assert names[:1] == ["Authentication-Results"] and "X-Mailsift-Ref" in names
    assert d_phish.kind == "discard" and d_phish.category == "phish_high"
    assert d_mixed.kind == "reject" and (d_mixed.rcode, d_mixed.xcode) == ("550", "5.7.1")
    assert f"ref {d_mixed.ref}" in d_mixed.text
    assert d_junk.kind == "accept" and d_junk.subject_tag == "[SPAM] "
    assert ("X-Spam-Flag", "YES") in d_junk.add_headers
    assert d_later.kind == "tempfail" and d_later.rcode == "451"
    # the same message again (an MTA retry) has the same reference and is recorded once
    assert d_again.ref == d_phish.ref and d_again.kind == "discard"
    with Store.open(settings.store) as store:
        record = store.trace.get(d_phish.ref)
        assert record is not None and record.blob_sha256
        assert store.trace.raw(d_phish.ref).startswith(phish[:40])
        mixed = store.trace.get(d_mixed.ref)
        assert mixed is not None
        statuses: dict[str, Any] = {r.recipient: r.status for r in mixed.recipients}
        # bob's own policy said quarantine, but the milter rejected the message for everyone
        assert statuses == {"bob@example.net": "rejected", "reject@example.net": "rejected"}
        later = store.trace.get(d_later.ref)
        assert later is not None and [r.status for r in later.recipients] == ["deferred"]


def test_hold_mode_keeps_the_message_at_the_mta(tmp_path: Path) -> None:
    phish = (SAMPLES / "phish-credential.eml").read_bytes()
    (decision,) = _decide(_settings(tmp_path, "hold"), [(phish, ("bob@example.net",))])
    assert decision.kind == "hold" and decision.ref in decision.text
    assert any(n == "X-Mailsift-Category" for n, _ in decision.add_headers)
    with Store.open(_settings(tmp_path, "hold").store) as store:
        record = store.trace.get(decision.ref)
        # Postfix holds it; mailsift's quarantine must not offer it for release a second time
        assert record is not None and [r.status for r in record.recipients] == ["accepted"]


def _milter_edits(decision: MilterDecision, raw: bytes) -> list[tuple[str, ...]]:
    """The header edits the milter asks of the MTA for ``raw`` (no libmilter: recorded)."""
    from mailsift.interfaces.milter import server

    cls = server._milter_class()
    conn: Any = cls.__new__(cls)
    conn.txn = Transaction()
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            name, value = conn.txn.headers[-1]
            conn.txn.headers[-1] = (name, value + b"\n" + line)
        else:
            name, _, value = line.partition(b":")
            conn.txn.headers.append((name, value.strip()))
    blank = re.search(rb"\r?\n\r?\n", raw)
    conn.txn.body.append(raw[blank.end():] if blank else b"")
    edits: list[tuple[str, ...]] = []
    conn.replacebody = lambda body: edits.append(("body", body.decode("utf-8", "replace")))
    conn.txn.rcpt_to = list(decision.rcpt_to or ())  # the message's own recipients
    conn.addrcpt = lambda rcpt: edits.append(("addrcpt", rcpt))
    conn.delrcpt = lambda rcpt: edits.append(("delrcpt", rcpt))
    conn.chgheader = lambda n, i, v: edits.append(("chg", n, str(i), v))
    conn.addheader = lambda n, v, i=-1: edits.append(("add", n, v))
    conn.quarantine = lambda reason: edits.append(("hold", reason))
    ctx: Any = type("Ctx", (), {"authserv_id": "mailsift.local"})()
    conn._apply(decision, ctx)
    return edits


def test_a_released_copy_keeps_its_release_marks_through_the_milter(tmp_path: Path) -> None:
    """A released copy passing the milter again (released to the MTA's port 25) is delivered
    and keeps ``X-Mailsift-Release-Id``/``-Sig``; other incoming ``X-Mailsift-*`` still go,
    and a copied mark on other mail is removed like any outsider's header (issue 18)."""
    from mailsift.services.release_mark import ReleaseMarks

    settings = _settings(tmp_path)
    phish = (SAMPLES / "phish-credential.eml").read_bytes()
    marks = ReleaseMarks.of(settings.store)  # the gateway's key (data_dir/release.key)
    copy = marks.mark(b"X-Mailsift-Category: clean\r\n" + phish, "rel-7")
    # the two mark headers copied onto other mail
    forged = (b"\r\n".join(copy.split(b"\r\n")[:2]) + b"\r\n"
              + make_message(subject="Other", text="Click here.\n"))
    bob = ("bob@example.net",)
    released, other = _decide(settings, [(copy, bob), (forged, bob)])
    assert released.kind == "accept" and released.action == "deliver"
    assert released.release_id == "rel-7" and other.release_id == ""
    removed = {(e[1], e[2]) for e in _milter_edits(released, copy) if e[0] == "chg"}
    assert removed == {("x-mailsift-category", "1")}
    removed = {e[1] for e in _milter_edits(other, forged) if e[0] == "chg"}
    assert removed == {"x-mailsift-release-id", "x-mailsift-release-sig"}
    assert _is_forged("x-mailsift-release-id", b"rel-7", "mailsift.local")
    assert not _is_forged("x-mailsift-release-id", b"rel-7", "mailsift.local", released=True)
    assert _is_forged("x-mailsift-category", b"clean", "mailsift.local", released=True)


def test_flow_edits_become_milter_operations() -> None:
    from mailsift.interfaces.milter.message import edits_between
    from mailsift.mailflow.edits import add_banner, edit_headers

    raw = make_message(subject="Numbers", headers={"X-Old": "1", "X-Spam-Status": "No"},
                       text="Body.\n")
    edited = edit_headers(raw, prepend_subject="[EXT] ", add={"X-New": "yes"},
                          remove=("X-Old",))
    ops, body = edits_between(raw, edited)
    assert ("change", "Subject", 1, "[EXT] Numbers") in ops
    assert ("change", "X-Old", 1, "") in ops
    assert ("insert", "X-New", 0, "yes") in ops
    assert body is None and len(ops) == 3
    ops, body = edits_between(raw, add_banner(raw, "CAUTION"), drop=("x-spam-",))
    assert ("change", "X-Spam-Status", 1, "") in ops
    assert body is not None and body.decode().startswith("CAUTION")
    assert edits_between(raw, raw) == ([], None)
