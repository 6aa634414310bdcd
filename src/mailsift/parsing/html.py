"""HTML to text and links, with selectolax's lexbor parser (fast, HTML5-conformant).

Links keep their displayed text next to their target so detectors can compare the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

__all__ = ["MAX_DEPTH", "HtmlView", "bound_nesting", "render_html"]

_WS = re.compile(r"[ \t\r\f\v\u00a0\u200b\u200c\u200d\ufeff]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@dataclass(frozen=True, slots=True)
class HtmlView:
    text: str
    links: tuple[tuple[str, str, str], ...]  # (target, displayed text, tag kind)
    forms: int
    scripts: int
    dropped_tags: int = 0  # nested deeper than MAX_DEPTH (see bound_nesting)


#: Elements the HTML5 tree builder handles in time independent of the nesting (measured at
#: 100k nested: < 0.15 s) and that detectors need: never dropped.
_KEEP = frozenset({"a", "area", "form", "img", "script", "style", "title", "head", "body",
                   "html", "base", "meta", "link", "input", "iframe", "object", "embed"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "param", "source", "track", "wbr"})
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)[^>]*>")
#: nesting that costs lexbor well under 0.1 s whatever the element
MAX_DEPTH = 1000


def bound_nesting(html: str, max_depth: int = MAX_DEPTH) -> tuple[str, int]:
    """Drop the tags nested deeper than ``max_depth`` (their text stays), and say how many.

    lexbor's tree builder scans the stack of open elements for every block-level start tag
    ("close a p element in button scope"), so nesting is quadratic: 100k nested ``<div>`` took
    over 30 s, outside any time budget. One linear pass over the tags counts the depth (end tags
    close, void elements do not open) and keeps only the tags at or above the limit, and those
    in ``_KEEP`` (links, forms, images, scripts) at any depth."""
    if html.count("<") <= max_depth:
        return html, 0
    out: list[str] = []
    depth = dropped = last = 0
    for m in _TAG.finditer(html):
        closing, name = m.group(1), m.group(2).lower()
        keep = name in _KEEP
        if closing:
            keep = keep or depth <= max_depth
            depth = max(0, depth - 1)
        elif name not in _VOID and not m.group(0).endswith("/>"):
            depth += 1
            keep = keep or depth <= max_depth
        else:
            keep = True
        if not keep:
            out.append(html[last:m.start()])
            last = m.end()
            dropped += 1
    if not dropped:
        return html, 0
    out.append(html[last:])
    return "".join(out), dropped


def render_html(html: str, max_links: int) -> HtmlView:
    html, dropped = bound_nesting(html)
    tree = LexborHTMLParser(html)
    links: list[tuple[str, str, str]] = []
    images: list[tuple[str, str, str]] = []
    forms = scripts = 0
    # One pass over the elements that matter (measured: separate queries cost twice as much).
    for node in tree.css("a[href], area[href], form, img[src], script"):
        tag = node.tag
        if tag == "script":
            scripts += 1
        elif tag == "form":
            forms += 1
            action = node.attributes.get("action") or ""
            if action and len(links) < max_links:
                links.append((action, "", "form"))
        elif tag == "img":
            src = node.attributes.get("src") or ""
            if src.startswith(("http:", "https:", "//")) and len(images) < max_links:
                images.append((src, node.attributes.get("alt") or "", "img"))
        elif len(links) < max_links:
            href = node.attributes.get("href") or ""
            if href:
                links.append((href, _WS.sub(" ", node.text(deep=True)).strip(), tag or "a"))
    tree.strip_tags(["script", "style", "head", "title", "noscript", "template"])
    root = tree.body or tree.root
    text = root.text(deep=True, separator=" ") if root is not None else ""
    text = _WS.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    room = max(0, max_links - len(links))
    return HtmlView(text=text.strip(), links=(*links, *images[:room]), forms=forms,
                    scripts=scripts, dropped_tags=dropped)
