"""Layered configuration: defaults -> mailsift.toml -> local.d/ (merge) -> override.d/ (replace)
-> environment. Every leaf value remembers which layer set it, for ``mailsift config explain``.

Environment variables look like ``MAILSIFT_POLICY__PRESET=strict``: section and key joined by a
double underscore; values are parsed as TOML values when they parse (``true``, ``3``,
``["a", "b"]``) and taken as strings otherwise.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mailsift.config.schema import Settings
from mailsift.core.errors import ConfigError

__all__ = ["LoadedConfig", "load_settings"]

ENV_PREFIX = "MAILSIFT_"
DEFAULT_PATHS = (Path("mailsift.toml"), Path("/etc/mailsift/mailsift.toml"))


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    layers: tuple[str, ...]
    sources: Mapping[str, str] = field(default_factory=dict)

    def explain(self) -> list[tuple[str, Any, str]]:
        """Every leaf setting with its effective value and the layer that set it."""
        rows: list[tuple[str, Any, str]] = []
        for key, value in _flatten(self.settings.model_dump(mode="json")).items():
            rows.append((key, value, self.sources.get(key, "default")))
        return rows


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and value and not _is_free_mapping(path):
            out.update(_flatten(value, path))
        else:
            out[path] = value
    return out


def _is_free_mapping(path: str) -> bool:
    # Mappings whose keys are data (rule ids, categories), not schema fields.
    return path.endswith((".weights", ".actions", ".guardrails", ".timeouts_ms"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", source=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from exc


def _merge(base: dict[str, Any], layer: Mapping[str, Any], source: str,
           sources: dict[str, str], prefix: str = "") -> None:
    for key, value in layer.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and isinstance(base.get(key), dict) \
                and not _is_free_mapping(path):
            _merge(base[key], value, source, sources, path)
        elif isinstance(value, Mapping) and not _is_free_mapping(path):
            base[key] = {}
            _merge(base[key], value, source, sources, path)
        else:
            base[key] = value
            _mark(path, value, source, sources)


def _mark(path: str, value: Any, source: str, sources: dict[str, str]) -> None:
    if isinstance(value, Mapping) and not _is_free_mapping(path):
        for k, v in value.items():
            _mark(f"{path}.{k}", v, source, sources)
    else:
        sources[path] = source


def _replace(base: dict[str, Any], layer: Mapping[str, Any], source: str,
             sources: dict[str, str]) -> None:
    """override.d: each top-level section named in the file replaces the merged one."""
    for section, value in layer.items():
        for key in [k for k in sources if k == section or k.startswith(section + ".")]:
            del sources[key]
        base[section] = value
        _mark(section, value, source, sources)


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def load_settings(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None,
                  use_default_paths: bool = True) -> LoadedConfig:
    """Load and validate settings. Raises ``ConfigError`` naming the layer that is wrong."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    layers: list[str] = ["defaults"]

    main: Path | None = None
    if path is not None:
        main = Path(path)
        if not main.is_file():
            raise ConfigError("config file not found", source=str(main))
    elif use_default_paths:
        main = next((p for p in DEFAULT_PATHS if p.is_file()), None)

    if main is not None:
        _merge(data, _read_toml(main), str(main), sources)
        layers.append(str(main))
        for sub, combine in (("local.d", _merge), ("override.d", _replace)):
            folder = main.parent / sub
            if folder.is_dir():
                for file in sorted(folder.glob("*.toml")):
                    combine(data, _read_toml(file), str(file), sources)
                    layers.append(str(file))

    env = _env_layer(environ)
    if env:
        _merge(data, env, "environment", sources)
        layers.append("environment")

    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            where = sources.get(key, layers[-1])
            label = f"{key}: " if key else ""  # a whole-file problem (an unknown section)
            problems.append(f"{label}{err['msg']} (from {where})")
        raise ConfigError("invalid settings:\n  " + "\n  ".join(problems)) from exc
    return LoadedConfig(settings=settings, layers=tuple(layers), sources=sources)
