"""The command line every benchmark starts with: its docstring as the description and its
numeric knobs as ``--name N`` options (``bench/`` is not a package; scripts import this from
their own folder)."""

from __future__ import annotations

import argparse


def bench_parser(doc: str | None, **numbers: float) -> argparse.ArgumentParser:
    """``--messages 2000``-style options, one per keyword (``_`` becomes ``-``), typed like
    their default."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in numbers.items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    return ap
