"""Charts as server-rendered inline SVG: no JavaScript, no library, nothing fetched.

Each function returns an SVG fragment built only from numbers and escaped text, so it is safe to
insert as markup. Hovering any bar or point shows its exact value (an SVG ``<title>``), and bars
may link somewhere (the top-findings chart pivots to the trace of a finding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["PALETTE", "color_for", "hbars", "line_chart", "stacked_bars"]

PALETTE = {
    "malware": "#7f1d1d", "phish_high": "#b91c1c", "phish": "#ef4444", "spam_high": "#c2410c",
    "spoof": "#a21caf", "impersonation_user": "#7c3aed", "impersonation_domain": "#6366f1",
    "phish_suspect": "#f87171", "spam": "#f59e0b", "bulk": "#eab308", "clean": "#16a34a",
    "deliver": "#16a34a", "tag": "#65a30d", "junk": "#f59e0b", "quarantine": "#dc2626",
    "tempfail": "#64748b", "reject": "#111827",
}
_FALLBACK = ("#0ea5e9", "#14b8a6", "#8b5cf6", "#f97316", "#84cc16", "#06b6d4")
_W, _H, _PAD_L, _PAD_B, _PAD_T = 720, 220, 48, 28, 10


def color_for(name: str, i: int = 0) -> str:
    return PALETTE.get(name, _FALLBACK[i % len(_FALLBACK)])


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step:
            return float(step)
    magnitude = 10 ** (len(str(int(value))) - 1)
    return float((int(value / magnitude) + 1) * magnitude)


def _axis(top: float, fmt: str, label_every: int, labels: Sequence[str], slot: float) -> str:
    out = []
    plot_h = _H - _PAD_B - _PAD_T
    for frac in (0.0, 0.5, 1.0):
        y = _PAD_T + plot_h * (1 - frac)
        out.append(f'<line x1="{_PAD_L}" x2="{_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{_PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" '
                   f'fill="#6b7280">{escape(fmt.format(top * frac))}</text>')
    for i, label in enumerate(labels):
        if i % label_every == 0:
            x = _PAD_L + slot * i + slot / 2
            out.append(f'<text x="{x:.1f}" y="{_H - 8}" text-anchor="middle" font-size="10" '
                       f'fill="#6b7280">{escape(label)}</text>')
    return "".join(out)


def _legend(names: Sequence[str], colours: Sequence[str] = ()) -> str:
    items = []
    x = _PAD_L
    for i, name in enumerate(names):
        colour = colours[i] if i < len(colours) else color_for(name, i)
        items.append(f'<rect x="{x}" y="0" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="9" font-size="11" fill="#374151">'
                     f'{escape(name)}</text>')
        x += 24 + 7 * len(name)
    label = escape("legend: " + ", ".join(names))
    return (f'<svg class="legend" viewBox="0 0 {_W} 14" role="img" aria-label="{label}">'
            f'{"".join(items)}</svg>')


def stacked_bars(labels: Sequence[str], series: Mapping[str, Sequence[int]], *,
                 title: str) -> str:
    """One bar per time bucket, stacked by series (category or action)."""
    n = len(labels)
    totals = [sum(s[i] for s in series.values()) for i in range(n)]
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = _W - _PAD_L, _H - _PAD_B - _PAD_T
    slot = plot_w / max(n, 1)
    bars = []
    for i in range(n):
        y = float(_PAD_T + plot_h)
        for j, (name, values) in enumerate(series.items()):
            v = values[i]
            if not v:
                continue
            h = plot_h * v / top
            y -= h
            bars.append(f'<rect x="{_PAD_L + slot * i + 1:.1f}" y="{y:.1f}" '
                        f'width="{max(slot - 2, 1):.1f}" height="{h:.1f}" '
                        f'fill="{color_for(name, j)}"><title>{escape(labels[i])}: '
                        f'{escape(name)} {v}</title></rect>')
    every = max(1, n // 8)
    return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
            f'{_legend(list(series))}<svg viewBox="0 0 {_W} {_H}" role="img" '
            f'aria-label="{escape(title)}">{_axis(top, "{:.0f}", every, labels, slot)}'
            f'{"".join(bars)}</svg></figure>')


def line_chart(labels: Sequence[str], values: Sequence[float | None], *, title: str,
               guides: Sequence[tuple[float, str, str]] = (),
               name: str = "quarantine rate", marks: Sequence[bool] = ()) -> str:
    """A rate over time (as a percentage) with horizontal guide lines (baseline, limit);
    points whose ``marks`` entry is true are drawn larger (the breaker would trip there)."""
    n = len(labels)
    known = [v for v in values if v is not None]
    # percent axis, never above 100%: a limit over 100% cannot be reached and is drawn at the top
    top = min(_nice_max(100 * max([*known, *(g[0] for g in guides), 0.0001]) * 1.1), 100) / 100
    plot_w, plot_h = _W - _PAD_L, _H - _PAD_B - _PAD_T
    slot = plot_w / max(n, 1)

    def y(v: float) -> float:
        return _PAD_T + plot_h * (1 - min(v / top, 1.0))

    parts = [_axis(top * 100, "{:.0f}%" if top >= 0.1 else "{:.2g}%", max(1, n // 8), labels,
                   slot)]
    for value, guide, colour in guides:
        parts.append(f'<line x1="{_PAD_L}" x2="{_W}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="{colour}" stroke-dasharray="6 4"><title>{escape(guide)}: '
                     f'{100 * value:.3g}%</title></line>')
    points = []
    for i, v in enumerate(values):
        if v is None:
            continue
        x = _PAD_L + slot * i + slot / 2
        points.append((x, y(v)))
        over = i < len(marks) and marks[i]
        mark = (' r="4" fill="#7f1d1d" class="over"' if over else ' r="2.5" fill="#dc2626"')
        note = " (the breaker trips)" if over else ""
        parts.append(f'<circle cx="{x:.1f}" cy="{y(v):.1f}"{mark}><title>'
                     f'{escape(labels[i])}: {100 * v:.3g}%{note}</title></circle>')
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in points)
        parts.insert(1, f'<polyline points="{path}" fill="none" stroke="#dc2626" '
                        'stroke-width="1.5"/>')
    legend = _legend([name, *(g[1] for g in guides)],
                     ["#dc2626", *(g[2] for g in guides)])
    return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{legend}'
            f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}">'
            f'{"".join(parts)}</svg></figure>')


def hbars(items: Sequence[tuple[str, float, str]], *, title: str, unit: str = "",
          empty: str = "nothing yet") -> str:
    """Horizontal bars ``(label, value, href)``; a non-empty href makes the bar a link."""
    if not items:
        return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
                f'<p class="muted">{escape(empty)}</p></figure>')
    row, label_w = 22, 260
    height = row * len(items) + 4
    top = max(v for _, v, _ in items) or 1
    bar_w = _W - label_w - 60
    parts = []
    for i, (label, value, href) in enumerate(items):
        y = 2 + row * i
        w = max(bar_w * value / top, 1)
        text = escape(label if len(label) <= 40 else label[:39] + "…")
        body = (f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="11" '
                f'fill="#1f2937">{text}</text><rect x="{label_w}" y="{y + 3}" width="{w:.1f}" '
                f'height="{row - 8}" fill="{color_for("", i)}"><title>{escape(label)}: '
                f'{value:g}{escape(unit)}</title></rect><text x="{label_w + w + 4:.1f}" '
                f'y="{y + 14}" font-size="11" fill="#374151">{value:g}{escape(unit)}</text>')
        parts.append(f'<a href="{escape(href)}">{body}</a>' if href else body)
    # a picture with links in it is a group of links, not one image (whose parts a screen
    # reader would never reach)
    role = "group" if any(href for _, _, href in items) else "img"
    return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
            f'<svg viewBox="0 0 {_W} {height}" role="{role}" aria-label="{escape(title)}">'
            f'{"".join(parts)}</svg></figure>')
