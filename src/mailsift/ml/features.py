"""Feature extraction: ParsedMessage -> named features, identical at training and scan time.

Features are plain strings with a value, grouped by prefix so an admin can read an explanation:

* ``s:`` subject words, ``w:`` body words (HTML rendered to text), ``b:`` body word pairs;
* ``ud:`` registrable domains of links, ``uh:`` link hosts, ``up:`` link path words,
  ``ed:`` domains of addresses written in the body, ``fd:`` the From domain's suffix;
* ``x:`` structure and header anomalies (parts, attachment types, HTML/text ratio, link tricks);
* ``dn:`` words of the From display name, ``lt:`` words people see on links (anchor text),
  ``ut:`` top-level domains of links;
* ``k:`` word *classes* (credentials, account, verification, urgency, money, action, delivery,
  rewards) and their
  pairs: the vocabulary of a lure changes with the era ("your eBay account" then, "your Microsoft
  365 mailbox" now), the classes of words it is built from much less;
* ``l:`` how links relate to the sender: to the From domain or only elsewhere, shorteners,
  free hosting, long queries, many subdomains;
* techniques (:mod:`~mailsift.ml.techniques`, feature version 3): ``h:``/``ha:`` HTML tricks
  of the body and of attached HTML files (decoding hidden content, ``data:`` documents, meta
  refresh, password fields; scripts and forms in attachments), letters hidden from word
  filters, a From split into several mailboxes, free trial tenants, borrowed brand names, and
  links to raw cloud storage, public forms and IPFS. Word and host lists live in
  :mod:`~mailsift.ml.lexicon` (word classes in English, Portuguese, Spanish, German, Dutch,
  French and Italian).

Everything is computed on the :mod:`~mailsift.ml.receiver` sender view, so receiver-added headers
cannot reach the model. Digits are folded to ``0`` (years and ticket numbers identify a corpus's
era, not a threat). Only the first ``MAX_BODY_CHARS`` of the body are read: the budget is well
under a millisecond per message and the opening of a message carries its intent.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable

from mailsift.core.message import ParsedMessage
from mailsift.ml.lexicon import CLASS_OF, FREE_HOSTS, SHORTENERS
from mailsift.ml.receiver import SenderView, sender_view
from mailsift.ml.techniques import html_tricks, link_hosting, obfuscation, sender_shape

__all__ = ["FEATURE_VERSION", "MAX_BODY_CHARS", "TEXT_PREFIXES", "extract", "extract_view"]

#: Bumped whenever extraction changes; a model records it and refuses a mismatch.
FEATURE_VERSION = "3"
MAX_BODY_CHARS = 8_000
#: The word families. A model normalises them apart from all other features (each group to the
#: same length), so a long body's hundreds of words cannot drown the few link and structure
#: features (:func:`mailsift.ml.train.group_normalize`).
TEXT_PREFIXES = ("s:", "w:", "b:")
_MAX_PAIRS = 300
_MAX_TOKEN = 30

_WORD = re.compile(r"[^\W_]{2,30}")
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
_LOG_VALUE = [0.0] + [1.0 + math.log(n) for n in range(1, 64)]
_EMAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
#: The two halves of ``_EMAIL``: its local part, matched backwards on the reversed text, and its
#: domain, matched forwards after an ``@`` (see ``_email_domains``).
_LOCAL_REVERSED = re.compile(r"[\w.+-]*")
_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)+")
_PATH_WORD = re.compile(r"[a-z]{3,20}")
#: A Latin letter next to a Greek or Cyrillic one inside a word: look-alike letters ("Υour
#: ѡallet") that dodge word filters; ordinary Greek or Russian text does not mix scripts in a word.
_GREEK_CYRILLIC = "\u0370-\u03ff\u0400-\u04ff"
_MIXED_SCRIPT = re.compile(rf"[a-zA-Z][{_GREEK_CYRILLIC}]|[{_GREEK_CYRILLIC}][a-zA-Z]")
_EXEC_EXT = frozenset({"exe", "scr", "js", "jse", "vbs", "vbe", "bat", "cmd", "com", "pif", "hta",
                       "wsf", "lnk", "iso", "img", "msi", "ps1", "jar"})
_DOC_EXT = frozenset({"doc", "docm", "xls", "xlsm", "xlsb", "ppt", "pptm", "rtf", "pdf", "htm",
                      "html", "shtml", "svg"})
_ARCHIVE_EXT = frozenset({"zip", "rar", "7z", "gz", "tar", "cab", "ace", "arj", "z"})

def _bucket(n: float) -> str:
    """A coarse log2 bucket: counts matter by order of magnitude, not exactly."""
    return str(min(int(math.log2(n + 1)), 12))


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().translate(_DIGITS_TO_ZERO))


def _email_domains(text: str, limit: int) -> list[str]:
    """``_EMAIL.findall(text)[:limit]``, found from each ``@`` instead of from every letter.

    The regex tries a match at every word character and runs to the end of the word each time
    (a tenth of a millisecond on an 8k body). A match is a run of local-part characters ending
    at an ``@`` that a domain follows, so: for each ``@`` in order, the local part is the run
    before it (not reaching back into the previous match), the domain is matched after it.
    """
    out: list[str] = []
    at = text.find("@")
    if at < 0:
        return out
    size = len(text)
    reversed_text = text[::-1]
    pos = 0  # where the previous match ended: findall resumes there
    while at >= 0 and len(out) < limit:
        # reversed_text[size - at] is text[at - 1]; stop before text[pos - 1]
        local = _LOCAL_REVERSED.match(reversed_text, size - at, size - pos)
        if local is not None and local.end() > size - at:
            domain = _DOMAIN.match(text, at + 1)
            if domain is not None:
                out.append(domain.group())
                pos = domain.end()
                at = text.find("@", pos)
                continue
        at = text.find("@", at + 1)
    return out


def _ext(filename: str) -> str:
    return filename.rsplit(".", 1)[1].lower()[:8] if "." in filename else ""


def _structure(msg: ParsedMessage, view: SenderView, out: Counter[str]) -> None:
    out[f"x:parts{_bucket(len(msg.parts))}"] += 1
    has_text, has_html = bool(msg.text.strip()), bool(msg.html.strip())
    if has_html and not has_text:
        out["x:html_only"] += 1
    elif has_text and not has_html:
        out["x:text_only"] += 1
    if has_html:
        ratio = len(msg.html_text) / max(len(msg.html), 1)
        out[f"x:html_text_ratio{min(int(ratio * 10), 9)}"] += 1
    body = view.body
    out[f"x:body_len{_bucket(view.body_chars // 64)}"] += 1
    if len(body.strip()) < 40:
        out["x:body_empty"] += 1
    if view.recipient_in_subject:
        # "jane@example.org, your account ...": lures name the mailbox; people rarely do
        out["x:rcpt_in_subject"] += 1
    if (not view.subject.isascii() and _MIXED_SCRIPT.search(view.subject)) or \
            (not body.isascii() and _MIXED_SCRIPT.search(body, 0, MAX_BODY_CHARS)):
        out["x:mixed_script"] += 1
    for att in msg.attachments:
        ext = _ext(att.filename)
        out[f"x:att_ext:{ext or 'none'}"] += 1
        if ext in _EXEC_EXT:
            out["x:att_exec"] += 1
        elif ext in _DOC_EXT:
            out["x:att_doc"] += 1
        elif ext in _ARCHIVE_EXT:
            out["x:att_archive"] += 1
        if att.detected_type and att.declared_type and \
                att.detected_type.split("/")[0] != att.declared_type.split("/")[0]:
            out["x:att_type_mismatch"] += 1
        if att.encrypted:
            out["x:att_encrypted"] += 1
    if msg.attachments:
        out[f"x:att_count{_bucket(len(msg.attachments))}"] += 1
    names = {n.lower() for n, _ in view.headers}
    for required in ("message-id", "date", "mime-version"):
        if required not in names:
            out[f"x:no_{required}"] += 1
    if msg.from_addr is not None:
        display = msg.from_addr.display_name
        for m in _EMAIL.finditer(display):
            if m.group(1).lower() != msg.from_addr.domain:
                out["x:display_addr_mismatch"] += 1
        # DMARC From-munging by a list server ("Jane Doe via dev-list" <dev-list@...>) is a
        # receiver-side rewrite: keep the author's name, and do not compare it with the address.
        munged = view.list_mail and " via " in display
        display_words = _words(display.split(" via ", 1)[0] if munged else display)[:6]
        out.update("dn:" + w for w in display_words)
        addr = msg.from_addr.addr.lower()
        if munged or not display_words:
            pass
        elif any(len(w) >= 3 and w in addr for w in display_words):
            out["x:dn_in_address"] += 1
        else:
            out["x:dn_not_in_address"] += 1
        tld = msg.from_addr.domain.rsplit(".", 1)[-1][:12]
        out[f"fd:{tld}"] += 1
        if msg.reply_to and all(r.domain != msg.from_addr.domain for r in msg.reply_to):
            out["x:reply_to_other_domain"] += 1
        msgid_domain = msg.message_id.rsplit("@", 1)[-1].strip("<> ").lower()
        if msgid_domain and not msgid_domain.endswith(msg.from_addr.domain.split(".", 1)[-1]):
            out["x:msgid_other_domain"] += 1
    else:
        out["x:no_from"] += 1
    mailer = " ".join(v for n, v in view.headers if n.lower() in ("x-mailer", "user-agent"))
    if mailer:
        first = _WORD.findall(mailer.lower())
        out[f"x:mailer:{first[0] if first else 'other'}"] += 1


def _under(host: str, domains: frozenset[str]) -> bool:
    """``host`` is one of ``domains`` or below one. (Not by registrable domain: the public
    suffix list names web.app, pages.dev, blogspot.com... as suffixes, so every site there is
    its own registrable domain.)"""
    labels = host.split(".")
    return any(".".join(labels[i:]) in domains for i in range(max(len(labels) - 1, 1)))


def _urls(view: SenderView, from_domain: str, out: Counter[str]) -> None:
    urls = view.urls
    out[f"x:urls{_bucket(len(urls))}"] += 1
    domains = set()
    for u in urls[:200]:
        domains.add(u.domain)
        host = u.host
        if u.domain in SHORTENERS or host in SHORTENERS:
            out["l:shortener"] += 1
        elif _under(host, FREE_HOSTS):
            out["l:free_host"] += 1
        if host.count(".") >= 3 and not u.is_ip:
            out["l:deep_host"] += 1
        if "-" in u.domain:
            out["l:hyphen_domain"] += 1
        query = u.url.partition("?")[2]
        if len(query) > 80:
            out["l:long_query"] += 1
        if u.source == "href" and u.display_text:
            out.update("lt:" + w for w in _words(u.display_text)[:4])
        if not u.is_ip and "." in u.domain:
            out["ut:" + u.domain.rsplit(".", 1)[-1][:12]] += 1
        out[f"ud:{u.domain[:_MAX_TOKEN]}"] += 1
        out[f"uh:{u.host[:_MAX_TOKEN]}"] += 1
        if u.is_ip:
            out["x:url_ip"] += 1
        if u.punycode:
            out["x:url_punycode"] += 1
        if u.has_userinfo:
            out["x:url_userinfo"] += 1
        if u.scheme == "http":
            out["x:url_http"] += 1
        if u.source == "form":
            out["x:form_action"] += 1
        shown = u.display_text.strip().lower()
        if shown and ("." in shown and " " not in shown) and u.domain and u.domain not in shown:
            out["x:url_text_mismatch"] += 1
        path = u.url.split("//", 1)[-1].partition("/")[2].lower()
        for word in _PATH_WORD.findall(path)[:8]:
            out[f"up:{word}"] += 1
    if domains:
        out[f"x:url_domains{_bucket(len(domains))}"] += 1
        if from_domain:
            if any(from_domain == d or from_domain.endswith("." + d) for d in domains):
                out["l:to_from_domain"] += 1
            else:
                out["l:only_other_domains"] += 1


def _classes(subject_words: Counter[str], body_words: Counter[str], out: Counter[str]) -> None:
    found: Counter[str] = Counter()
    get = CLASS_OF.get
    # Over distinct words (a Counter), not tokens: a long body costs one look-up per word type.
    for counter, factor in ((subject_words, 2), (body_words, 1)):
        for w, n in counter.items():
            hit = get(w)
            if hit is not None:
                for name in hit:
                    found[name] += n * factor
    if not found:
        return
    out.update({"k:" + name: n for name, n in found.items()})
    # Pairs: "verify" + "account" + "suspended" together is a lure; each alone is everyday mail,
    # and a linear model cannot form the conjunction itself.
    for a, b in itertools.combinations(sorted(found), 2):
        out[f"k:{a}+{b}"] += 1


def _prefixed(prefix: str, counter: Counter[str]) -> dict[str, int]:
    return {prefix + w: n for w, n in counter.items()}


def extract_view(msg: ParsedMessage, view: SenderView) -> dict[str, float]:
    """Named features with their values (1 + log count), before any model vocabulary."""
    # The word families (s:, w:, b:) cannot collide with each other or with the rest, so they
    # are merged with dict.update (C speed) instead of adding counts one by one.
    subject_words = Counter(_words(view.subject))
    body = view.body[:MAX_BODY_CHARS]
    words = _words(body)
    body_words = Counter(words)
    counts: dict[str, int] = _prefixed("s:", subject_words)
    counts.update(_prefixed("w:", body_words))
    pairs = words[:_MAX_PAIRS]
    counts.update(Counter([f"b:{a}_{b}" for a, b in itertools.pairwise(pairs)]))
    rest: Counter[str] = Counter("ed:" + d.lower()[:_MAX_TOKEN]
                                 for d in _email_domains(body, 50))
    if not subject_words:
        rest["x:no_subject"] += 1
    _classes(subject_words, body_words, rest)
    from_domain = msg.from_addr.domain if msg.from_addr is not None else ""
    _urls(view, from_domain, rest)
    _structure(msg, view, rest)
    html_tricks(msg, rest)
    obfuscation(view.subject, msg.from_addr.display_name if msg.from_addr is not None else "",
                body, rest)
    sender_shape(msg, rest)
    link_hosting(view.urls, rest)
    counts.update(rest)
    table = _LOG_VALUE
    return {name: table[n] if n < 64 else 1.0 + math.log(n) for name, n in counts.items()}


def extract(msg: ParsedMessage, recipients: Iterable[str] = ()) -> dict[str, float]:
    """Features of ``msg`` as the sender wrote it (:func:`~mailsift.ml.receiver.sender_view`)."""
    return extract_view(msg, sender_view(msg, recipients, MAX_BODY_CHARS))
