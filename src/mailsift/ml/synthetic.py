"""A small synthetic labelled corpus, for tests and for trying ``mailsift train`` without data.

Messages are generated deterministically from word pools per label, and each *source* carries
its own receiver-side stamps (an Exchange tenant for one phish source, a list server for the ham
sources), the same traps the real corpora have, so tests can show that the model does not use
them. It is not a benchmark: real numbers come from ``mailsift eval`` on real mail.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

from mailsift.ml.corpus import LabelledSource

__all__ = ["SOURCES", "make_corpus", "synthetic_message", "train_synthetic_model"]

_COMMON = ("the", "and", "you", "for", "this", "with", "have", "from", "your", "will", "please",
           "today", "thanks", "regards", "team", "time", "new", "information")
_WORDS = {
    "ham": ("meeting", "patch", "review", "kernel", "lunch", "schedule", "build", "release",
            "tests", "merge", "agenda", "notes", "draft", "question", "config", "driver"),
    "spam": ("cheap", "offer", "discount", "pills", "casino", "winner", "free", "deal", "sale",
             "replica", "watches", "pharmacy", "bonus", "unsubscribe", "limited", "viagra"),
    "phish": ("verify", "account", "password", "suspended", "login", "confirm", "bank",
              "security", "unusual", "activity", "credentials", "locked", "invoice", "urgent",
              "mailbox", "expire"),
}
_LINKS = {
    "ham": ("https://git.example.org/commit/{n}", "https://wiki.example.org/page{n}"),
    "spam": ("http://cheap-deals{n}.example.biz/buy", "http://promo{n}.example.info/offer"),
    "phish": ("http://secure-login{n}.example.top/verify", "http://203.0.113.{n}/account/login"),
}

#: name -> (label, receiver-side headers that identify the mailbox, recipient)
SOURCES: dict[str, tuple[str, tuple[tuple[str, str], ...], str]] = {
    "ham_list_a": ("ham", (("List-Id", "<dev.lists.example.org>"),
                           ("List-Unsubscribe", "<https://lists.example.org/unsub>"),
                           ("X-BeenThere", "dev@lists.example.org")), "dev@lists.example.org"),
    "ham_list_b": ("ham", (("List-Id", "<users.groups.example.com>"),
                           ("Precedence", "list")), "users@groups.example.com"),
    "ham_office": ("ham", (("X-Spam-Status", "No, score=-2.0"),), "carol@corp.example"),
    "spam_trap_a": ("spam", (("X-Spam-Flag", "YES"),), "trap@spam.example"),
    "spam_trap_b": ("spam", (("X-Virus-Scanned", "clean"),), "someone@isp.example"),
    "phish_pot": ("phish", (("X-MS-Exchange-Organization-SCL", "1"),
                            ("X-MS-Exchange-CrossTenant-Id", "tenant-1"),
                            ("Authentication-Results", "pot.example; dkim=fail")),
                  "phishing@pot"),
    "phish_old": ("phish", (("X-Original-To", "username@domain.example"),),
                  "username@domain.example"),
}


def synthetic_message(label: str, rng: random.Random, *, receiver: Sequence[tuple[str, str]] = (),
                      recipient: str = "bob@example.net", n: int = 0) -> bytes:
    """One message of ``label`` with ``receiver`` headers prepended as a receiving MTA would."""
    words = [rng.choice(_WORDS[label]) if rng.random() < 0.35 else rng.choice(_COMMON)
             for _ in range(rng.randint(25, 60))]
    subject = " ".join(rng.choice(_WORDS[label]) for _ in range(3)).capitalize()
    local = recipient.split("@", 1)[0]
    link = rng.choice(_LINKS[label]).format(n=rng.randint(1, 40))
    text: str | None = f"Hello {local},\n\n{' '.join(words)}\n\n{link}\n"
    html = None
    if label != "ham" and rng.random() < 0.5:
        html = f"<html><body><p>Dear {local}</p><p>{' '.join(words)}</p>" \
               f"<a href=\"{link}\">click here</a></body></html>"
        text = None  # HTML-only, as much bulk mail is
    msg = EmailMessage()
    msg["From"] = f"Sender {n} <sender{n}@{label}-{rng.randint(1, 9)}.example>"
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = "Fri, 20 Nov 2026 09:30:00 +0000"
    msg["Message-ID"] = f"<{label}-{n}@mail{rng.randint(1, 9)}.example>"
    if text is not None:
        msg.set_content(text)
    else:
        msg.set_content(html or "", subtype="html")
    raw = bytes(msg)
    stamps = [f"Received: from mx{rng.randint(1, 9)}.example by receiver.example; "
              f"Mon, 1 Jan 2024 00:00:{n % 60:02d} +0000"]
    stamps += [f"{name}: {value}" for name, value in receiver]
    stamps.append(f"Delivered-To: {recipient}")
    return ("\r\n".join(stamps) + "\r\n").encode() + raw


def _messages(name: str, count: int, seed: int) -> Iterator[bytes]:
    label, receiver, recipient = SOURCES[name]
    rng = random.Random(f"{seed}:{name}")
    for n in range(count):
        yield synthetic_message(label, rng, receiver=receiver, recipient=recipient, n=n)


def make_corpus(root: Path, per_source: int = 40, seed: int = 7,
                names: Sequence[str] = tuple(SOURCES)) -> list[LabelledSource]:
    """Write one mbox per source under ``root`` plus a MANIFEST.tsv; return the sources."""
    root.mkdir(parents=True, exist_ok=True)
    rows = ["file\tlabel\tsource\tmessages\tnotes"]
    out = []
    for name in names:
        label = SOURCES[name][0]
        path = root / label / f"{name}.mbox"
        path.parent.mkdir(exist_ok=True)
        with path.open("wb") as fh:
            for raw in _messages(name, per_source, seed):
                fh.write(b"From synthetic@example Mon Jan  1 00:00:00 2024\n")
                fh.write(raw.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From "))
                fh.write(b"\n\n")
        rows.append(f"{label}/{name}.mbox\t{label}\t{name}\t{per_source}\t"
                    f"synthetic test data; licence: CC0")
        out.append(LabelledSource(name, label, path, per_source, "licence: CC0"))
    (root / "MANIFEST.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def train_synthetic_model(root: Path, per_source: int = 30, seed: int = 7,
                          objective: Literal["threat", "multinomial"] = "multinomial") -> Path:
    """Write a synthetic corpus under ``root`` and a small model trained on it; returns the
    model's JSON path (``root/model/synthetic.json``). Multinomial by default, so tests can
    exercise the phish class and its bands; the shipped model's objective is ``"threat"``."""
    from mailsift.ml.model import save_model
    from mailsift.ml.train import TrainOptions, extract_examples, train_model

    sources = make_corpus(root / "corpus", per_source, seed)
    examples = extract_examples(sources)
    options = TrainOptions(c=1.0, folds=3, max_iter=100, objective=objective)
    model, _ = train_model(examples, options, "synthetic", sources)
    return save_model(model, root / "model" / "synthetic.json")
