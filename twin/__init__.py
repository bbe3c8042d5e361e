"""basin twin: a GIS digital twin of a river basin for cross-jurisdiction pollution cases.

>>> import twin
>>> basin = twin.BasinTwin.build("data/cevennes/basin.yml")   # doctest: +SKIP
>>> basin.network.reaches.head()                              # doctest: +SKIP

The analyses take a :class:`Model` (``basin.model``, or ``twin.build_model(catalog)`` with
no folder) and the store or a table of readings: see ``twin.analysis``.
"""

from __future__ import annotations

from twin.basin import BasinTwin
from twin.errors import (
    CatalogError,
    CRSError,
    OutputExistsError,
    OutsideBasinError,
    SnapError,
    SourceError,
    TwinError,
    TwinFolderError,
    UnknownReachError,
)
from twin.model.build import build_model
from twin.model.catalog import Catalog, load_catalog
from twin.model.model import Model

__version__ = "0.1.0"


def open(path: str) -> BasinTwin:  # noqa: A001 - mirrors xarray.open_dataset's role
    """Open a twin folder: shorthand for :meth:`BasinTwin.open`."""
    return BasinTwin.open(path)


def build(catalog: str) -> BasinTwin:
    """Build a twin from a catalog: shorthand for :meth:`BasinTwin.build`."""
    return BasinTwin.build(catalog)


__all__ = [
    "BasinTwin",
    "Model",
    "build_model",
    "Catalog",
    "load_catalog",
    "open",
    "build",
    "TwinError",
    "CatalogError",
    "CRSError",
    "OutputExistsError",
    "OutsideBasinError",
    "SnapError",
    "SourceError",
    "TwinFolderError",
    "UnknownReachError",
]
