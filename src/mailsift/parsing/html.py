"""HTML to text and links, with selectolax's lexbor parser (fast, HTML5-conformant).

Links keep their displayed text next to their target so detectors can compare the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

__all__ = ["HtmlView", "render_html"]

_WS = re.compile(r"[ \t\r\f\v\u00a0\u200b\u200c\u200d\ufeff]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@dataclass(frozen=True, slots=True)
class HtmlView:
    text: str
    links: tuple[tuple[str, str, str], ...]  # (target, displayed text, tag kind)
    forms: int
    scripts: int


def render_html(html: str, max_links: int) -> HtmlView:
    tree = LexborHTMLParser(html)
    links: list[tuple[str, str, str]] = []
    for node in tree.css("a[href], area[href]"):
        href = node.attributes.get("href") or ""
        if href:
            links.append((href, _WS.sub(" ", node.text(deep=True)).strip(), node.tag or "a"))
            if len(links) >= max_links:
                break
    forms = 0
    for node in tree.css("form"):
        forms += 1
        action = node.attributes.get("action") or ""
        if action and len(links) < max_links:
            links.append((action, "", "form"))
    for node in tree.css("img[src]"):
        if len(links) >= max_links:
            break
        src = node.attributes.get("src") or ""
        if src.startswith(("http:", "https:", "//")):
            links.append((src, node.attributes.get("alt") or "", "img"))
    scripts = len(tree.css("script"))
    tree.strip_tags(["script", "style", "head", "title", "noscript", "template"])
    root = tree.body or tree.root
    text = root.text(deep=True, separator=" ") if root is not None else ""
    text = _WS.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return HtmlView(text=text.strip(), links=tuple(links), forms=forms, scripts=scripts)
