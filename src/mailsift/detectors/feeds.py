"""Local threat feeds: URL, domain and file-hash lists read from files, never fetched mid-scan.

Formats recognised per file (by content, not name): OpenPhish-style text (one URL a line),
PhishTank CSV (a header row with a ``url`` column) and PhishTank JSON (a list of objects with
``url``), domain lists (one domain a line; hosts-file lines ``0.0.0.0 example.com`` and
Adblock-style ``||example.com^`` accepted), hash lists (SHA-256 a line, ``sha256sum`` output
accepted). ``#``/``!``/``;`` start comments. Each file becomes a ``Feed`` with a content version
(SHA-256 prefix of its bytes) so every verdict that used it can name the snapshot.

This module is not a detector: links and attachments detectors consult a ``FeedSet``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mailsift.config.detectors import FeedSettings
from mailsift.core.errors import ConfigError

__all__ = ["Feed", "FeedHit", "FeedSet", "load_feed", "load_feeds", "normalise_url", "shared_feeds"]

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+"
                     r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


def normalise_url(url: str) -> str:
    """Scheme-less, lower-cased host, no fragment, no trailing slash: how feed URLs compare."""
    url = url.strip()
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return url.lower()
    if host.startswith("www."):
        host = host[4:]
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"


@dataclass(frozen=True, slots=True)
class Feed:
    """One loaded feed file: its entries by kind and the content version of the snapshot."""

    name: str
    kind: str  # url | domain | hash
    version: str
    entries: frozenset[str]

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True, slots=True)
class FeedHit:
    feed: str
    version: str
    entry: str


@dataclass(frozen=True)
class FeedSet:
    """All loaded feeds. Lookups are set membership only (no I/O, O(labels) per host)."""

    feeds: tuple[Feed, ...] = ()
    _url_hosts: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def of(cls, feeds: Iterable[Feed]) -> FeedSet:
        feeds = tuple(feeds)
        hosts = frozenset(e.split("/", 1)[0].split("?", 1)[0]
                          for f in feeds if f.kind == "url" for e in f.entries)
        return cls(feeds, hosts)

    def versions(self) -> Mapping[str, str]:
        return {f"feed:{f.name}": f.version for f in self.feeds}

    def match_url(self, url: str, host: str) -> FeedHit | None:
        """An exact URL entry, or a domain entry covering ``host`` or any parent of it."""
        if self._url_hosts and host.removeprefix("www.") in self._url_hosts:
            norm = normalise_url(url)
            for feed in self.feeds:
                if feed.kind == "url" and norm in feed.entries:
                    return FeedHit(feed.name, feed.version, norm)
        return self.match_domain(host)

    def match_domain(self, host: str) -> FeedHit | None:
        labels = host.lower().strip(".").split(".")
        for feed in self.feeds:
            if feed.kind != "domain":
                continue
            for i in range(len(labels) - 1):
                cand = ".".join(labels[i:])
                if cand in feed.entries:
                    return FeedHit(feed.name, feed.version, cand)
        return None

    def match_hash(self, sha256: str) -> FeedHit | None:
        sha = sha256.lower()
        for feed in self.feeds:
            if feed.kind == "hash" and sha in feed.entries:
                return FeedHit(feed.name, feed.version, sha)
        return None


def _lines(text: str) -> Iterable[str]:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!", ";")):
            yield line


def _parse_urls(text: str) -> set[str]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        data = json.loads(stripped)
        return {normalise_url(str(item["url"])) for item in data
                if isinstance(item, dict) and item.get("url")}
    first = stripped.split("\n", 1)[0].lower()
    if "," in first and "url" in [c.strip() for c in first.split(",")]:
        reader = csv.DictReader(io.StringIO(stripped))
        return {normalise_url(row["url"]) for row in reader if row.get("url")}
    return {normalise_url(line) for line in _lines(text)}


def _parse_domains(text: str) -> set[str]:
    out = set()
    for line in _lines(text):
        token = line.split()[-1] if line.split()[0] in ("0.0.0.0", "127.0.0.1", "::") else line
        token = token.split()[0].removeprefix("||").removesuffix("^").strip(".").lower()
        if token.startswith("*."):
            token = token[2:]
        if _DOMAIN.match(token):
            out.add(token)
    return out


def _parse_hashes(text: str) -> set[str]:
    out = set()
    for line in _lines(text):
        token = line.split()[0].lower()
        if _SHA256.match(token):
            out.add(token)
    return out


_PARSERS = {"url": _parse_urls, "domain": _parse_domains, "hash": _parse_hashes}


def load_feed(path: str, kind: str, max_entries: int) -> Feed:
    """Read one feed file. A missing or unreadable feed fails startup (it must not silently be
    an empty list)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {kind} feed {path}: {exc}", source="feeds") from exc
    try:
        entries = _PARSERS[kind](data.decode("utf-8", "replace"))
    except (ValueError, KeyError, csv.Error) as exc:
        raise ConfigError(f"{kind} feed {path} is malformed: {exc}", source="feeds") from exc
    if len(entries) > max_entries:
        raise ConfigError(f"{kind} feed {path} has {len(entries)} entries (max {max_entries})",
                          source="feeds")
    name = Path(path).name.split(".", 1)[0] or path
    return Feed(name, kind, hashlib.sha256(data).hexdigest()[:12], frozenset(entries))


def load_feeds(settings: FeedSettings) -> FeedSet:
    feeds = [load_feed(p, "url", settings.max_entries) for p in settings.url_lists]
    feeds += [load_feed(p, "domain", settings.max_entries) for p in settings.domain_lists]
    feeds += [load_feed(p, "hash", settings.max_entries) for p in settings.hash_lists]
    names = [f.name for f in feeds]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        # The name is the artifact a verdict records; two snapshots must not share one.
        raise ConfigError(f"feeds share a name (file name up to the first dot): {dups}",
                          source="feeds")
    return FeedSet.of(feeds)


_LOADED: dict[tuple[object, ...], FeedSet] = {}


def shared_feeds(settings: FeedSettings) -> FeedSet:
    """The feed files of ``settings``, loaded once per process and content (reloaded when a
    file changes). The composition root hands the set to the detectors as ``Services.feeds``."""
    paths = (*settings.url_lists, *settings.domain_lists, *settings.hash_lists)
    stamp = tuple(Path(p).stat().st_mtime_ns if Path(p).exists() else -1 for p in paths)
    key: tuple[object, ...] = (settings, stamp)
    if key not in _LOADED:
        _LOADED.clear()  # one live snapshot; an older one is garbage once detectors are rebuilt
        _LOADED[key] = load_feeds(settings)
    return _LOADED[key]
