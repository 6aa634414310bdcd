"""Built-in checks: named predicates a rule can call with ``check = "name"``.

Some facts are awkward or slow as regexes (comparing the domain a link shows with the one it
goes to, registrable domains of two headers, MIME structure), so the language offers them as
named checks. Each check is a factory: it validates its ``args`` once at load time and returns
a function from a ``MessageView`` to evidence (an empty tuple means "no hit").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mailsift.parsing.replies import quotes_earlier_message
from mailsift.rules.fields import MessageView, registrable_domain

__all__ = ["CHECKS", "CheckFn", "CheckSpec", "make_check"]

CheckFn = Callable[[MessageView], tuple[str, ...]]
_MAX_EVIDENCE = 3


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())



EXECUTABLE_EXT = _words(
    "exe scr com pif cpl msi msp dll sys jar lnk gadget application appref-ms "
    "reg inf scf msc iqy slk"
)
SCRIPT_EXT = _words("js jse vbs vbe wsf wsh wsc hta ps1 psm1 bat cmd sct")
DOCUMENT_EXT = _words(
    "pdf doc docx docm xls xlsx xlsm ppt pptx rtf txt jpg jpeg png gif bmp tif tiff "
    "csv odt ods htm html mp3 mp4 wav zip rar"
)
HTML_EXT = _words("htm html shtml xhtml svg mht mhtml")
EXECUTABLE_TYPES = _words(
    "application/x-dosexec application/x-msdownload application/x-executable "
    "application/x-msdos-program application/x-ms-shortcut application/java-archive"
)
SHORTENERS = _words(
    "bit.ly bitly.com tinyurl.com goo.gl ow.ly is.gd buff.ly rebrand.ly cutt.ly shorturl.at "
    "tiny.cc rb.gy t.ly s.id v.gd qrco.de tinu.be shorte.st adf.ly bl.ink soo.gd clck.ru "
    "u.to t2m.io urlz.fr 0rz.tw x.co mcaf.ee su.pr db.tt lnkd.in"
)
FREEMAIL = _words(
    "gmail.com googlemail.com yahoo.com yahoo.co.uk yahoo.fr ymail.com rocketmail.com "
    "hotmail.com hotmail.co.uk hotmail.fr outlook.com live.com msn.com aol.com icloud.com "
    "me.com mail.com gmx.com gmx.net gmx.de web.de yandex.com yandex.ru mail.ru inbox.ru "
    "list.ru bk.ru protonmail.com proton.me zoho.com qq.com 163.com 126.com sina.com "
    "rediffmail.com tutanota.com usa.com consultant.com post.com accountant.com engineer.com "
    "email.com myself.com dr.com writeme.com europe.com "
    "hotmail.es hotmail.it hotmail.de yahoo.es yahoo.it yahoo.de yahoo.com.br outlook.es "
    "outlook.fr outlook.de outlook.com.br libero.it virgilio.it tiscali.it laposte.net orange.fr "
    "wanadoo.fr free.fr sfr.fr t-online.de freenet.de uol.com.br bol.com.br terra.com.br "
    "sapo.pt"
)
_ADDRESS_IN_TEXT = re.compile(r"[\w.+-]+@((?:[\w-]+\.)+[A-Za-z]{2,})")
_URLISH_TEXT = re.compile(
    r"^\s*(?:(?:https?|ftp)://)?(?:[\w-]+\.)+[A-Za-z]{2,63}(?::\d+)?(?:[/?#]\S*)?\s*$"
)
_HOST_IN_TEXT = re.compile(r"^\s*(?:(?:https?|ftp)://)?((?:[\w-]+\.)+[A-Za-z]{2,63})", re.I)
_FORM_TAG = re.compile(r"<[fF][oO][rR][mM]\b")  # literal "<" prefix: fast, unlike re.I


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A check: its factory, the arguments it accepts (name -> default) and what it means."""

    factory: Callable[[Mapping[str, object]], CheckFn]
    params: Mapping[str, object]
    doc: str


