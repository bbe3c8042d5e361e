"""Explicit configuration: keyword arguments, then ``TWIN_*`` variables, then defaults.

Only this module reads the environment. Library code takes a :class:`Settings`
(or builds one with :func:`Settings.from_env`) instead of reading globals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import TwinError


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
    """

    database_url: str = ""
    cache_dir: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``TWIN_<NAME>`` variables, with keyword overrides on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f"TWIN_{f.name.upper()}"
            if key in env:
                values[f.name] = env[key]
        settings = cls(**values)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TwinError(f"unknown setting(s) {sorted(unknown)}; allowed: {[f.name for f in fields(cls)]}")
        return replace(settings, **overrides)
