"""Receiver-side additions never reach the model."""

from __future__ import annotations

from mailsift.ml.features import extract
from mailsift.ml.receiver import is_receiver_header, sender_view
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message

_LIST_FOOTER = ("\n_______________________________________________\nDev mailing list\n"
                "dev@lists.example.org\nhttps://lists.example.org/mailman/listinfo/dev\n")


def test_receiver_headers_are_recognised() -> None:
    for name in ("Received", "X-MS-Exchange-Organization-SCL", "Authentication-Results",
                 "ARC-Seal", "Delivered-To", "X-Original-To", "Return-Path", "List-Id",
                 "X-Spam-Status", "X-Microsoft-Antispam"):
        assert is_receiver_header(name), name
    for name in ("From", "Subject", "Reply-To", "Message-ID", "X-Mailer", "Content-Type"):
        assert not is_receiver_header(name), name


def test_sender_view_drops_receiver_headers() -> None:
    raw = (b"Received: from mx.example by pot.example\r\n"
           b"X-MS-Exchange-Organization-SCL: 1\r\n"
           b"Delivered-To: phishing@pot\r\n") + make_message(to="phishing@pot")
    view = sender_view(parse_message(raw))
    names = {n.lower() for n, _ in view.headers}
    assert "received" not in names and "delivered-to" not in names
    assert not any(n.startswith("x-ms-") for n in names)
    assert {"from", "subject", "message-id"} <= names


def test_list_tag_footer_and_list_links_are_removed() -> None:
    raw = make_message(
        subject="Re: [Dev] build broken on arm64",
        text="The build is broken since yesterday." + _LIST_FOOTER,
        to="dev@lists.example.org",
        headers={"List-Id": "<dev.lists.example.org>",
                 "List-Unsubscribe": "<https://lists.example.org/mailman/options/dev>"},
    )
    view = sender_view(parse_message(raw))
    assert view.list_mail
    assert view.subject == "Re: build broken on arm64"
    assert "mailing list" not in view.body and "broken since yesterday" in view.body
    assert not any(u.host == "lists.example.org" for u in view.urls)


def test_footer_marker_early_in_body_is_kept() -> None:
    body = "Intro\n" + "_" * 30 + "\n" + "real content line\n" * 60
    raw = make_message(text=body, headers={"List-Id": "<x.example>"})
    assert "real content" in sender_view(parse_message(raw)).body


def test_recipient_is_masked() -> None:
    raw = make_message(to="phishing@pot",
                       text="Dear phishing, your mailbox phishing@pot is full.\n")
    view = sender_view(parse_message(raw), ["other@corp.example"])
    assert "phishing" not in view.body.lower()
    assert "mailbox" in view.body
    feats = extract(parse_message(raw))
    assert not any("phishing" in name for name in feats)


def test_copies_differing_only_in_receiver_headers_have_identical_features() -> None:
    body = make_message(subject="Verify your account", to="victim@corp.example",
                        text="Your account is locked. Verify: http://203.0.113.7/login\n")
    exchange = (b"Received: from a.example by tenant.onmicrosoft.example\r\n"
                b"Authentication-Results: spf=fail dkim=fail dmarc=fail\r\n"
                b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=tenant.example\r\n"
                b"X-MS-Exchange-Organization-SCL: 9\r\n"
                b"X-Forefront-Antispam-Report: SFV:SPM\r\n"
                b"Delivered-To: victim@corp.example\r\nReturn-Path: <b@x.example>\r\n")
    postfix = (b"Received: from mx2 by lists.example.org\r\n"
               b"X-Spam-Status: No\r\nX-Original-To: victim@corp.example\r\n")
    a = extract(parse_message(exchange + body))
    b = extract(parse_message(postfix + body))
    c = extract(parse_message(body))
    assert a == b == c


def test_mailman_signature_footer_is_removed() -> None:
    raw = make_message(
        text="I see, thanks for the answer.\n\n-- \nAppArmor mailing list\n"
             "AppArmor@lists.ubuntu.com\nModify settings or unsubscribe at: "
             "https://lists.ubuntu.com/mailman/listinfo/apparmor\n",
        headers={"List-Id": "<apparmor.lists.ubuntu.com>"})
    body = sender_view(parse_message(raw)).body
    assert "thanks for the answer" in body and "unsubscribe" not in body


def test_long_body_is_cut_but_its_length_is_kept() -> None:
    raw = make_message(text="word " * 5000)
    view = sender_view(parse_message(raw), max_body=1000)
    assert len(view.body) == 1000 and view.body_chars >= 25000


def test_recipient_named_in_the_subject_is_reported_and_masked() -> None:
    from mailsift.ml.receiver import sender_view
    from mailsift.parsing import parse_message
    from mailsift.testing.messages import make_message

    msg = parse_message(make_message(subject="jane@example.net: mailbox full",
                                     to="jane@example.net"))
    view = sender_view(msg)
    assert view.recipient_in_subject and "jane" not in view.subject
    assert not sender_view(parse_message(make_message(subject="Lunch"))).recipient_in_subject
