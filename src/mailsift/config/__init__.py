"""Typed, layered settings. See ``schema`` for every knob and ``loader`` for the layering."""

from mailsift.config.loader import LoadedConfig, load_settings
from mailsift.config.schema import Settings

__all__ = ["LoadedConfig", "Settings", "load_settings"]
