"""Where `triad login` keeps the token: a file only its owner can read, from the moment it exists."""

import json
import os
import stat

import pytest

from triad.config import ConfigError, normalise_url, read_config, resolve, write_config


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("TRIAD_URL", raising=False)
    monkeypatch.delenv("TRIAD_TOKEN", raising=False)
    return tmp_path / "cfg" / "triad"


def test_the_config_file_is_created_readable_by_its_owner_only_even_under_a_permissive_umask(config_home):
    old = os.umask(0)
    try:
        path = write_config("https://triad.example", "triad_pat_secret")
    finally:
        os.umask(old)

    assert path == config_home / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_home.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"url": "https://triad.example", "token": "triad_pat_secret"}


def test_logging_in_again_replaces_a_world_readable_file_with_a_private_one(config_home):
    config_home.mkdir(parents=True)
    old = config_home / "config.json"
    old.write_text('{"url": "http://old", "token": "old"}')
    old.chmod(0o644)

    write_config("http://new", "new-token")

    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert read_config() == {"url": "http://new", "token": "new-token"}
    assert [p.name for p in config_home.iterdir()] == ["config.json"]  # no temporary file left


def test_the_environment_overrides_the_config_file(config_home, monkeypatch):
    write_config("http://from-file", "file-token")
    assert resolve().url == "http://from-file"

    monkeypatch.setenv("TRIAD_URL", "http://from-env/")
    monkeypatch.setenv("TRIAD_TOKEN", "env-token")

    got = resolve()
    assert (got.url, got.token) == ("http://from-env", "env-token")
    assert resolve("http://arg", "arg-token").token == "arg-token"


def test_no_login_and_a_broken_config_file_say_what_to_do(config_home):
    with pytest.raises(ConfigError, match="triad login URL"):
        resolve()
    config_home.mkdir(parents=True)
    (config_home / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        resolve()


def test_a_url_must_be_http_and_the_api_suffix_is_dropped():
    assert normalise_url(" https://t.example/api/v1/ ") == "https://t.example"
    with pytest.raises(ConfigError, match="scheme"):
        normalise_url("ftp://t.example")
    with pytest.raises(ConfigError, match="expected a URL"):
        normalise_url("t.example")