def make_check(name: str, args: Mapping[str, object]) -> CheckFn:
    """Validate ``args`` for check ``name`` and build it; ``ValueError`` when invalid."""
    spec = CHECKS.get(name)
    if spec is None:
        raise ValueError(f"unknown check {name!r} (known: {', '.join(sorted(CHECKS))})")
    merged = dict(spec.params)
    for key, value in args.items():
        if key not in spec.params:
            raise ValueError(f"check {name!r} takes no argument {key!r}")
        default = spec.params[key]
        if isinstance(default, bool) != isinstance(value, bool) or not isinstance(
            value, type(default) if not isinstance(default, float) else (int, float)
        ):
            raise ValueError(f"check {name!r}: {key} must be {type(default).__name__}")
        if isinstance(default, list) and not all(isinstance(v, str) for v in value):  # type: ignore[attr-defined]
            raise ValueError(f"check {name!r}: {key} must be a list of strings")
        merged[key] = value
    return spec.factory(merged)


def _ext(filename: str) -> str:
    return filename.rsplit(".", 1)[1].strip().lower() if "." in filename else ""


def _strings(value: object) -> frozenset[str]:
    return frozenset(str(v).lower() for v in value) if isinstance(value, list) else frozenset()


def _link_text_domain_mismatch(args: Mapping[str, object]) -> CheckFn:
    def check(view: MessageView) -> tuple[str, ...]:
        out: list[str] = []
        for url in view.msg.urls:
            shown = url.display_text
            if not shown or url.source != "href" or not url.domain or "." not in shown:
                continue
            if not _URLISH_TEXT.match(shown):
                continue
            host = _HOST_IN_TEXT.match(shown)
            if not host:
                continue
            shown_domain = registrable_domain(host.group(1))
            if shown_domain and shown_domain != url.domain.lower():
                out.append(f"shows {shown_domain}, goes to {url.domain}")
                if len(out) >= _MAX_EVIDENCE:
                    break
        return tuple(out)

    return check


def _ip_literal_url(args: Mapping[str, object]) -> CheckFn:
    sources = _strings(args["sources"])

    def check(view: MessageView) -> tuple[str, ...]:
        out: list[str] = []
        for url in view.msg.urls:
            if not url.is_ip or (sources and url.source not in sources):
                continue
            try:
                ip = ipaddress.ip_address(url.host.strip("[]"))
            except ValueError:
                ip = None  # decimal/hex notation: only obfuscators write those
            if ip is not None and not ip.is_global:
                continue
            out.append(url.url[:200])
            if len(out) >= _MAX_EVIDENCE:
                break
        return tuple(out)

    return check


def _url_flag(attr: str) -> Callable[[Mapping[str, object]], CheckFn]:
    def factory(args: Mapping[str, object]) -> CheckFn:
        def check(view: MessageView) -> tuple[str, ...]:
            hits = [u.url[:200] for u in view.msg.urls if getattr(u, attr)]
            return tuple(hits[:_MAX_EVIDENCE])

        return check

    return factory


def _url_shortener(args: Mapping[str, object]) -> CheckFn:
    domains = SHORTENERS | _strings(args["domains"])

    def check(view: MessageView) -> tuple[str, ...]:
        hits = [u.url[:200] for u in view.msg.urls if u.host in domains or u.domain in domains]
        return tuple(hits[:_MAX_EVIDENCE])

    return check


def _html_form(args: Mapping[str, object]) -> CheckFn:
    def check(view: MessageView) -> tuple[str, ...]:
        actions = [u.url[:200] for u in view.msg.urls if u.source == "form"]
        if actions:
            return tuple(actions[:_MAX_EVIDENCE])
        html = view.msg.html
        return ("<form> in HTML",) if html and _FORM_TAG.search(html) else ()

    return check


