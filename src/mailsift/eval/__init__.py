"""The evaluation harness: the full pipeline over labelled sources, the false-positive and catch
rates per source and action, curves, threshold selection and leave-one-source-out runs.

It sits at the services level (it builds pipelines with ``mailsift.pipeline.build``);
``mailsift eval`` is its command-line face.
"""

from mailsift.eval.metrics import choose_threshold, confusion, curves, rates, summarise
from mailsift.eval.runner import Record, eval_settings, scan_sources

__all__ = ["Record", "choose_threshold", "confusion", "curves", "eval_settings", "rates",
           "scan_sources", "summarise"]
