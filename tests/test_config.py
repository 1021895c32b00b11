"""server.config: every setting parses, has a default, and is documented once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.config import SETTINGS, Config, ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_defaults_build_a_config() -> None:
    config = Config.from_env({})
    assert config.port == 8000
    assert config.max_upload_bytes == 5 * 1024 * 1024
    assert config.worker_name.endswith(":8000")
    assert config.images_dir == Path("data/images")


def test_environment_values_are_parsed() -> None:
    config = Config.from_env({"PORT": "9001", "LOG_LEVEL": "debug", "WORKER_NAME": "w1"})
    assert (config.port, config.log_level, config.worker_name) == (9001, "DEBUG", "w1")


@pytest.mark.parametrize(
    "env",
    [
        {"PORT": "eighty"},
        {"PORT": "70000"},
        {"DB_POOL_MAX": "0"},
        {"DB_POOL_MIN": "20"},
        {"ALLOWED_HOSTS": "images.example.org:8080"},
        {"ALLOWED_HOSTS": "https://images.example.org"},
    ],
)
def test_bad_values_are_clear_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Config.from_env(env)


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.name for s in SETTINGS])
def test_every_setting_is_documented_in_readme_and_env_example(setting) -> None:  # noqa: ANN001
    readme = (REPO / "README.md").read_text()
    example = (REPO / ".env.example").read_text()
    assert re.search(rf"^\|\s*`{setting.name}`\s*\|", readme, re.M), f"{setting.name} not in README"
    assert re.search(rf"^{setting.name}={re.escape(setting.default)}$", example, re.M)
    assert setting.help in example


def test_allowed_hosts_are_names_without_ports() -> None:
    config = Config.from_env({"ALLOWED_HOSTS": "Images.Example.org, localhost [::1]"})
    assert config.allowed_hosts == ("images.example.org", "localhost", "[::1]")
    assert Config.from_env({}).allowed_hosts == ()
