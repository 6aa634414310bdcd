"""The declaration a detector module makes (``SPEC = DetectorSpec(...)``), for detector authors.

The types live in ``mailsift.core.detector_spec`` (config and rule packs read declarations too);
this module re-exports them next to the detector contract. ``Factory`` is the typed form of
``DetectorSpec.factory``.
"""

from __future__ import annotations

from collections.abc import Callable

from mailsift.config.schema import Settings
from mailsift.core.detector_spec import CodeSpec, DetectorSpec, SpecError, check_spec
from mailsift.core.findings import Family, Stage
from mailsift.detectors.base import Detector, Services

__all__ = ["CodeSpec", "DetectorSpec", "Factory", "Family", "SpecError", "Stage", "check_spec"]

#: Builds the detector from the settings and the services the composition root hands over.
Factory = Callable[[Settings, Services], Detector]
