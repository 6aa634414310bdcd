"""Feature extraction: ParsedMessage -> named features, identical at training and scan time.

Features are plain strings with a value, grouped by prefix so an admin can read an explanation:

* ``s:`` subject words, ``w:`` body words (HTML rendered to text), ``b:`` body word pairs, all
  without function words and numbers (:data:`~mailsift.ml.lexicon.STOPWORDS`);
* ``ud:`` registrable domains of links, ``uh:`` link hosts, ``up:`` link path words,
  ``ed:`` domains of addresses written in the body;
* ``x:`` structure and header anomalies that describe a threat (executable, archive or markup
  attachments, link tricks, a Reply-To elsewhere, mixed scripts) and two signs of a
  conversation (a quoted earlier message, thread headers); feature version 4 dropped the
  structure that identified a *collection* (part and link counts, HTML-only, body length,
  mailer, Message-ID domain, From suffix): see docs/model-card.md;
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
from mailsift.ml.lexicon import CLASS_OF, FREE_HOSTS, SHORTENERS, STOPWORDS
from mailsift.ml.receiver import SenderView, sender_view
from mailsift.ml.techniques import html_tricks, link_hosting, obfuscation, sender_shape
from mailsift.parsing.replies import quotes_earlier_message

__all__ = ["FEATURE_VERSION", "MAX_BODY_CHARS", "TEXT_PREFIXES", "extract", "extract_view"]

#: Bumped whenever extraction changes; a model records it and refuses a mismatch.
FEATURE_VERSION = "4"
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
#: Attached pages and pictures that can carry a script or a form (documents as such are what
#: business mail attaches all day, and feature version 4 no longer counts them).
_MARKUP_EXT = frozenset({"htm", "html", "shtml", "xhtml", "svg", "mht", "mhtml"})
_ARCHIVE_EXT = frozenset({"zip", "rar", "7z", "gz", "tar", "cab", "ace", "arj", "z"})

def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().translate(_DIGITS_TO_ZERO))


def _content(words: list[str]) -> list[str]:
    """``words`` without function words (:data:`~mailsift.ml.lexicon.STOPWORDS`) and without
    numbers (digits are folded to 0: "000" is in every invoice and every price list)."""
    return [w for w in words if w not in STOPWORDS and w.strip("0")]


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
    """Structure that says something about a threat. Feature version 4 dropped what says which
    collection a message came from (measured, docs/model-card.md): the number of MIME parts,
    HTML-only or text-only, the HTML/text ratio, body length, link and attachment counts,
    attachment extensions as such, missing Message-ID/Date/MIME-Version, the Message-ID's domain,
    the mailer, the From domain's suffix and whether the display name is in the address."""
    body = view.body
    if view.recipient_in_subject:
        # "jane@example.org, your account ...": lures name the mailbox; people rarely do
        out["x:rcpt_in_subject"] += 1
    if (not view.subject.isascii() and _MIXED_SCRIPT.search(view.subject)) or \
            (not body.isascii() and _MIXED_SCRIPT.search(body, 0, MAX_BODY_CHARS)):
        out["x:mixed_script"] += 1
    if quotes_earlier_message(body, MAX_BODY_CHARS):
        # a conversation: the earlier message is quoted (lures that fake one are rare and
        # carry other evidence; a reply of a real thread nearly always quotes)
        out["x:quoted"] += 1
    names = {n.lower() for n, _ in view.headers}
    if "in-reply-to" in names or "references" in names:
        out["x:thread_headers"] += 1
    for att in msg.attachments:
        ext = _ext(att.filename)
        if ext in _EXEC_EXT:
            out["x:att_exec"] += 1
        elif ext in _ARCHIVE_EXT:
            out["x:att_archive"] += 1
        elif ext in _MARKUP_EXT:
            out["x:att_markup"] += 1
        if att.detected_type and att.declared_type and \
                att.detected_type.split("/")[0] != att.declared_type.split("/")[0]:
            out["x:att_type_mismatch"] += 1
        if att.encrypted:
            out["x:att_encrypted"] += 1
    if msg.from_addr is not None:
        display = msg.from_addr.display_name
        for m in _EMAIL.finditer(display):
            if m.group(1).lower() != msg.from_addr.domain:
                out["x:display_addr_mismatch"] += 1
        # DMARC From-munging by a list server ("Jane Doe via dev-list" <dev-list@...>) is a
        # receiver-side rewrite: keep the author's name.
        munged = view.list_mail and " via " in display
        out.update("dn:" + w for w in _words(display.split(" via ", 1)[0] if munged
                                            else display)[:6])
        if msg.reply_to and all(r.domain != msg.from_addr.domain for r in msg.reply_to):
            out["x:reply_to_other_domain"] += 1
    else:
        out["x:no_from"] += 1


def _under(host: str, domains: frozenset[str]) -> bool:
    """``host`` is one of ``domains`` or below one. (Not by registrable domain: the public
    suffix list names web.app, pages.dev, blogspot.com... as suffixes, so every site there is
    its own registrable domain.)"""
    labels = host.split(".")
    return any(".".join(labels[i:]) in domains for i in range(max(len(labels) - 1, 1)))


def _urls(view: SenderView, from_domain: str, out: Counter[str]) -> None:
    urls = view.urls
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
        if u.source == "form":
            out["x:form_action"] += 1
        shown = u.display_text.strip().lower()
        if shown and ("." in shown and " " not in shown) and u.domain and u.domain not in shown:
            out["x:url_text_mismatch"] += 1
        path = u.url.split("//", 1)[-1].partition("/")[2].lower()
        for word in _PATH_WORD.findall(path)[:8]:
            out[f"up:{word}"] += 1
    if domains and from_domain:
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
    subject_all = _words(view.subject)
    body = view.body[:MAX_BODY_CHARS]
    words_all = _words(body)
    words = _content(words_all)
    counts: dict[str, int] = _prefixed("s:", Counter(_content(subject_all)))
    counts.update(_prefixed("w:", Counter(words)))
    pairs = words[:_MAX_PAIRS]
    counts.update(Counter([f"b:{a}_{b}" for a, b in itertools.pairwise(pairs)]))
    rest: Counter[str] = Counter("ed:" + d.lower()[:_MAX_TOKEN]
                                 for d in _email_domains(body, 50))
    if not subject_all:
        rest["x:no_subject"] += 1
    # the word classes read every word: a lure's "your account" is still a lure
    _classes(Counter(subject_all), Counter(words_all), rest)
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
