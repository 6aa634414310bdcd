"""Built-in checks: each fires on its case and stays quiet on the look-alike legitimate case."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailsift.core.message import ParsedMessage
from mailsift.rules.checks import CHECKS, make_check
from mailsift.rules.fields import MessageView

Factory = Callable[..., ParsedMessage]


def run(name: str, msg: ParsedMessage, **args: object) -> tuple[str, ...]:
    return make_check(name, args)(MessageView(msg))


def test_every_check_has_a_doc() -> None:
    assert all(spec.doc for spec in CHECKS.values())


def test_link_text_mismatch(mkmsg: Factory) -> None:
    bad = '<a href="https://evil.test/x">https://www.paypal.com/</a>'
    assert run("link_text_domain_mismatch", mkmsg(text=None, html=bad)) == (
        "shows paypal.com, goes to evil.test",)
    same = '<a href="https://click.paypal.com/track">www.paypal.com</a>'
    assert run("link_text_domain_mismatch", mkmsg(text=None, html=same)) == ()
    words = '<a href="https://evil.test/x">Click here to log in</a>'
    assert run("link_text_domain_mismatch", mkmsg(text=None, html=words)) == ()


def test_ip_literal_ignores_private_addresses(mkmsg: Factory) -> None:
    assert run("ip_literal_url", mkmsg(text="http://45.33.32.156/login"))
    assert run("ip_literal_url", mkmsg(text="router at http://192.168.1.1/admin")) == ()
    msg = mkmsg(text=None, html='<a href="http://45.33.32.156/a">x</a>')
    assert run("ip_literal_url", msg, sources=["href"])
    assert run("ip_literal_url", mkmsg(text="http://45.33.32.156/a"), sources=["href"]) == ()


def test_punycode_userinfo_shortener(mkmsg: Factory) -> None:
    assert run("punycode_host", mkmsg(text="http://xn--pypal-4ve.com/"))
    assert run("punycode_host", mkmsg(text="http://example.com/")) == ()
    assert run("url_userinfo", mkmsg(text="http://paypal.com@evil.test/"))
    assert run("url_shortener", mkmsg(text="https://bit.ly/abc"))
    assert run("url_shortener", mkmsg(text="https://sho.rt/abc")) == ()
    assert run("url_shortener", mkmsg(text="https://sho.rt/abc"), domains=["sho.rt"])


def test_reply_to_checks(mkmsg: Factory) -> None:
    other = mkmsg(headers=[("Reply-To", "x@other.test")])
    assert run("reply_to_other_domain", other)
    same_org = mkmsg(headers=[("Reply-To", "support@mail.example.org")])
    assert run("reply_to_other_domain", same_org) == ()
    listed = mkmsg(headers=[("Reply-To", "list@lists.test"), ("List-Id", "<l.lists.test>")])
    assert run("reply_to_other_domain", listed) == ()
    assert run("reply_to_other_domain", listed, ignore_lists=False)
    assert run("reply_to_freemail", mkmsg(headers=[("Reply-To", "claims.dept@yahoo.com")]))
    own = mkmsg(from_="me@gmail.com", headers=[("Reply-To", "me@gmail.com")])
    assert run("reply_to_freemail", own) == ()


def test_from_name_with_other_address(mkmsg: Factory) -> None:
    assert run("from_name_contains_other_address",
               mkmsg(from_='"security@bank.test" <x@evil.test>'))
    assert run("from_name_contains_other_address",
               mkmsg(from_='"alice@example.org" <alice@example.org>')) == ()


def test_from_several_mailboxes(mkmsg: Factory) -> None:
    split = run("from_several_mailboxes", mkmsg(from_="Edeka, Edeka <promo@mailer.evil.test>"))
    assert split and "promo@mailer.evil.test" in split[0]
    quoted = mkmsg(from_='"Doe, Jane" <jane@example.org>')
    assert run("from_several_mailboxes", quoted) == ()
    assert run("from_several_mailboxes", mkmsg(from_="Microsoft")) == ()  # one (bad) mailbox


def test_from_domain_unqualified(mkmsg: Factory) -> None:
    assert run("from_domain_unqualified", mkmsg(from_="Correios <aviso4401@correios>"))
    assert run("from_domain_unqualified", mkmsg(from_="News <news@example.org>")) == ()
    assert run("from_domain_unqualified", mkmsg(from_="Root <root@[192.0.2.1]>")) == ()
    # the recipient's own address as sender is another trick (and what redaction produces)
    own = mkmsg(from_="me@pot", to="me@pot")
    assert run("from_domain_unqualified", own) == ()
    cron = mkmsg(from_="root@buildhost", headers=[("Return-Path", "<root@buildhost>")])
    assert run("from_domain_unqualified", cron) == ()


def test_links_avoid_sender(mkmsg: Factory) -> None:
    away = run("links_avoid_sender", mkmsg(from_="Ledger <info@college.example.edu>",
                                           text="Update at https://ledger-fix.example.net/a"))
    assert away and "example.net" in away[0]
    # one link to the sender's own registrable domain (a subdomain counts) is enough
    home = mkmsg(from_="Shop <news@mail.shop.example>",
                 text="https://click.shop.example/t/1 and https://cdn.partner.example/p")
    assert run("links_avoid_sender", home) == ()
    assert run("links_avoid_sender", mkmsg(text="no links here")) == ()
    assert run("links_avoid_sender", mkmsg(from_="Microsoft", text="https://x.example/")) == ()


def test_html_structure(mkmsg: Factory) -> None:
    b64 = mkmsg(text=None, html="<p>hello</p>", html_base64=True)
    assert run("html_only_base64", b64)
    assert run("html_only_base64", mkmsg(text="plain", html="<p>x</p>")) == ()
    image = mkmsg(text=None, html='<img src="http://i.test/a.png"><p>Hi</p>')
    assert run("html_image_only", image)
    wordy = mkmsg(text=None, html='<img src="http://i.test/a.png"><p>' + "word " * 80 + "</p>")
    assert run("html_image_only", wordy) == ()
    assert run("html_form", mkmsg(text=None, html="<FORM><input></FORM>"))
    assert run("html_form", mkmsg(text=None, html="<p>former</p>")) == ()


@pytest.mark.parametrize(
    ("name", "filename", "hit"),
    [("executable_attachment", "setup.EXE", True), ("executable_attachment", "a.pdf", False),
     ("script_attachment", "run.vbs", True), ("script_attachment", "patch.sh", False),
     ("html_attachment", "login.html", True), ("double_extension", "doc.pdf.scr", True),
     ("double_extension", "backup.tar.gz", False), ("double_extension", "report.pdf", False)],
)
def test_attachment_checks(mkmsg: Factory, name: str, filename: str, hit: bool) -> None:
    msg = mkmsg(attachments=[(filename, b"data", "application/octet-stream")])
    assert bool(run(name, msg)) is hit


def test_executable_by_magic_bytes(mkmsg: Factory) -> None:
    msg = mkmsg(attachments=[("photo.jpg", b"MZ\x90\x00" + b"\x00" * 100, "image/jpeg")])
    assert run("executable_attachment", msg)


def test_many_recipients_and_shouting(mkmsg: Factory) -> None:
    assert run("many_recipients", mkmsg(to="a@x.test, b@x.test"), min=2)
    assert run("many_recipients", mkmsg(to="a@x.test"), min=2) == ()
    assert run("subject_shouting", mkmsg(subject="WIN A FREE CRUISE NOW"))
    assert run("subject_shouting", mkmsg(subject="Win a free cruise")) == ()
    assert run("subject_shouting", mkmsg(subject="RE: OK")) == ()


def test_bad_check_args() -> None:
    with pytest.raises(ValueError, match="unknown check"):
        make_check("nope", {})
    with pytest.raises(ValueError, match="min must be int"):
        make_check("many_recipients", {"min": True})
    with pytest.raises(ValueError, match="list of strings"):
        make_check("url_shortener", {"domains": [1, 2]})


def test_hostile_sizes_stay_bounded(mkmsg: Factory) -> None:
    """A huge repetitive body is searched within the configured bound, without blowing up."""
    from mailsift.rules import BUILTIN_PACK, RuleSet, load_pack

    rules = RuleSet([load_pack(BUILTIN_PACK)], max_body_chars=4096)
    gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
    body = "please verify your account now. " * 3000 + gtube
    hits = {h.rule.id for h in rules.evaluate(mkmsg(text=body))}
    assert "PHISH_VERIFY_ACCOUNT" in hits
    assert "GTUBE" not in hits  # beyond max_body_chars: not searched
    assert "GTUBE" in {h.rule.id for h in rules.evaluate(mkmsg(text=gtube + body))}
