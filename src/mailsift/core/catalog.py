"""The installed detectors: every ``DetectorSpec`` published in the ``mailsift.detectors`` entry
point group, built-in and third-party alike.

A package adds a detector by naming its spec in its own metadata::

    [project.entry-points."mailsift.detectors"]
    example = "mailsift_example.detector:SPEC"

Loading is strict, because a detector that quietly went missing is a check switched off: an
entry point that fails to import, is not a ``DetectorSpec``, is named differently from its spec,
declares a code outside its prefix or a family that is not a ``Family``, or claims a prefix
another detector owns, is a ``ConfigError`` at startup naming the entry point and the
distribution it came from.

It lives in ``core`` (stdlib only: ``importlib.metadata``) because config derives the default
``[detectors] enabled`` and the detectors' settings sections from it, and rule packs their
reserved prefixes; the modules it loads are imported by name, through package metadata.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType

from mailsift.core.detector_spec import DetectorSpec, SpecError, check_spec
from mailsift.core.errors import ConfigError

__all__ = ["CORE_PREFIXES", "GROUP", "Catalog", "catalog", "load_catalog"]

GROUP = "mailsift.detectors"
#: Code prefixes the pipeline itself emits (``DETECTOR_ERROR``, ``DETECTOR_TIMEOUT``).
CORE_PREFIXES = ("DETECTOR_",)


@dataclass(frozen=True)
class Catalog:
    """The checked declarations by name, in default run order (stage, then ``order``), and
    the distribution each came from (``""`` when unknown)."""

    specs: Mapping[str, DetectorSpec]
    origins: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __getitem__(self, name: str) -> DetectorSpec:
        return self.specs[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def default_enabled(self) -> tuple[str, ...]:
        return tuple(n for n, s in self.specs.items() if s.enabled_by_default)

    def reserved_prefixes(self) -> tuple[str, ...]:
        """Prefixes rule ids may not use: the pipeline's and every detector's."""
        own = (p for s in self.specs.values() for p in (s.prefix, *s.dynamic_prefixes) if p)
        return tuple(dict.fromkeys((*CORE_PREFIXES, *own)))

    def from_dist(self, dist: str) -> Catalog:
        """The detectors one distribution installed (``mailsift``: the built-in ones)."""
        keep = [n for n in self.specs if self.origins.get(n, "") == dist]
        return Catalog(MappingProxyType({n: self.specs[n] for n in keep}),
                       MappingProxyType({n: dist for n in keep}))

    def owner_of(self, code: str) -> DetectorSpec | None:
        return next((s for s in self.specs.values() if s.prefix and code.startswith(s.prefix)),
                    None)


def _where(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    origin = f" from {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point {ep.name!r} = {ep.value!r}{origin}"


def load_catalog(eps: Iterable[EntryPoint]) -> Catalog:
    """Load and check the specs behind ``eps``."""
    found: dict[str, tuple[DetectorSpec, str]] = {}
    origins: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for ep in sorted(eps, key=lambda e: e.name):
        where = _where(ep)
        if ep.name in found:
            raise ConfigError(f"two detectors are named {ep.name!r}: {found[ep.name][1]} and "
                              f"{where}", source="detectors")
        try:
            loaded = ep.load()
        except Exception as exc:
            raise ConfigError(f"detector {where} failed to load: {type(exc).__name__}: {exc}",
                              source="detectors") from exc
        try:
            spec = check_spec(loaded, where)
        except SpecError as exc:
            raise ConfigError(str(exc), source="detectors") from exc
        if spec.name != ep.name:
            raise ConfigError(f"{where}: the spec is named {spec.name!r}; the entry point must "
                              "carry the detector's name", source="detectors")
        if spec.prefix:
            for other, owner in prefixes.items():
                if spec.prefix.startswith(other) or other.startswith(spec.prefix):
                    raise ConfigError(f"{where}: prefix {spec.prefix} overlaps {other} of "
                                      f"detector {owner!r}", source="detectors")
            if any(spec.prefix.startswith(p) for p in CORE_PREFIXES):
                raise ConfigError(f"{where}: prefix {spec.prefix} is the pipeline's",
                                  source="detectors")
            prefixes[spec.prefix] = spec.name
        found[spec.name] = (spec, where)
        dist = getattr(ep, "dist", None)
        origins[spec.name] = dist.name if dist is not None else ""
    ordered = sorted(found.values(), key=lambda sw: (sw[0].stage.order, sw[0].order, sw[0].name))
    return Catalog(MappingProxyType({s.name: s for s, _ in ordered}), MappingProxyType(origins))


_lock = threading.RLock()
_cached: list[Catalog] = []


def catalog() -> Catalog:
    """The installed detectors, loaded once per process (entry points are package metadata,
    which does not change under a running process)."""
    with _lock:
        if not _cached:
            _cached.append(load_catalog(entry_points(group=GROUP)))
        return _cached[0]
