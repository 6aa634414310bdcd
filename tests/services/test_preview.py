"""The quarantine preview is inert whatever the HTML (security regressions live here)."""

from __future__ import annotations

import pytest

from mailsift.services.preview import sanitize_html


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)><script>alert(2)</script></svg>",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
        '<div style="background:url(https://track.example/p)">x</div>',
        "<form action=https://evil.example><input name=password></form>",
        '<meta http-equiv="refresh" content="0;url=https://evil.example">',
        "<base href=https://evil.example/><link rel=stylesheet href=x.css>",
        "<object data=x.swf></object><embed src=x.swf>",
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>",
        "<scr<script>ipt>alert(1)</script>",
        "<table background=https://t.example/x><tr><td onclick=x()>c</td></tr></table>",
    ],
)
def test_no_active_or_remote_content_survives(html: str) -> None:
    out = sanitize_html(html).lower()
    assert "<script" not in out and "<iframe" not in out and "<img" not in out
    assert "<svg" not in out and "<form" not in out and "<input" not in out
    assert "<meta" not in out and "<link" not in out and "<base" not in out
    assert "<a " not in out and "href" not in out and "src=" not in out
    assert " on" not in out.replace(" only", "") or "=" not in out
    assert "style=" not in out and "background=" not in out


def test_links_are_shown_as_text_and_formatting_kept() -> None:
    out = sanitize_html('<p>Pay <b>now</b> at <a href="https://bank.example.evil/">your bank'
                        '</a></p><img alt="logo" src="https://t.example/l.png">')
    assert out == ("<p>Pay <b>now</b> at your bank &lt;https://bank.example.evil/&gt;</p>"
                   "[image: logo]")


def test_deep_nesting_and_size_are_bounded() -> None:
    out = sanitize_html("<div>" * 50_000 + "x", max_chars=1000)
    assert len(out) < 1000 * 3  # the cut, plus closing what is open
    assert out.count("<div>") == out.count("</div>")