def _html_image_only(args: Mapping[str, object]) -> CheckFn:
    max_chars = int(args["max_chars"])  # type: ignore[call-overload]

    def check(view: MessageView) -> tuple[str, ...]:
        msg = view.msg
        if not msg.html:
            return ()
        images = sum(1 for u in msg.urls if u.source == "img")
        if not images:
            return ()
        # Cheap bound first: only count visible characters when the texts are short anyway.
        if len(msg.text) + len(msg.html_text) > max_chars * 4:
            return ()
        visible = len("".join(msg.text.split())) + len("".join(msg.html_text.split()))
        if visible >= max_chars:
            return ()
        return (f"{images} image(s), {visible} characters of text",)

    return check


def _is_list_mail(view: MessageView) -> bool:
    return bool(view.msg.header("list-id") or view.msg.header("list-post"))


def _reply_to_other_domain(args: Mapping[str, object]) -> CheckFn:
    ignore_lists = bool(args["ignore_lists"])

    def check(view: MessageView) -> tuple[str, ...]:
        msg = view.msg
        if not msg.reply_to or not msg.from_addr or not msg.from_domain:
            return ()
        if ignore_lists and _is_list_mail(view):
            return ()
        from_org = registrable_domain(msg.from_domain)
        for addr in msg.reply_to:
            if addr.domain and registrable_domain(addr.domain) != from_org:
                return (f"Reply-To {addr.addr} vs From {msg.from_addr.addr}",)
        return ()

    return check


def _reply_to_freemail(args: Mapping[str, object]) -> CheckFn:
    domains = FREEMAIL | _strings(args["domains"])

    def check(view: MessageView) -> tuple[str, ...]:
        msg = view.msg
        if not msg.reply_to or _is_list_mail(view):
            return ()
        sender = msg.from_addr.addr.lower() if msg.from_addr else ""
        for addr in msg.reply_to:
            if addr.domain in domains and addr.addr.lower() != sender:
                return (f"Reply-To {addr.addr} (free mail), From {sender or '-'}",)
        return ()

    return check


def _quotes_earlier_message(args: Mapping[str, object]) -> CheckFn:
    def check(view: MessageView) -> tuple[str, ...]:
        text = view.text("rawbody")
        return ("the body quotes an earlier message",) if quotes_earlier_message(
            text, len(text)) else ()

    return check


def _from_freemail(args: Mapping[str, object]) -> CheckFn:
    # Business-email-compromise requests come from a free-mail account under an executive's or a
    # supplier's name; many people write from free mail too, so this is read only together with
    # a BEC request (gift cards, a changed bank account, "are you at your desk").
    domains = FREEMAIL | _strings(args["domains"])

    def check(view: MessageView) -> tuple[str, ...]:
        msg = view.msg
        if msg.from_addr is None or _is_list_mail(view):
            return ()
        if msg.from_addr.domain in domains:
            return (f"From {msg.from_addr.addr} (free mail)",)
        return ()

    return check


def _from_name_contains_other_address(args: Mapping[str, object]) -> CheckFn:
    def check(view: MessageView) -> tuple[str, ...]:
        sender = view.msg.from_addr
        if sender is None or "@" not in sender.display_name:
            return ()
        own = registrable_domain(sender.domain)
        for match in _ADDRESS_IN_TEXT.finditer(sender.display_name):
            if registrable_domain(match.group(1)) != own:
                return (f"name {sender.display_name[:80]!r} but address {sender.addr}",)
        return ()

    return check


def _from_several_mailboxes(args: Mapping[str, object]) -> CheckFn:
    # RFC 5322 allows several From mailboxes only with a Sender; in practice it is an unquoted
    # comma ("Microsoft, <x@attacker.example>") that splits a name from its address, and mail
    # clients disagree about which part they show.
    def check(view: MessageView) -> tuple[str, ...]:
        froms = view.msg.from_addrs
        if len(froms) < 2:
            return ()
        return ("From holds " + ", ".join(repr(a.addr[:60]) for a in froms[:4]),)

    return check


