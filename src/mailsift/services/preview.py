"""A safe HTML preview of a quarantined message (selectolax, lexbor backend).

Rather than removing known-bad things from the message's HTML (and losing to the next trick),
the preview is *rebuilt*: only a short list of formatting tags is copied, always without any
attribute, and every text node is escaped. So no script, event handler, style, form, frame or
remote resource can survive, whatever the input. Links become visible text ("label <url>") that
is never clickable; images become "[image: alt]".
"""

from __future__ import annotations

from html import escape

from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = ["sanitize_html"]

_KEEP = frozenset({
    "p", "br", "div", "span", "b", "i", "u", "s", "strong", "em", "small", "sub", "sup", "ul",
    "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "td", "th",
    "caption", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code", "hr",
})
_VOID = frozenset({"br", "hr"})
# Dropped with everything inside them: active content, forms, embedded resources, metadata.
_DROP = frozenset({
    "script", "style", "head", "title", "iframe", "frame", "frameset", "object", "embed",
    "applet", "form", "input", "button", "select", "textarea", "option", "link", "meta", "base",
    "svg", "math", "template", "noscript", "audio", "video", "source", "track", "canvas", "map",
    "area", "portal", "-comment", "-doctype",
})


def sanitize_html(html: str, *, max_chars: int = 200_000) -> str:
    """Rebuild ``html`` as an inert fragment safe to show an operator."""
    tree = LexborHTMLParser(html[: max_chars * 4])
    root = tree.body or tree.root
    if root is None:
        return ""
    out: list[str] = []
    size = 0
    # Explicit stack, not recursion: hostile mail nests tags tens of thousands deep.
    stack: list[LexborNode | str] = [root]
    first = True
    while stack and size < max_chars:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            size += len(item)
            continue
        tag = item.tag or ""
        if tag == "-text":
            text = escape(item.text_content or "")
            out.append(text)
            size += len(text)
            continue
        if tag in _DROP:
            if tag == "form":
                out.append("[form removed]")
            continue
        children = list(item.iter(include_text=True))
        if first:  # the <body> itself: only its content
            first = False
            stack.extend(reversed(children))
            continue
        if tag == "img":
            alt = (item.attributes.get("alt") or "").strip()
            out.append(escape(f"[image: {alt}]" if alt else "[image]"))
            continue
        if tag == "a":
            href = (item.attributes.get("href") or "").strip()
            stack.append(escape(f" <{href}>") if href else "")
            stack.extend(reversed(children))
            continue
        if tag in _KEEP:
            out.append(f"<{tag}>")
            size += len(tag) + 2
            if tag in _VOID:
                continue
            stack.append(f"</{tag}>")
        stack.extend(reversed(children))
    if stack:  # cut at max_chars: still close what is open, so the fragment stays well-formed
        out.append("[…]")
        out.extend(i for i in reversed(stack) if isinstance(i, str) and i.startswith("</"))
    return "".join(out)
