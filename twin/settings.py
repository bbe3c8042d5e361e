"""Explicit configuration: keyword arguments, then ``TWIN_*`` variables, then defaults.

Only this module reads the environment. Library code takes a :class:`Settings`
(or builds one with :func:`Settings.from_env`) instead of reading globals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from twin.errors import TwinError


@dataclass(frozen=True)
class Settings:
    """Run-time settings of the twin.

    Attributes
    ----------
    database_url:
        SQLAlchemy URL of the operations store; empty means the SQLite file in
        the twin folder (``TWIN_DATABASE_URL``).
    cache_dir:
        Where numba and tile caches may live (``TWIN_CACHE_DIR``); empty means
        the library's defaults.
    ingest_earliest:
        The earliest reading time ingest accepts, ISO 8601 with zone
        (``TWIN_INGEST_EARLIEST``, default 1980-01-01T00:00Z; see :mod:`twin.ops.readings`).
    ingest_future_hours:
        How far past the time of ingest a reading may be, in hours
        (``TWIN_INGEST_FUTURE_HOURS``, default 24).
    """

    database_url: str = ""
    cache_dir: str = ""
    ingest_earliest: str = "1980-01-01T00:00Z"
    ingest_future_hours: float = 24.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``TWIN_<NAME>`` variables, with keyword overrides on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f"TWIN_{f.name.upper()}"
            if key in env:
                values[f.name] = _typed(f.name, key, f.default, env[key])
        settings = cls(**values)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TwinError(f"unknown setting(s) {sorted(unknown)}; allowed: {[f.name for f in fields(cls)]}")
        return replace(settings, **overrides)


def _typed(name: str, key: str, default: Any, text: str) -> Any:
    """An environment variable's text as the type of the setting's default."""
    if isinstance(default, str):
        return text
    try:
        return type(default)(text)
    except ValueError:
        raise TwinError(f"{key}={text!r} is not a {type(default).__name__} (setting {name})") from None