_ENVELOPE_HEADERS = ("return-path", "delivered-to", "x-original-to", "x-forwarded-to",
                     "envelope-to", "bcc")


def _from_domain_unqualified(args: Mapping[str, object]) -> CheckFn:
    # A From domain without a dot cannot exist on the Internet (RFC 5321 wants a fully qualified
    # domain): a kit's placeholder ("@correios") or a rented server's host name. Left out: a From
    # that is also the envelope sender or a recipient as the receiving side recorded them (local
    # system mail such as cron's root@host; "sent from your own address" is another trick, and
    # a corpus that rewrote the recipient's address rewrote that From too).
    def check(view: MessageView) -> tuple[str, ...]:
        msg = view.msg
        sender = msg.from_addr
        if sender is None or "@" not in sender.addr:
            return ()
        domain = sender.domain.strip().rstrip(".")
        if not domain or "." in domain or domain.startswith("["):
            return ()
        own = sender.addr.lower()
        if any(own == a.addr.lower() for a in (*msg.to, *msg.cc)):
            return ()
        if any(own in value.lower() for name in _ENVELOPE_HEADERS for value in msg.header(name)):
            return ()
        return (f"From {sender.addr[:80]}",)

    return check


def _links_avoid_sender(args: Mapping[str, object]) -> CheckFn:
    # A brand's own mail links to the brand's site (through its own click tracker, or an ESP's);
    # a lure under a borrowed name cannot: its page lives elsewhere. Read together with a
    # borrowed brand name, never alone (newsletters sent through an ESP avoid the sender too).
    def check(view: MessageView) -> tuple[str, ...]:
        msg = view.msg
        if not msg.from_domain:
            return ()
        own = registrable_domain(msg.from_domain)
        others: list[str] = []
        for url in msg.urls:
            if url.source not in ("href", "form", "area", "text") or not url.domain:
                continue
            if url.scheme not in ("http", "https"):
                continue
            if url.domain.lower() == own:
                return ()
            if url.domain not in others:
                others.append(url.domain)
        if not others:
            return ()
        return (f"From {own}, links only to {', '.join(others[:_MAX_EVIDENCE])}",)

    return check


def _html_only_base64(args: Mapping[str, object]) -> CheckFn:
    def check(view: MessageView) -> tuple[str, ...]:
        msg = view.msg
        if msg.text.strip() or not msg.html:
            return ()
        for part in msg.parts:
            if part.content_type == "text/html" and part.transfer_encoding == "base64":
                return ("only body is base64-encoded text/html",)
        return ()

    return check


def _attachment_ext(names: frozenset[str], use_types: bool) -> Callable[
        [Mapping[str, object]], CheckFn]:
    def factory(args: Mapping[str, object]) -> CheckFn:
        wanted = names | _strings(args["extensions"])

        def check(view: MessageView) -> tuple[str, ...]:
            out = []
            for att in view.msg.attachments:
                hit = _ext(att.filename) in wanted
                if use_types and att.detected_type in EXECUTABLE_TYPES:
                    hit = True
                if hit:
                    where = f" in {att.container}" if att.container else ""
                    out.append(f"{att.filename or '(unnamed)'} ({att.detected_type}){where}")
            return tuple(out[:_MAX_EVIDENCE])

        return check

    return factory


def _double_extension(args: Mapping[str, object]) -> CheckFn:
    final = EXECUTABLE_EXT | SCRIPT_EXT | HTML_EXT

    def check(view: MessageView) -> tuple[str, ...]:
        out = []
        for att in view.msg.attachments:
            parts = att.filename.lower().split(".")
            if len(parts) >= 3 and parts[-1].strip() in final and parts[-2].strip() in DOCUMENT_EXT:
                out.append(att.filename)
        return tuple(out[:_MAX_EVIDENCE])

    return check


