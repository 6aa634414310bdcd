"""Layout and accessibility checks of console pages (issue 24), reusable by any browser test.

- ``axe_source()``: axe-core's ``axe.min.js``, installed from the npm registry at the version
  pinned by ``tests/web/axe/package-lock.json`` (``npm ci`` checks its sha512) into a cache
  directory outside the source tree, once per machine (``MAILSIFT_AXE_DIR`` overrides where).
- ``axe_violations(page)``: runs axe in the loaded page with the WCAG 2.0-2.2 A and AA rules and
  returns the violations of the given impacts, each as one readable line per element.
- ``layout_problems(page, signed_in=...)``: the page must not be wider than the viewport (no
  sideways scrolling) and, when signed in, the sign-out button must be inside the viewport.
- ``get_routes(router)``: the console's GET routes, so a test can insist every one is checked.

The console's pages allow no script (CSP ``script-src 'none'``); axe is evaluated through the
DevTools protocol (``page.evaluate``), which the page's CSP does not govern, so the pages are
checked exactly as they are served.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

AXE_PACKAGE = Path(__file__).resolve().parent / "axe"
#: the rule sets run: WCAG 2.0, 2.1 and 2.2, levels A and AA (axe's tags)
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
#: what fails a page; axe's other impacts are "moderate" and "minor"
FAILING_IMPACTS = ("serious", "critical")
SIGN_OUT = "header.top form.who button[type=submit]"


class AxeUnavailable(RuntimeError):
    """axe-core could not be installed (no npm on PATH, or the registry did not answer)."""


def _cache_dir() -> Path:
    lock = (AXE_PACKAGE / "package-lock.json").read_bytes()
    key = hashlib.sha256(lock).hexdigest()[:16]
    base = os.environ.get("MAILSIFT_AXE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mailsift-tests")
    return Path(base) / f"axe-core-{key}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One installer at a time (pytest-xdist workers start together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def axe_source() -> str:
    """The text of ``axe.min.js``, installing the pinned package first if needed."""
    target = _cache_dir()
    script = target / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        with _locked(target.with_suffix(".lock")):
            if not script.exists():
                _install(target)
    return script.read_text(encoding="utf-8")


def _install(target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise AxeUnavailable("npm is not on PATH (apt-get install npm): axe-core comes from "
                             "the npm registry")
    work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(AXE_PACKAGE / name, work / name)
        done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                               "--loglevel=error"], cwd=work, capture_output=True, text=True,
                              timeout=300, check=False)
        if done.returncode != 0:
            raise AxeUnavailable(f"npm ci of axe-core failed ({done.returncode}): "
                                 f"{(done.stderr or done.stdout).strip()[-800:]}")
        work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def open_details(page: Any) -> None:
    """Unfold every ``<details>``: what it hides must fit and pass axe too."""
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")


def axe_version(page: Any) -> str:
    return str(page.evaluate("() => window.axe && window.axe.version"))


def axe_violations(page: Any, source: str, *, impacts: tuple[str, ...] = FAILING_IMPACTS,
                   tags: tuple[str, ...] = AXE_TAGS) -> list[str]:
    """axe's violations of ``impacts`` in the page as loaded, one line per rule and element.

    Every ``<details>`` is opened first, so forms folded away (a user's new password, a
    gate report) are checked too. Frames are not entered: the only one is the sandboxed
    message preview, which shows the sender's HTML, not the console's."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source)
    open_details(page)
    result = page.evaluate(
        """async (tags) => {
             const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                                resultTypes: ['violations'], iframes: false});
             return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.map(n => ({target: n.target.join(' '),
                                         summary: n.failureSummary}))}));
           }""", list(tags))
    lines = []
    for v in result:
        if v["impact"] not in impacts:
            continue
        for node in v["nodes"]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"{v['impact']} {v['id']} ({v['help']}) at {node['target']}: "
                         f"{summary[:300]}")
    return lines


_LAYOUT = """() => {
  window.scrollTo(0, 0);
  const width = window.innerWidth, doc = document.documentElement;
  const out = {scrollWidth: doc.scrollWidth, innerWidth: width, wide: [], signOut: null};
  if (doc.scrollWidth > width) {
    // the innermost elements that stick out on the right, to say what to fix
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.right > width + 1 && r.width > 0 &&
          ![...el.children].some(c => c.getBoundingClientRect().right > width + 1)) {
        let name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
          (el.className && typeof el.className === 'string'
            ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
        let p = el.parentElement, path = [];
        while (p && p !== document.body && path.length < 3) {
          path.unshift(p.tagName.toLowerCase() + (p.id ? '#' + p.id : ''));
          p = p.parentElement;
        }
        out.wide.push(path.concat(name).join(' > ') + ' right=' + Math.round(r.right));
        if (out.wide.length >= 8) break;
      }
    }
  }
  out.scrolling = [...document.querySelectorAll('.scroll')]
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => `${el.getAttribute('aria-label')} (${el.scrollWidth} px in ${el.clientWidth})`);
  const button = document.querySelector(arguments_selector);
  if (button) {
    const r = button.getBoundingClientRect(), style = getComputedStyle(button);
    out.signOut = {left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                   shown: r.width > 0 && r.height > 0 && style.visibility !== 'hidden'};
  }
  return out;
}"""


