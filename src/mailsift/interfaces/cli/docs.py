"""``mailsift docs detectors``: write (or check) the detector pages from the declarations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mailsift.interfaces.cli.main import EXIT_OK, EXIT_PROBLEM

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("docs", help="generate documentation from the code")
    what = p.add_subparsers(dest="what", metavar="WHAT")
    what.required = True
    d = what.add_parser("detectors", help="docs/detectors/*.md from the detector declarations")
    d.add_argument("--out", default="docs/detectors", help="folder of the pages")
    d.add_argument("--prose", default=None,
                   help="folder of hand-written prose, <name>.md per detector (default: "
                        "OUT/prose)")
    d.add_argument("--dist", default="mailsift",
                   help="document the detectors of this distribution ('*': every installed one)")
    d.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 listing the pages that are stale or missing")
    d.set_defaults(func=_detectors)


def stale_pages(out: Path, pages: dict[str, str]) -> list[str]:
    return sorted(name for name, text in pages.items()
                  if not (out / name).is_file() or (out / name).read_text("utf-8") != text)


def _detectors(args: argparse.Namespace) -> int:
    from mailsift.core.catalog import catalog
    from mailsift.detectors.docgen import render_pages

    out = Path(args.out)
    prose_dir = Path(args.prose) if args.prose else out / "prose"
    cat = catalog() if args.dist == "*" else catalog().from_dist(args.dist)
    prose = {p.stem: p.read_text("utf-8") for p in sorted(prose_dir.glob("*.md"))} \
        if prose_dir.is_dir() else {}
    unknown = sorted(set(prose) - set(cat.specs))
    if unknown:
        print(f"mailsift: prose for no such detector: {', '.join(unknown)} (in {prose_dir})",
              file=sys.stderr)
        return EXIT_PROBLEM
    pages = render_pages(cat, prose)
    stale = stale_pages(out, pages)
    if args.check:
        for name in stale:
            print(f"stale: {out / name} (run: mailsift docs detectors --out {out})")
        return EXIT_PROBLEM if stale else EXIT_OK
    out.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (out / name).write_text(pages[name], "utf-8")
        print(f"wrote {out / name}")
    return EXIT_OK
