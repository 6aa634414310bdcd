"""The default pack: it loads, every rule has a positive case, and it spares real ham."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rule_messages import build_message

from mailsift.config.schema import Thresholds
from mailsift.core.findings import ArtifactState
from mailsift.parsing import parse_message
from mailsift.parsing.sources import iter_messages
from mailsift.rules import BUILTIN_PACK, RuleSet, load_pack

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
EXE = b"MZ\x90\x00" + b"\x00" * 120
MISMATCH = '<p><a href="http://login.evil-host.test/x">https://www.paypal.com/signin</a></p>'
PHISH_TEXT = "Please verify your account now. Click the link below to confirm your identity."


def html(body: str) -> str:
    return f"<html><body>{body}</body></html>"


# One message per rule: the smallest realistic case that should fire it.
CASES: dict[str, dict[str, Any]] = {
    "GTUBE": {"text": f"test\n{GTUBE}\n"},
    "PHISH_VERIFY_ACCOUNT": {"text": "Please verify your account to keep using the service."},
    "PHISH_CONFIRM_PASSWORD": {"text": "Reply and confirm your password within the day."},
    "PHISH_MAILBOX_FULL": {"text": "Your mailbox is almost full. Upgrade storage below."},
    "PHISH_UNUSUAL_SIGNIN": {"text": "We detected unusual sign-in activity from Russia."},
    "PHISH_ACCOUNT_SUSPENDED": {"text": "Your account has been temporarily suspended."},
    "PHISH_CLICK_TO_VERIFY": {"text": "Click the link below to verify your details."},
    "PHISH_LOGIN_TO_KEEP": {"text": "Sign in now to keep your mailbox active."},
    "PHISH_VERIFY_ACCOUNT_INTL": {"text": "Bitte bestätigen Sie Ihr Konto sofort."},
    "PHISH_SUBJECT_ACCOUNT_ALERT": {"subject": "Your account has been suspended"},
    "PHISH_ACCOUNT_BLOCKED_INTL": {"text": "Atenção: sua conta foi bloqueada por segurança."},
    "FROM_NAME_HIDDEN_CHARACTERS": {"from_": "Am\u200baz\u200bon <noreply@evil.test>"},
    "SUBJECT_FANCY_LETTERS": {"subject": "\U0001d540\U0001d559\U0001d563 iCloud ist voll"},
    "PHISH_PASSWORD_EXPIRY": {"text": "Your email password expires today at midnight."},
    "PHISH_SHARED_DOCUMENT_LURE": {"text": "John has shared a document with you on OneDrive."},
    "URGENCY_DEADLINE": {"text": "You must respond within 24 hours."},
    "URGENCY_FAILURE_CONSEQUENCE": {
        "text": "Failure to verify your details will result in permanent closure."},
    "SUBJECT_URGENT_ACTION": {"subject": "Action required: review"},
    "LINK_TEXT_DOMAIN_MISMATCH": {"text": None, "html": html(MISMATCH)},
    "LINK_IP_LITERAL": {"text": "Log in at http://45.33.32.156/secure/login.php today"},
    "LINK_PUNYCODE_HOST": {"text": "See http://xn--pypal-4ve.com/login"},
    "LINK_USERINFO": {"text": "Go to http://www.paypal.com@evil.test/login"},
    "LINK_SHORTENER": {"text": "Details: https://bit.ly/3abcdEF"},
    "HTML_FORM": {"text": None, "html": html(
        '<form action="https://collect.test/p" method="post"><input name="u"></form>')},
    "HTML_PASSWORD_FIELD": {"text": None, "html": html(
        '<form action="https://collect.test/p"><input type="password" name="p"></form>')},
    "LINK_FREE_HOSTING": {"text": "Open https://secure-docs-7781.web.app/view to read"},
    "REPLY_TO_OTHER_DOMAIN": {"headers": [("Reply-To", "billing@other-company.test")]},
    "REPLY_TO_FREEMAIL": {"headers": [("Reply-To", "mr.smith.office@gmail.com")]},
    "FROM_NAME_HAS_OTHER_ADDRESS": {"from_": '"service@paypal.com" <notice@mailer.evil.test>'},
    "FROM_BRAND_NAME_FOREIGN_DOMAIN": {"from_": "PayPal Service <service@mailer.evil.test>"},
    "MISSING_DATE": {"omit": ["Date"]},
    "MISSING_MESSAGE_ID": {"omit": ["Message-ID"]},
    "MISSING_FROM": {"omit": ["From"]},
    "FORGED_OUTLOOK_MAILER": {"headers": [("X-Mailer", "Microsoft Outlook Express 6.00.2600")]},
    "SPAMWARE_MAILER": {"headers": [("X-Mailer", "Atomic Mail Sender 9.2")]},
    "TO_UNDISCLOSED": {"to": "undisclosed-recipients:;"},
    "MANY_RECIPIENTS": {"to": ", ".join(f"user{i}@example.com" for i in range(70))},
    "SUBJECT_ALL_CAPS": {"subject": "AMAZING OFFER FOR YOU TODAY"},
    "FAKE_REPLY": {"subject": "Re: your order"},
    "BEC_GIFT_CARD_REQUEST": {"text": "I need you to buy 5 Apple gift cards for the clients. "
                                      "Scratch them and send me pictures of the codes."},
    "BEC_DESK_CHECK": {"text": "Are you at your desk? I need a quick favour, I'm in back to back "
                               "meetings and can't take calls."},
    "BEC_PAYMENT_DETAILS_CHANGE": {"text": "I changed my bank details, please update my direct "
                                           "deposit before the next payroll."},
    "BEC_PAY_TO_NEW_ACCOUNT": {"text": "Please make payment of the open invoices to our new "
                                       "account below."},
    "BEC_CONFIDENTIAL_TRANSFER": {"text": "I need you to process a wire today. Keep it "
                                          "confidential until the board meets."},
    "BEC_NO_CALLBACK": {"text": "Please do not call the office, reply to this email only."},
    "BEC_REQUEST_FROM_FREEMAIL": {"from_": "Rachel Owusu <rachel.ceo@gmail.com>",
                                  "text": "Please buy 4 gift cards and send the codes."},
    "PHISH_BRAND_COMBOSQUAT_SENDER": {"from_": "La Poste <suivi@laposte-suivi-colis.evil.test>"},
    "PHISH_BRAND_FROM_FREEMAIL": {"from_": "Norton Billing <norton.billing.team@gmail.com>"},
    "PHISH_STAFF_ROLE_FROM_FREEMAIL": {"from_": "HR Department <hr.payroll.2026@gmail.com>"},
    "LINK_EMAIL_IN_FRAGMENT": {"text": "Open https://docs.evil.test/view#bob@example.net now"},
    "PHISH_HOSTED_PAGE_FOR_RECIPIENT": {
        "text": "Open https://pub-3c8e9b.r2.dev/onedrive/remit.html#bob@example.net now"},
    "SUBJECT_ADV_LABEL": {"subject": "ADV: cheap hosting"},
    "SUBJECT_EXCLAMATIONS": {"subject": "Be your own boss!!"},
    "SUBJECT_PADDED_TOKEN": {"subject": "Reach millions online          x7k2q"},
    "DISCOUNT_PERCENT": {"text": "All brands with 80% off this week"},
    "OEM_SOFTWARE": {"text": "Get OEM software: Office, Photoshop"},
    "AUTO_WARRANTY": {"text": "Your extended auto warranty is about to lapse"},
    "HTML_ONLY_BASE64": {"text": None, "html": html("<p>Hello there, nice offer.</p>"),
                         "html_base64": True},
    "HTML_IMAGE_ONLY": {"text": None, "html": html('<img src="http://img.test/offer.png">')},
    "EXECUTABLE_ATTACHMENT": {"attachments": [("setup.exe", EXE, "application/octet-stream")]},
    "SCRIPT_ATTACHMENT": {"attachments": [("invoice.js", b"var x = 1;", "application/javascript")]},
    "DOUBLE_EXTENSION": {"attachments": [("invoice.pdf.exe", EXE, "application/octet-stream")]},
    "HTML_ATTACHMENT": {"attachments": [("Remittance.htm", b"<html>login</html>", "text/html")]},
    "MACRO_DOCUMENT_NAME": {"attachments": [("Q3.xlsm", b"PK\x03\x04xx", "application/zip")]},
    "DISK_IMAGE_ATTACHMENT": {"attachments": [("scan.iso", b"\x00" * 64, "application/x-iso")]},
    "PHISH_INVOICE_LURE": {"text": "Your invoice is ready. Please view the attached invoice here:"
                                   " https://bit.ly/inv0ice"},
    "PHISH_MESSAGE_NOTICE_LURE": {
        "text": "You have a new voice message (0:32). Open the attachment to listen.",
        "attachments": [("VM_Playback.htm", b"<html>voicemail</html>", "text/html")]},
    "PHISH_CREDENTIAL_COMBO": {"text": "Your mailbox is full. Please verify your account. "
                                       "Confirm your password within 24 hours."},
    "PHISH_WORDING_WITH_BAD_LINK": {"text": PHISH_TEXT, "html": html(MISMATCH)},
    "PHISH_WORDING_WITH_FORM": {"text": PHISH_TEXT, "html": html(
        '<form action="https://collect.test/p"><input name="u"></form>')},
    "PHISH_WORDING_URGENCY": {"text": "Verify your account within 48 hours."},
    "PHISH_ALERT_SUBJECT_AND_BODY": {"subject": "Account locked",
                                     "text": "Please verify your account to unlock it."},
    "PHISH_BRAND_DISGUISED": {"from_": "Netflix <billing@mailer.evil.test>",
                              "text": "Update here: https://bit.ly/3abcdEF"},
    "PHISH_ALERT_HIDDEN_CONTENT": {"subject": "Mailbox quota exceeded", "text": None,
                                   "html": html("<p>Your storage is full.</p>"),
                                   "html_base64": True,
                                   "headers": [("Reply-To", "helpdesk.team@gmail.com")]},
    "PHISH_BRAND_WITH_CREDENTIAL_ASK": {"from_": "Apple Support <id@mailer.evil.test>",
                                        "text": "Please verify your account."},
    "LINK_CLOUD_STORAGE_PAGE": {
        "text": "Open https://docs-7781.s3.us-east-1.amazonaws.com/share/login.html to read"},
    "LINK_IPFS": {"text": "Read it at https://ipfs.io/ipfs/"
                          "QmXoypizjW3WknFiJnKLwHCnL72vedxjQkDDP1mXWo6uco/index.html"},
    "LINK_FORM_SERVICE": {"text": "Fill in https://forms.gle/Xy7abc12 today"},
    "HTML_DATA_URI_DOCUMENT": {"text": None, "html": html(
        '<a href="data:text/html;base64,PGh0bWw+PC9odG1sPg==">Open the document</a>')},
    "HTML_SCRIPT_REDIRECT": {"text": None, "html": html(
        '<p>Loading</p><script>window.location.href = "https://collect.test/";</script>')},
    "HTML_META_REFRESH": {"text": None, "html": (
        '<html><head><meta http-equiv="refresh" content="0; url=https://collect.test/">'
        '</head><body>Loading</body></html>')},
    "SUBJECT_COMBINING_MARKS": {"subject": "P\u0353\u033dl\u0353\u033de\u0353\u033da"
                                           "\u0353\u033dse confirm"},
    "FROM_NAME_COMBINING_MARKS": {"from_": "S\u034ea\u034ev\u034ei\u034en\u034eg\u034es"
                                           " <offers@mailer.evil.test>"},
    "FROM_SEVERAL_MAILBOXES": {"from_": "Microsoft, <security@mailer.evil.test>"},
    "FROM_DOMAIN_UNQUALIFIED": {"from_": "Correios <aviso4401@correios>"},
    "PHISH_CRYPTO_WALLET_LURE": {"text": "The airdrop is live: connect your wallet to claim."},
    "PHISH_QR_CODE_LURE": {"text": "Scan the QR code below to re-authenticate your mailbox."},
    "PHISH_PARCEL_FEE_LURE": {"text": "Your package is on hold at our depot. Pay the customs fee "
                                      "to release it."},
    "PHISH_REWARD_EXPIRY_LURE": {"text": "Your 12,400 points will expire tomorrow."},
    "PHISH_SURVEY_REWARD_LURE": {"text": "Answer our short survey and receive a mystery box."},
    "PHISH_LURE_BAD_SENDER_OR_LINK": {
        "from_": "Correios <aviso@notify.evil.test>",
        "text": "Sua encomenda foi retida na alfândega. Pague a taxa em https://bit.ly/3abcdEF"},
    "PHISH_SEED_PHRASE_REQUEST": {"text": "Your recovery phrase may have been exposed. Verify "
                                          "your 24-word recovery phrase on the secure page."},
    "PHISH_SECURITY_RENEWAL_LURE": {"text": "Ihr McAfee-Abonnement ist abgelaufen! Sie haben 24 "
                                            "Stunden um Ihren Schutz zu erneuern."},
    "LINK_APP_HOSTING": {"text": "Review it at https://docs-review-77.vercel.app/?id=4"},
    "PHISH_BRAND_LINKS_ELSEWHERE": {
        "from_": "Ledger Live <info@mailer.evil.test>", "subject": "Action required: update",
        "text": "Your device needs an update: https://ledger-update.example.net/start"},
    "PHISH_BRAND_APP_HOSTED_LINK": {
        "from_": "DocuSign <robert@transport.example>",
        "text": "Review the documents: https://app-docusign-ok.vercel.app/?e=bob"},
    "ADVANCE_FEE_FUNDS": {"text": "the sum of US$ 12,500,000.00 is waiting"},
    "ADVANCE_FEE_STORY": {"text": "as the next of kin of my late client"},
    "ADVANCE_FEE_CONFIDENTIAL": {"text": "This is strictly confidential."},
    "LOTTERY_WINNER": {"text": "Your email address has won in our lottery program."},
    "ADVANCE_FEE_COMBO": {"text": "As next of kin you receive 10.5 million dollars. "
                                  "Keep this strictly confidential."},
    "MONEY_MAKING": {"text": "Work from home and earn extra income."},
    "LOAN_DEBT_OFFER": {"text": "Get debt relief and lower mortgage rates."},
    "SPAM_PROMO_PHRASES": {"text": "Order now, it is 100% guaranteed!"},
    "NOT_SPAM_CLAIM": {"text": "This message is not spam: you signed up."},
    "PHARMACY_DRUGS": {"text": "Buy viagra today"},
    "PHARMACY_ONLINE": {"text": "Our online pharmacy ships fast"},
    "PHARMACY_COMBO": {"text": "cialis without prescription"},
    "WEIGHT_LOSS": {"text": "Lose 20 pounds in a month with diet pills"},
    "REPLICA_GOODS": {"text": "Swiss replica watches for less"},
    "ADULT_CONTENT": {"text": "Meet hot singles near you"},
    "SEO_WEB_SERVICES": {"text": "Our SEO services put you on the first page of Google"},
    "CASINO_GAMBLING": {"text": "Claim 100 free spins at our online casino"},
    "CRYPTO_INVESTMENT_SCAM": {"text": "Join our bitcoin investment platform with daily profits"},
    "SEXTORTION_BITCOIN": {"text": "I have hacked your device. Pay in bitcoin."},
    "EXTORTION_COMBO": {"text": "I have hacked your computer. Send $950 to my bitcoin address "
                                "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh within 48 hours."},
}


@pytest.fixture(scope="module")
def default_rules() -> RuleSet:
    return RuleSet([load_pack(BUILTIN_PACK)])


def test_every_rule_has_a_case(default_rules: RuleSet) -> None:
    assert set(CASES) == set(default_rules.codes)


def test_every_rule_is_described(default_rules: RuleSet) -> None:
    for meta in default_rules.rules.values():
        assert len(meta.description) > 15, meta.id


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_on_its_case(default_rules: RuleSet, rule_id: str) -> None:
    msg = build_message(**CASES[rule_id])
    found = {hit.rule.id for hit in default_rules.evaluate(msg)}
    assert rule_id in found, found


def test_a_voicemail_with_its_recording_or_a_portal_link_is_no_lure(
        default_rules: RuleSet) -> None:
    # what telephone systems really send: the recording attached, or a link to their own portal
    for kwargs in (
            {"text": "You have a new voicemail in mailbox 200. The recording is attached.",
             "attachments": [("msg0001.wav", b"RIFF\x00\x00\x00\x00WAVE", "audio/x-wav")]},
            {"text": "Missed call from Ingrid. Call back in Teams: "
                     "https://teams.microsoft.com/l/call/0/0?users=ingrid@example.no"},
            {"text": "Fax received from +44 20 7946 0000 (2 pages), attached as PDF.",
             "attachments": [("fax.pdf", b"%PDF-1.4\n%%EOF", "application/pdf")]}):
        found = {hit.rule.id for hit in default_rules.evaluate(build_message(**kwargs))}
        assert "PHISH_MESSAGE_NOTICE_LURE" not in found, (kwargs, found)


def test_bec_wording_of_ordinary_business_mail_is_not_a_request(
        default_rules: RuleSet) -> None:
    # genuine mail about bank details and payroll (the robustness set's legitimate cases say the
    # same): none of it is a BEC request
    for text in ("Our bank details are the same as on every invoice we've sent you since 2021.",
                 "If you change banks for your direct deposit, please update it yourself in the "
                 "payroll portal. I can't change bank details from an email.",
                 "Fiz a transferência hoje, para a conta de sempre.",
                 "Are you available for a call on Thursday about the budget?"):
        found = {hit.rule.id for hit in default_rules.evaluate(build_message(text=text))}
        assert not {f for f in found if f.startswith("BEC_")}, (text, found)


def test_a_quoted_reply_is_not_a_fake_reply(default_rules: RuleSet) -> None:
    msg = build_message(subject="RE: budget", text="Fine by me.\n\n-----Original Message-----\n"
                        "From: Bob\nSent: Monday\n\nBudget for Q3?\n")
    assert "FAKE_REPLY" not in {hit.rule.id for hit in default_rules.evaluate(msg)}
    msg = build_message(subject="Re: budget", text="Sure.\n\nOn Mon, Bob wrote:\n> Budget?\n")
    assert "FAKE_REPLY" not in {hit.rule.id for hit in default_rules.evaluate(msg)}


def test_plain_message_hits_nothing(default_rules: RuleSet) -> None:
    assert default_rules.evaluate(build_message()) == []


def test_invoice_word_alone_is_not_a_finding(default_rules: RuleSet) -> None:
    msg = build_message(text="Attached is the invoice for March, see https://example.com/a")
    assert default_rules.evaluate(msg) == []


def test_seed_phrase_warning_is_not_a_request(default_rules: RuleSet) -> None:
    # genuine wallet mail talks about the phrase only to say it is never asked for
    msg = build_message(text="Ledger will never ask you to enter or verify your recovery phrase. "
                             "Never share your 24 recovery words with anyone.")
    found = {hit.rule.id for hit in default_rules.evaluate(msg)}
    assert "PHISH_SEED_PHRASE_REQUEST" not in found, found


def test_brand_mail_linking_home_is_not_borrowed(default_rules: RuleSet) -> None:
    # the brand's name on its own domain, linking to its own site: the shape of real brand mail
    for from_ in ("Ledger <news@ledger.com>", "McAfee <renew@mcafee.com>",
                  "Ledger Support <hello@mailer.example.org>"):
        msg = build_message(from_=from_, subject="Action required: update your device",
                            text="Your McAfee subscription has expired. Renew at "
                                 "https://www.mcafee.com/renew or https://mailer.example.org/x")
        found = {hit.rule.id for hit in default_rules.evaluate(msg)}
        assert not found & {"PHISH_BRAND_LINKS_ELSEWHERE", "PHISH_BRAND_APP_HOSTED_LINK"}, found


def family_scores(rules: RuleSet, text: str = "", **kwargs: Any) -> Counter[str]:
    scores: Counter[str] = Counter()
    for hit in rules.evaluate(build_message(text=text or None, **kwargs)):
        if hit.rule.category and hit.rule.state is ArtifactState.ACTIVE:
            scores[hit.rule.category] += hit.rule.weight
    return scores


def test_single_phish_wording_stays_below_threshold(default_rules: RuleSet) -> None:
    th = Thresholds()
    for rule_id, meta in default_rules.rules.items():
        if meta.category == "phish" and meta.kind != "meta":
            assert meta.weight < th.phish, rule_id
    assert family_scores(default_rules, "Please verify your account.")["phish"] < th.phish


def test_wording_with_disguised_link_reaches_phish(default_rules: RuleSet) -> None:
    scores = family_scores(default_rules, PHISH_TEXT, html=html(MISMATCH))
    assert scores["phish"] >= Thresholds().phish


def test_gtube_reaches_spam_high(default_rules: RuleSet) -> None:
    assert family_scores(default_rules, GTUBE)["spam"] >= Thresholds().spam_high


HAM_SOURCES = ("spamassassin_easy_ham", "spamassassin_hard_ham", "trec07p_ham",
               "ml_openwrt_devel", "transactional_brand", "transactional_saas_notify")


@pytest.mark.slow
def test_default_pack_spares_ham_sample(default_rules: RuleSet, shared_dir: Path) -> None:
    """No message of the first 300 of several ham sources gets a quarantining family score."""
    th = Thresholds()
    offenders = []
    for source in HAM_SOURCES:
        path = shared_dir / "corpus" / "ham" / f"{source}.mbox.gz"
        for index, (_id, raw) in enumerate(itertools.islice(iter_messages([str(path)]), 300)):
            scores: Counter[str] = Counter()
            hits = default_rules.evaluate(parse_message(raw))
            for hit in hits:
                if hit.rule.category and hit.rule.state is ArtifactState.ACTIVE:
                    scores[hit.rule.category] += hit.rule.weight
            if (scores["phish"] >= th.phish or scores["malware"] >= th.malware
                    or scores["spam"] >= th.spam_high):
                offenders.append((source, index, sorted(h.rule.id for h in hits)))
    assert offenders == []