def layout_problems(page: Any, *, signed_in: bool, wide_tables: bool = True) -> list[str]:
    """What is wrong with the page's layout at the current viewport: sideways scrolling
    (with the elements that stick out); when ``signed_in``, a sign-out button that is
    missing, hidden or not inside the viewport (scrolled to the top); and, unless
    ``wide_tables``, a table that needs its own scroll box (``.scroll``) to be read."""
    found = page.evaluate(_LAYOUT.replace("arguments_selector", json.dumps(SIGN_OUT)))
    problems = []
    if found["scrollWidth"] > found["innerWidth"]:
        problems.append(f"scrolls sideways: {found['scrollWidth']} px wide in a "
                        f"{found['innerWidth']} px window; sticking out: "
                        + "; ".join(found["wide"]))
    if wide_tables is False and found["scrolling"]:
        problems.append("tables scroll inside their box: " + "; ".join(found["scrolling"]))
    if signed_in:
        box = found["signOut"]
        if box is None or not box["shown"]:
            problems.append("no visible sign-out button")
        elif box["left"] < 0 or box["right"] > found["innerWidth"] or box["top"] < 0:
            problems.append(f"the sign-out button is outside the window: {box}")
    return problems


_UNLABELLED = r"""() => {
  const words = /[\p{L}\p{N}]/u;
  const named = el => (el.getAttribute('aria-label') || '').trim() ||
                      (el.getAttribute('aria-labelledby') || '').trim();
  const out = [];
  for (const el of document.querySelectorAll('input, select, textarea, button')) {
    if (el.type === 'hidden') continue;
    const isButton = el.tagName === 'BUTTON' || ['submit', 'button', 'reset'].includes(el.type);
    const ok = isButton
      ? named(el) || words.test(el.tagName === 'BUTTON' ? el.textContent : el.value)
      : named(el) || [...el.labels].some(l => words.test(l.textContent));
    if (!ok) {
      const form = el.form ? ` in form[action="${el.form.getAttribute('action')}"]` : '';
      out.push(el.tagName.toLowerCase() + (el.name ? `[name="${el.name}"]` : '') + form);
    }
  }
  return out;
}"""


def unlabelled_controls(page: Any) -> list[str]:
    """Form controls without a label of their own: a field needs a ``<label>`` (visible, or
    ``.vh`` for screen readers only) or ``aria-label``, a button words (not just an icon) or
    ``aria-label``. Stricter than axe, which accepts a placeholder or a title as the name:
    a placeholder disappears as soon as someone types."""
    return list(page.evaluate(_UNLABELLED))


_FOCUS = r"""() => {
  const out = [];
  const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, ' +
              '[tabindex]:not([tabindex="-1"])';
  for (const el of document.querySelectorAll(sel)) {
    if (el.disabled || el.closest('[hidden], [inert]') || !el.getClientRects().length) continue;
    el.focus({preventScroll: true});
    if (document.activeElement !== el) continue;  // not focusable after all
    const s = getComputedStyle(el);
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
    const ring = s.boxShadow && s.boxShadow !== 'none';
    if (!outline && !ring) {
      out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
               (el.getAttribute('name') ? `[name="${el.getAttribute('name')}"]` : '') +
               (el.getAttribute('href') ? `[href="${el.getAttribute('href')}"]` : '') +
               ` (outline ${s.outlineStyle} ${s.outlineWidth})`);
    }
  }
  document.activeElement && document.activeElement.blur();
  window.scrollTo(0, 0);
  return out;
}"""


def keyboard_problems(page: Any) -> list[str]:
    """The keyboard path of a page: the first Tab reaches a "skip to main content" link that
    is then visible and moves focus into ``<main>`` (or, on a page that focuses a field of
    its own, like the sign-in form, focus starts inside ``<main>``); and every focusable
    element shows a focus ring (an outline of at least 2 px, or a box shadow) when focused
    from the keyboard."""
    problems: list[str] = []
    page.evaluate("() => window.scrollTo(0, 0)")
    start = page.evaluate("""() => document.activeElement === document.body ? null
        : {main: !!document.activeElement.closest('main'),
           what: document.activeElement.outerHTML.slice(0, 80)}""")
    if start is not None:
        # an autofocused field (the sign-in forms): focus starts in the content already
        if not start["main"]:
            problems.append(f"focus starts outside <main>, on {start['what']}")
        return problems + [f"no visible focus: {e}" for e in page.evaluate(_FOCUS)]
    page.keyboard.press("Tab")
    first = page.evaluate("""() => {
        const el = document.activeElement, r = el.getBoundingClientRect();
        return {skip: el.matches('a.skip[href="#main"]'), inside: r.top >= 0 && r.left >= 0
                && r.bottom <= innerHeight && r.right <= innerWidth && r.width > 0,
                what: el.outerHTML.slice(0, 80)}; }""")
    if not first["skip"]:
        problems.append(f"the first Tab reaches {first['what']}, not the skip link")
    else:
        if not first["inside"]:
            problems.append("the focused skip link is not shown in the window")
        page.keyboard.press("Enter")
        if not page.evaluate("() => document.activeElement.id === 'main'"):
            problems.append("the skip link does not move focus to <main id=main>")
    # scripted focus after a key press counts as keyboard focus (:focus-visible)
    problems += [f"no visible focus: {e}" for e in page.evaluate(_FOCUS)]
    return problems


def get_routes(router: Any) -> list[str]:
    """The path of every GET route of a FastAPI router or app, in declaration order."""
    from fastapi.routing import APIRoute

    return [r.path for r in router.routes if isinstance(r, APIRoute) and "GET" in r.methods]
