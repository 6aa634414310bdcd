"""Feature extraction: named, readable, stable."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsift.ml.features import _EMAIL, _email_domains, extract
from mailsift.parsing import parse_message
from mailsift.testing.messages import make_message


def test_text_url_and_structure_features() -> None:
    raw = make_message(
        subject="Invoice 2024-1187 overdue",
        text=None,
        html='<p>Pay now</p><a href="http://198.51.100.4/pay">www.bank.example</a>',
        attachments=[("invoice.exe", b"MZ\x90\x00" + b"\x00" * 64, "application/octet-stream")],
    )
    feats = extract(parse_message(raw))
    assert "s:invoice" in feats and "s:0000" in feats  # digits fold to 0: years are not threats
    assert "w:pay" in feats
    assert "x:html_only" in feats
    assert "x:url_ip" in feats and "x:url_text_mismatch" in feats
    assert "x:att_exec" in feats and "x:att_ext:exe" in feats
    assert all(v >= 1.0 for v in feats.values())


def test_repeated_words_grow_sublinearly() -> None:
    feats = extract(parse_message(make_message(text="win " * 50)))
    assert 1.0 < feats["w:win"] < 6.0


def test_extraction_is_deterministic() -> None:
    raw = make_message(text="Hello there, the meeting moved to 3pm.\n")
    assert extract(parse_message(raw)) == extract(parse_message(raw))


def test_word_classes_and_their_pairs() -> None:
    raw = make_message(subject="Action required",
                       text="Your account is suspended. Verify your password within 24 hours.\n")
    feats = extract(parse_message(raw))
    for name in ("k:account", "k:urgency", "k:verify", "k:credential"):
        assert name in feats
    assert "k:account+urgency" in feats and "k:credential+verify" in feats
    plain = extract(parse_message(make_message(text="See you at the meeting on Monday.\n")))
    assert not any(n.startswith("k:") for n in plain)


def test_link_relations_to_the_sender() -> None:
    html = ('<p>Hello</p><a href="https://bit.ly/3abc">Sign in now</a>'
            '<a href="https://www.login-secure.net/a?' + "q" * 100 + '">here</a>')
    feats = extract(parse_message(make_message(text=None, html=html,
                                               from_="Bank <service@bank.example>")))
    assert "l:shortener" in feats and "l:long_query" in feats and "l:hyphen_domain" in feats
    assert "lt:sign" in feats and "lt:now" in feats  # what the reader was asked to click
    assert "ut:ly" in feats and "ut:net" in feats
    assert "l:only_other_domains" in feats and "l:to_from_domain" not in feats
    own = extract(parse_message(make_message(
        text="Your receipt: https://www.shop.example/orders/1\n",
        from_="Shop <orders@mail.shop.example>")))
    assert "l:to_from_domain" in own and "l:only_other_domains" not in own


def test_display_name_against_address() -> None:
    brand = extract(parse_message(make_message(from_="PayPal Service <x1@mailer.example>")))
    assert "dn:paypal" in brand and "x:dn_not_in_address" in brand
    person = extract(parse_message(make_message(from_="Alice Example <alice@example.org>")))
    assert "x:dn_in_address" in person and "x:dn_not_in_address" not in person


def test_recipient_named_in_subject_is_a_feature_not_a_word() -> None:
    raw = make_message(subject="jane@example.net, your mailbox is full", to="jane@example.net")
    feats = extract(parse_message(raw))
    assert "x:rcpt_in_subject" in feats
    assert not any("jane" in n for n in feats)  # the recipient itself is masked
    assert "x:rcpt_in_subject" not in extract(parse_message(make_message(subject="Lunch?")))


def test_mixed_script_look_alikes() -> None:
    spoofed = make_message(subject="\u03a5our \u0461allet has b\u0435en frozen")  # Greek/Cyrillic
    assert "x:mixed_script" in extract(parse_message(spoofed))
    greek = make_message(subject="\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 and hello")
    assert "x:mixed_script" not in extract(parse_message(greek))


def test_list_from_munging_is_not_a_feature() -> None:
    raw = make_message(from_="Jane Doe via dev-list <dev-list@lists.example.org>",
                       headers={"List-Id": "<dev-list.lists.example.org>"})
    feats = extract(parse_message(raw))
    assert "dn:jane" in feats and "dn:via" not in feats and "dn:dev" not in feats
    assert "x:dn_not_in_address" not in feats and "x:dn_in_address" not in feats


def test_free_hosting_is_found_below_public_suffixes() -> None:
    # web.app, pages.dev, blogspot.com are on the public suffix list: each site is its own
    # registrable domain, so the host (not the registrable domain) is compared
    for url in ("https://secure-docs-7781.web.app/view", "https://a1b2.pages.dev/login",
                "https://ekc-1056.southamerica-east1.run.app/"):
        feats = extract(parse_message(make_message(text=f"Open {url} now\n")))
        assert "l:free_host" in feats, url
    plain = extract(parse_message(make_message(text="See https://www.example.org/x\n")))
    assert "l:free_host" not in plain


_EMAIL_ALPHABET = ["a", "Z", "1", "_", ".", "+", "-", "@", " ", "\n", "é", "٣", ",", "<", ">",
                   "x.example", "ann@b.example"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_EMAIL_ALPHABET), max_size=24), st.sampled_from([1, 2, 50]))
def test_email_domains_agree_with_the_regex(parts: list[str], limit: int) -> None:
    # _email_domains is a faster _EMAIL.findall: the model was trained on the regex's output
    text = "".join(parts)
    assert _email_domains(text, limit) == _EMAIL.findall(text)[:limit]


def test_email_domains_resume_after_a_match() -> None:
    text = "mail a@b.example+c@d.example, x@y (bad@) z@@q.example r@s.example"
    assert _email_domains(text, 50) == _EMAIL.findall(text) == [
        "b.example", "d.example", "s.example"]
    assert _email_domains(text, 1) == ["b.example"]
