from __future__ import annotations

from pathlib import Path

import pytest

from mailsift.config import load_settings, loader
from mailsift.core.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_any_file() -> None:
    loaded = load_settings(environ={}, use_default_paths=False)
    assert loaded.settings.policy.preset == "standard"
    assert loaded.layers == ("defaults",)


def test_layering_file_local_override_env(tmp_path: Path) -> None:
    main = write(tmp_path / "mailsift.toml", """
[policy]
preset = "strict"
monitor = true
[policy.thresholds]
phish = 5.0
spam = 7.0
""")
    write(tmp_path / "local.d" / "10-thresholds.toml", "[policy.thresholds]\nphish = 4.5\n")
    write(tmp_path / "override.d" / "50-limits.toml", "[limits]\nmax_parts = 42\n")
    loaded = load_settings(main, environ={"MAILSIFT_POLICY__MONITOR": "false"})
    s = loaded.settings
    assert s.policy.preset == "strict"
    assert s.policy.thresholds.phish == 4.5  # local.d merges over the main file
    assert s.policy.thresholds.spam == 7.0  # ...keeping what it does not mention
    assert s.limits.max_parts == 42
    assert s.policy.monitor is False  # the environment wins
    sources = dict((k, src) for k, _, src in loaded.explain())
    assert sources["policy.thresholds.phish"].endswith("10-thresholds.toml")
    assert sources["policy.thresholds.spam"].endswith("mailsift.toml")
    assert sources["policy.monitor"] == "environment"
    assert sources["limits.max_mime_depth"] == "default"


def test_override_d_replaces_whole_section(tmp_path: Path) -> None:
    main = write(tmp_path / "mailsift.toml", "[limits]\nmax_parts = 10\nmax_mime_depth = 5\n")
    write(tmp_path / "override.d" / "x.toml", "[limits]\nmax_parts = 99\n")
    s = load_settings(main, environ={}).settings
    assert s.limits.max_parts == 99
    assert s.limits.max_mime_depth == 20  # back to the default: the section was replaced


def test_unknown_key_fails_with_its_source(tmp_path: Path) -> None:
    main = write(tmp_path / "mailsift.toml", "[policy]\npresett = \"strict\"\n")
    with pytest.raises(ConfigError, match=r"policy.presett.*mailsift.toml"):
        load_settings(main, environ={})


def test_bad_value_and_bad_toml(tmp_path: Path) -> None:
    main = write(tmp_path / "mailsift.toml", "[policy]\npreset = \"lenient\"\n")
    with pytest.raises(ConfigError, match="preset"):
        load_settings(main, environ={})
    broken = write(tmp_path / "b" / "mailsift.toml", "[policy\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(broken, environ={})


def test_invalid_action_in_policy(tmp_path: Path) -> None:
    main = write(tmp_path / "mailsift.toml", "[policy.actions]\nphish = \"deliverr\"\n")
    with pytest.raises(ConfigError, match="unknown action"):
        load_settings(main, environ={})


def test_missing_explicit_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings("/nonexistent/mailsift.toml", environ={})


def test_without_config_the_working_directory_then_etc_mailsift(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service started from anywhere finds /etc/mailsift/mailsift.toml (issue 19); a
    mailsift.toml in the working directory (``make run``) comes first."""
    here, etc = tmp_path / "here" / "mailsift.toml", tmp_path / "etc" / "mailsift.toml"
    etc.parent.mkdir()
    etc.write_text('[auth]\nauthserv_id = "mx.etc.example"\n')
    (etc.parent / "local.d").mkdir()
    (etc.parent / "local.d" / "site.toml").write_text("[gateway]\nworkers = 3\n")
    monkeypatch.setattr(loader, "DEFAULT_PATHS", (here, etc))
    got = load_settings(environ={})
    assert got.settings.auth.authserv_id == "mx.etc.example"
    assert got.settings.gateway.workers == 3
    assert got.layers == ("defaults", str(etc), str(etc.parent / "local.d" / "site.toml"))
    here.parent.mkdir()
    here.write_text('[auth]\nauthserv_id = "mx.here.example"\n')
    assert load_settings(environ={}).settings.auth.authserv_id == "mx.here.example"