def _many_recipients(args: Mapping[str, object]) -> CheckFn:
    minimum = int(args["min"])  # type: ignore[call-overload]

    def check(view: MessageView) -> tuple[str, ...]:
        count = len(view.msg.to) + len(view.msg.cc)
        return (f"{count} recipients in To/Cc",) if count >= minimum else ()

    return check


def _subject_shouting(args: Mapping[str, object]) -> CheckFn:
    min_letters = int(args["min_letters"])  # type: ignore[call-overload]

    def check(view: MessageView) -> tuple[str, ...]:
        letters = [c for c in view.msg.subject if c.isalpha()]
        if len(letters) >= min_letters and all(c.isupper() for c in letters):
            return (view.msg.subject[:120],)
        return ()

    return check


CHECKS: dict[str, CheckSpec] = {
    "link_text_domain_mismatch": CheckSpec(
        _link_text_domain_mismatch, {}, "an HTML link shows one domain and goes to another"
    ),
    "ip_literal_url": CheckSpec(
        _ip_literal_url, {"sources": []}, "a link to a public IP address instead of a name"
    ),
    "punycode_host": CheckSpec(_url_flag("punycode"), {}, "a link host written in punycode"),
    "url_userinfo": CheckSpec(
        _url_flag("has_userinfo"), {}, "a link with user@ before the host (hides the target)"
    ),
    "url_shortener": CheckSpec(_url_shortener, {"domains": []}, "a link through a URL shortener"),
    "html_form": CheckSpec(_html_form, {}, "the HTML body contains a form"),
    "html_image_only": CheckSpec(
        _html_image_only, {"max_chars": 200}, "HTML made of images with (almost) no text"
    ),
    "reply_to_other_domain": CheckSpec(
        _reply_to_other_domain, {"ignore_lists": True}, "Reply-To is on another domain than From"
    ),
    "reply_to_freemail": CheckSpec(
        _reply_to_freemail, {"domains": []}, "Reply-To is a free-mail address other than From"
    ),
    "quotes_earlier_message": CheckSpec(
        _quotes_earlier_message, {}, "the body quotes an earlier message (a reply)"
    ),
    "from_freemail": CheckSpec(
        _from_freemail, {"domains": []}, "the sender writes from a free-mail address"
    ),
    "from_name_contains_other_address": CheckSpec(
        _from_name_contains_other_address, {}, "From display name holds another domain's address"
    ),
    "from_several_mailboxes": CheckSpec(
        _from_several_mailboxes, {}, "the From header parses into several mailboxes"
    ),
    "from_domain_unqualified": CheckSpec(
        _from_domain_unqualified, {}, "the From domain has no dot (cannot exist on the Internet)"
    ),
    "links_avoid_sender": CheckSpec(
        _links_avoid_sender, {}, "there are web links and none leads to the From domain"
    ),
    "html_only_base64": CheckSpec(
        _html_only_base64, {}, "the only body is base64-encoded HTML (no text part)"
    ),
    "executable_attachment": CheckSpec(
        _attachment_ext(EXECUTABLE_EXT, True), {"extensions": []}, "an executable attachment"
    ),
    "script_attachment": CheckSpec(
        _attachment_ext(SCRIPT_EXT, False), {"extensions": []}, "a script attachment"
    ),
    "html_attachment": CheckSpec(
        _attachment_ext(HTML_EXT, False), {"extensions": []}, "an HTML or SVG attachment"
    ),
    "double_extension": CheckSpec(
        _double_extension, {}, "an attachment name like invoice.pdf.exe"
    ),
    "many_recipients": CheckSpec(
        _many_recipients, {"min": 25}, "many addresses in To and Cc"
    ),
    "subject_shouting": CheckSpec(
        _subject_shouting, {"min_letters": 10}, "the subject is all capitals"
    ),
}
