"""Technique features: each fires on the technique it names, and stays quiet on plain mail."""

from __future__ import annotations

from mailsift.ml.features import extract
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message

TECHNIQUES = {"x:combining_marks", "x:combining_marks_body", "x:zero_width", "x:zero_width_body",
              "x:fancy_letters", "x:from_several", "x:from_free_tenant", "x:dn_brand_foreign",

              "l:cloud_storage", "l:cloud_storage_page", "l:form_host", "l:ipfs"}


def _features(**kwargs: object) -> dict[str, float]:
    return extract(parse_message(make_message(**kwargs)))  # type: ignore[arg-type]


def _names(feats: dict[str, float], *prefixes: str) -> set[str]:
    return {n for n in feats if n.startswith(prefixes)}


def test_plain_mail_has_no_technique_features() -> None:
    feats = _features(subject="Lunch on Friday?",
                      text="Hi Bob, shall we meet at noon? See https://www.example.org/menu\n")
    assert not _names(feats, "h:", "ha:")
    assert not TECHNIQUES & set(feats)


def test_html_body_tricks_mail_never_needs() -> None:
    html = ('<html><head><meta http-equiv="refresh" content="5; url=https://x.test/"></head>'
            '<body><p>Hello</p>'
            '<form action="https://collect.test/"><input type="password" name="p"></form>'
            '<a href="data:text/html;base64,PGI+">open</a>'
            '<script>document.write(atob("PGI+"))</script></body></html>')
    feats = _features(text=None, html=html)
    assert {"h:meta_refresh", "h:password", "h:data_document", "h:js_decode"} <= set(feats)


def test_newsletter_habits_are_not_features() -> None:
    # hidden preheader text, a script and a search form: old and new newsletters do this
    html = ('<html><body><div style="display:none">Preview text</div>'
            '<form action="https://shop.example/search"><input name="q"></form>'
            '<script>var tracking = 1;</script><p>Our autumn collection</p></body></html>')
    assert not _names(_features(text=None, html=html), "h:")


def test_html_attachment_tricks_are_their_own_family() -> None:
    page = (b'<html><body style="display:none"><form action="https://c.test">'
            b'<input type="password"></form><script>window.location="https://c.test"</script>'
            b'</body></html>')
    feats = _features(attachments=[("Invoice.html", page, "text/html")])
    assert {"ha:form", "ha:password", "ha:input", "ha:script", "ha:js_redirect",
            "ha:hidden"} <= set(feats)
    assert not _names(feats, "h:")  # the body itself is plain text
    pdf = _features(attachments=[("Invoice.pdf", b"%PDF-1.4 <script>", "application/pdf")])
    assert not _names(pdf, "ha:")


def test_letters_hidden_from_word_filters() -> None:
    combining = "".join(c + "\u0353\u033d" for c in "Please")
    assert "x:combining_marks" in _features(subject=combining + " confirm")
    assert "x:zero_width" in _features(from_="Pay\u200bPal <service@mailer.example>")
    assert "x:fancy_letters" in _features(subject="\U0001d405\U0001d411\U0001d404\U0001d404 gift")
    body = "".join(c + "\u0489" for c in "Congratulations")
    assert "x:combining_marks_body" in _features(text=body + "\n")
    # ordinary accented text is precomposed: no combining marks, no hidden letters
    plain = _features(subject="Réunion à Zürich, señor", from_="José Núñez <jn@example.es>")
    assert not TECHNIQUES & set(plain)


def test_shape_of_the_sender() -> None:
    assert "x:from_several" in _features(from_="Facebook, <security@mailer.example>")
    assert "x:from_several" not in _features(from_='"Doe, Jane" <jane@example.org>')
    assert "x:from_free_tenant" in _features(from_="Support <it@contoso12.onmicrosoft.com>")
    assert "x:dn_brand_foreign" in _features(from_="Microsoft account team <n@secure-acc.example>")
    own = _features(from_="Amazon <shipment-tracking@amazon.com>")
    assert "x:dn_brand_foreign" not in own
    assert "x:dn_brand_foreign" not in _features(from_="Alice Example <alice@example.org>")


def test_where_links_are_hosted() -> None:
    text = ("Open https://files-88.s3.us-east-2.amazonaws.com/doc/view.html and "
            "https://forms.gle/AbC123 and https://ipfs.io/ipfs/"
            "QmXoypizjW3WknFiJnKLwHCnL72vedxjQkDDP1mXWo6uco\n")
    feats = _features(text=text)
    assert {"l:cloud_storage", "l:cloud_storage_page", "l:form_host", "l:ipfs"} <= set(feats)
    # an Amazon web page is not a storage bucket, a stored file is not a stored web page
    assert "l:cloud_storage" not in _features(text="See https://aws.amazon.com/s3/ today\n")
    log = _features(text="Log: https://storage.googleapis.com/ci-logs/run/42/build.log\n")
    assert "l:cloud_storage" in log and "l:cloud_storage_page" not in log


def test_word_classes_in_other_languages() -> None:
    pt = _features(text="Sua conta foi bloqueada. Atualize sua senha imediatamente.\n")
    assert {"k:account", "k:urgency", "k:verify", "k:credential"} <= set(pt)
    es = _features(text="Su paquete está retenido en aduana. Verifique el envío.\n")
    assert {"k:delivery", "k:verify", "k:delivery+verify"} <= set(es)
    reward = _features(subject="Parabéns! Seus pontos expiram hoje", text="Resgate agora.\n")
    assert "k:reward" in reward
    nl = _features(text="Uw pakket wacht. Bevestig uw adres.\n")
    assert {"k:delivery", "k:verify"} <= set(nl)
