"""Subject, header and banner edits: exact where they apply, the rest of the message intact."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from mailsift.delivery.headers import header_values
from mailsift.mailflow.edits import add_banner, edit_headers, has_banner
from mailsift.testing.messages import make_message

BANNER = "CAUTION: this message comes from outside the organisation."


def parsed(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_header_edits() -> None:
    raw = make_message(headers=[("X-Old", "1"), ("X-Old", "2"), ("X-Keep", "k")])
    out = edit_headers(raw, prepend_subject="[EXT] ", add={"X-New": "yes"},
                       set_={"X-Keep": "replaced"}, remove=["x-old"])
    assert list(header_values(out, "x-old")) == []
    assert list(header_values(out, "x-new")) == [b"yes"]
    assert list(header_values(out, "x-keep")) == [b"replaced"]
    assert list(header_values(out, "subject")) == [b"[EXT] Hello"]
    assert out.endswith(raw.split(b"\n\n", 1)[1])  # body untouched
    assert edit_headers(out, prepend_subject="[EXT] ").count(b"[EXT]") == 1


def test_banner_on_text_and_html_once() -> None:
    raw = make_message(text="Hi Bob,\nthe contract.\n",
                       html="<html><body><p>Hi Bob, the contract.</p></body></html>")
    out = add_banner(raw, BANNER, "<b>External sender</b>")
    msg = parsed(out)
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and rich is not None
    assert plain.get_content().startswith(BANNER)
    assert "<body><div class=\"mailsift-banner\"><b>External sender</b></div>" in \
        rich.get_content()
    assert add_banner(out, BANNER, "<b>External sender</b>") == out


def test_banner_never_twice_on_a_reply_chain() -> None:
    first = add_banner(make_message(text="Can you sign it?\n"), BANNER)
    body = parsed(first).get_body(("plain",))
    assert body is not None
    quoted = "".join("> " + line + "\n" for line in body.get_content().splitlines())
    reply = make_message(subject="Re: Hello", text="Signed.\n\nOn Friday Alice wrote:\n" + quoted)
    assert add_banner(reply, BANNER) == reply
    assert has_banner(quoted, BANNER)
    assert not has_banner("Signed.", BANNER)


def test_html_only_gets_escaped_text_banner() -> None:
    raw = make_message(text=None, html="<p>hello</p>")
    rich = parsed(add_banner(raw, "<External> & co")).get_body(("html",))
    assert rich is not None and "&lt;External&gt; &amp; co" in rich.get_content()


def test_no_text_body_means_no_change() -> None:
    raw = make_message(text=None, attachments=[("a.bin", b"\1\2", "application/octet-stream")])
    assert add_banner(raw, BANNER) == raw
