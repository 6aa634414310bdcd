"""Local threat feeds: formats, matching rules, versions, and failing loudly on bad files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mailsift.config.detectors import FeedSettings
from mailsift.core.errors import ConfigError
from mailsift.detectors.feeds import FeedSet, load_feed, load_feeds, normalise_url, shared_feeds


def test_normalise_url() -> None:
    assert normalise_url("HTTPS://WWW.Example.COM/a/b/#frag") == "example.com/a/b"
    assert normalise_url("example.com/x?y=1") == "example.com/x?y=1"


def test_openphish_phishtank_csv_and_json(tmp_path: Path) -> None:
    (tmp_path / "openphish.txt").write_text("# OpenPhish\nhttps://a.test/login\n\n")
    (tmp_path / "phishtank.csv").write_text(
        "phish_id,url,phish_detail_url,submission_time,verified\n"
        "1,http://b.test/x,https://phishtank.org/1,2026-01-01,yes\n")
    (tmp_path / "phishtank-online.json").write_text(json.dumps([{"phish_id": 2, "url": "http://c.test/y"}]))
    feeds = load_feeds(FeedSettings(url_lists=[str(tmp_path / n) for n in
                                               ("openphish.txt", "phishtank.csv",
                                                        "phishtank-online.json")]))
    assert [len(f) for f in feeds.feeds] == [1, 1, 1]
    hit = feeds.match_url("https://a.test/login/", "a.test")
    assert hit is not None and hit.feed == "openphish"
    assert feeds.match_url("http://b.test/x", "b.test") is not None
    assert feeds.match_url("http://c.test/y", "c.test") is not None
    assert feeds.match_url("http://a.test/other", "a.test") is None  # exact URL only
    assert set(feeds.versions()) == {"feed:openphish", "feed:phishtank",
                                     "feed:phishtank-online"}
    (tmp_path / "openphish.csv").write_text("url\nhttp://d.test/\n")
    with pytest.raises(ConfigError, match="share a name"):
        load_feeds(FeedSettings(url_lists=[str(tmp_path / "openphish.txt"),
                                           str(tmp_path / "openphish.csv")]))


def test_domain_lists_cover_subdomains_not_parents(tmp_path: Path) -> None:
    path = tmp_path / "domains.txt"
    path.write_text("! adblock comment\n0.0.0.0 bad.test\n||evil.example^\n*.wild.test\n"
                    "not a domain line\n")
    feed = load_feed(str(path), "domain", 100)
    assert feed.entries == {"bad.test", "evil.example", "wild.test"}
    feeds = FeedSet.of([feed])
    assert feeds.match_domain("cdn.bad.test") is not None
    assert feeds.match_domain("test") is None
    assert feeds.match_url("https://x.evil.example/a", "x.evil.example") is not None


def test_version_changes_with_content(tmp_path: Path) -> None:
    path = tmp_path / "h.txt"
    path.write_text("a" * 64 + "\n")
    v1 = load_feed(str(path), "hash", 10).version
    path.write_text("b" * 64 + "  file.exe\n")
    feed = load_feed(str(path), "hash", 10)
    assert feed.version != v1 and feed.entries == {"b" * 64}
    assert FeedSet.of([feed]).match_hash("B" * 64) is not None


def test_bad_feeds_fail_startup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_feeds(FeedSettings(url_lists=[str(tmp_path / "missing.txt")]))
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(ConfigError):
        load_feed(str(tmp_path / "bad.json"), "url", 10)
    (tmp_path / "many.txt").write_text("a.test\nb.test\n")
    with pytest.raises(ConfigError):
        load_feed(str(tmp_path / "many.txt"), "domain", 1)


def test_shared_feeds_load_once_per_content(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("bad.test\n")
    settings = FeedSettings(domain_lists=[str(path)])
    first = shared_feeds(settings)
    assert shared_feeds(settings) is first
    path.write_text("bad.test\nworse.test\n")
    os.utime(path, ns=(1, 1))  # a new modification time: a new snapshot
    assert shared_feeds(settings) is not first
    assert shared_feeds(settings).match_domain("worse.test") is not None
