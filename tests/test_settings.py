"""Configuration: keyword arguments over TWIN_* variables over defaults."""

from __future__ import annotations

import pytest

from twin.errors import TwinError
from twin.settings import Settings


def test_environment_then_keywords_override_defaults():
    assert Settings.from_env({}).database_url == ""
    env = {"TWIN_DATABASE_URL": "postgresql://db/twin", "OTHER": "x"}
    assert Settings.from_env(env).database_url == "postgresql://db/twin"
    assert Settings.from_env(env, database_url="sqlite:///x.db").database_url == "sqlite:///x.db"


def test_unknown_setting_is_refused():
    with pytest.raises(TwinError, match="unknown setting"):
        Settings.from_env({}, databse_url="typo")
