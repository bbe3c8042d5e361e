"""Errors of the operations store's ingest, importable by the formats and by the readings alike."""

from __future__ import annotations

from twin.errors import TwinError


class IngestError(TwinError, ValueError):
    """A file cannot be ingested at all (unreadable, wrong format); single bad rows are rejected instead."""
