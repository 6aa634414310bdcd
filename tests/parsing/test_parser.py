from __future__ import annotations

import io
import zipfile

from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message


def test_headers_addresses_and_encoded_words() -> None:
    raw = make_message(
        subject="Grüße aus München",
        from_='"Müller, Jörg" <joerg@example.de>',
        to="a@example.net, B <b@example.net>",
        headers={"Reply-To": "other@elsewhere.example"},
    )
    msg = parse_message(raw)
    assert msg.subject == "Grüße aus München"
    assert msg.from_addr is not None
    assert msg.from_addr.display_name == "Müller, Jörg"
    assert msg.from_domain == "example.de"
    assert [a.addr for a in msg.to] == ["a@example.net", "b@example.net"]
    assert msg.reply_to[0].domain == "elsewhere.example"
    assert msg.first_header("message-id") == "<test-1@example.org>"
    assert msg.header("X-Missing") == ()


def test_html_links_keep_display_text_and_text_is_rendered() -> None:
    html = ('<html><head><style>p{}</style><script>alert(1)</script></head><body>'
            '<p>Hello <b>there</b></p><a href="http://evil.example/login">https://bank.example</a>'
            '<form action="https://collect.example/x"></form><img src="https://t.example/p.gif">'
            '</body></html>')
    msg = parse_message(make_message(text=None, html=html))
    assert "Hello there" in msg.html_text
    assert "alert" not in msg.html_text
    by_source = {u.source: u for u in msg.urls}
    assert by_source["href"].host == "evil.example"
    assert by_source["href"].display_text == "https://bank.example"
    assert by_source["form"].host == "collect.example"
    assert by_source["img"].host == "t.example"
    assert msg.body_text == msg.html_text


def test_urls_from_text_with_domains_ip_and_punycode() -> None:
    text = ("see https://mail.example.co.uk/a?b=1, www.example.com/x and http://192.0.2.1/p "
            "and http://xn--pypal-4ve.com/ and http://user@host.example/ and http://3232235777/")
    msg = parse_message(make_message(text=text))
    urls = {u.host: u for u in msg.urls}
    assert urls["mail.example.co.uk"].domain == "example.co.uk"
    assert urls["www.example.com"].domain == "example.com"
    assert urls["192.0.2.1"].is_ip
    assert urls["3232235777"].is_ip
    puny = next(u for u in msg.urls if u.punycode)
    assert puny.host == "pаypal.com"  # a Cyrillic 'а' decoded from punycode
    assert urls["host.example"].has_userinfo
    assert "https://mail.example.co.uk/a?b=1" in {u.url for u in msg.urls}  # trailing comma cut


def test_attachment_declared_vs_detected_type_and_zip_members() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("invoice.pdf.exe", b"MZ" + b"\x00" * 100)
        z.writestr("readme.txt", b"hello")
    raw = make_message(attachments=[
        ("report.pdf", b"MZ\x90\x00" + b"\x00" * 60, "application/pdf"),
        ("bundle.zip", buf.getvalue(), "application/zip"),
    ])
    msg = parse_message(raw)
    names = {a.filename: a for a in msg.attachments}
    assert names["report.pdf"].declared_type == "application/pdf"
    assert names["report.pdf"].detected_type == "application/x-msdownload"
    assert names["bundle.zip"].detected_type == "application/zip"
    member = names["invoice.pdf.exe"]
    assert member.container == "bundle.zip"
    assert member.detected_type == "application/x-msdownload"
    assert len(member.sha256) == 64


def test_encrypted_zip_member_is_flagged() -> None:
    # A zip whose member has the "encrypted" flag bit set (general purpose bit 0).
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("secret.exe", b"MZ" + b"\x00" * 10)
    data = bytearray(buf.getvalue())
    data[6] |= 1  # local header flags
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1  # central directory flags
    msg = parse_message(make_message(attachments=[("x.zip", bytes(data), "application/zip")]))
    member = next(a for a in msg.attachments if a.filename == "secret.exe")
    assert member.encrypted and member.content == b""


def test_embedded_message_is_walked() -> None:
    inner = make_message(subject="Inner phish", text="click http://inner.example/login",
                         from_="x@inner.example")
    outer = make_message(subject="FW: look", attachments=[("fw.eml", inner, "message/rfc822")])
    msg = parse_message(outer)
    assert msg.embedded and msg.embedded[0].subject == "Inner phish"
    assert any(u.host == "inner.example" for u in msg.urls)


def test_eight_bit_headers_and_charsets() -> None:
    raw = ("From: =?iso-8859-1?q?J=F6rg?= <j@example.de>\r\nSubject: caf\xc3\xa9 \xe2\x82\xac\r\n"
           "Content-Type: text/plain; charset=windows-1252\r\n\r\nPreis: 5 \x80\r\n"
           ).encode("latin-1")
    msg = parse_message(raw)
    assert msg.from_addr is not None and msg.from_addr.display_name == "Jörg"
    assert msg.subject == "café €"
    assert "5 €" in msg.text
    assert msg.defects == ()


def test_parse_never_raises_on_garbage() -> None:
    for raw in (b"", b"\xff\xfe\x00garbage", b"no headers at all", b"From:\r\n\r\n",
                b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n"):
        msg = parse_message(raw)
        assert msg.size == len(raw)
