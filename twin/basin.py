"""``BasinTwin``: the facade for people (notebooks, the CLI, the web app) over one basin.

A twin is a :class:`~twin.model.model.Model` (grids and tables, frozen, no I/O), the folder it
was saved in, and the operations store beside it. Build it from a catalog, save it as a twin
folder, open it again::

    import twin
    basin = twin.BasinTwin.build("data/cevennes/basin.yml")
    folder = basin.save("twins/cevennes")
    same = twin.BasinTwin.open(folder)
    same.readings.ingest("readings.csv")

Nothing under this module imports it: the analyses take the parts they need
(``basin.model``, ``basin.store``, a table of readings), so each runs without a twin folder.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from pyproj import CRS

from twin.errors import TwinFolderError
from twin.model.build import BUILD_STEPS, Progress, build_model
from twin.model.catalog import Catalog
from twin.model.drainage import Drainage
from twin.model.jurisdictions import Jurisdictions
from twin.model.model import Model
from twin.model.network import Network
from twin.model.terrain import Terrain

if TYPE_CHECKING:
    from twin.model.cluster import TileRunner
    from twin.ops.incidents import Incidents
    from twin.ops.readings import Readings
    from twin.scene import Scene

__all__ = ["BUILD_STEPS", "BasinTwin", "Progress"]

P = ParamSpec("P")
R = TypeVar("R")


def _of_model(method: Callable[Concatenate[Model, P], R]) -> Callable[Concatenate[BasinTwin, P], R]:
    """A method of :class:`Model` as a method of the facade: same signature and docstring, asked of its model."""

    @functools.wraps(method)
    def ask(self: BasinTwin, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(self.model, *args, **kwargs)

    return ask


class BasinTwin:
    """A digital twin of one river basin: its model, its folder and its operations store.

    Build with :meth:`build`, reopen with :meth:`open`. Nothing is reassigned after
    construction: :meth:`save` writes a folder and returns its path, it does not turn this
    twin into the saved one (open the folder for that).
    """

    __slots__ = ("_model", "_path", "_manifest", "_store")

    def __init__(
        self,
        model: Model,
        path: Path | None = None,
        manifest: dict[str, Any] | None = None,
        store: sa.Engine | None = None,
    ):
        self._model = model
        self._path = path
        self._manifest = dict(manifest or {})
        self._store = store

    # -- construction ---------------------------------------------------------
    @classmethod
    def build(
        cls,
        catalog: Catalog | str | Path,
        progress: Progress | None = None,
        *,
        tile_size: int | None = None,
        runner: TileRunner | None = None,
        workdir: str | Path | None = None,
    ) -> BasinTwin:
        """Build the model from a catalog (:func:`twin.model.build.build_model`); no folder, no store yet.

        Parameters
        ----------
        catalog:
            The catalog, or the path of its ``basin.yml``.
        progress:
            Called with the name of each build step as it starts.
        tile_size:
            Build tile by tile, in tiles of this many rows and columns (at least
            :data:`twin.model.tiled.MIN_TILE_SIZE`); None chooses by the DEM's size (in memory
            up to :data:`twin.model.build.IN_MEMORY_MAX_CELLS` cells). Both give the same twin.
        runner:
            Where the tiles are worked on: a runner from :func:`twin.model.cluster.open_runner`
            (a local dask cluster, an existing scheduler, or this process); None is this process.
        workdir:
            Folder of the tiled build's tiles and grids, on a path every worker sees; it must
            last until the twin is saved. None: a temporary folder removed at exit.

        On a local cluster of two worker processes::

            from twin.model.cluster import open_runner

            with open_runner(workers=2) as runner:
                basin = BasinTwin.build("basin.yml", tile_size=4096, runner=runner)
        """
        return cls(build_model(catalog, progress, tile_size=tile_size, runner=runner, workdir=workdir))

    @classmethod
    def open(
        cls, path: str | Path, *, database_url: str | None = None, store: bool = True, check: bool = True
    ) -> BasinTwin:
        """Open a twin folder written by :meth:`save`, and its operations store.

        Parameters
        ----------
        path:
            The twin folder.
        database_url:
            The store; default ``TWIN_DATABASE_URL`` (read now, once), else ``ops.sqlite`` in the
            folder. Opening the store migrates its schema and registers the twin's sites as
            stations (both idempotent).
        store:
            False to open the model only (``store`` then raises): for read-only folders.
        check:
            Hash every raster and the vectors against the manifest first (a changed file is a
            :class:`TwinFolderError` naming it).
        """
        from twin.model.folder import read_twin

        folder = Path(path)
        model, manifest = read_twin(folder, check=check)
        engine = open_store(model, folder, database_url) if store else None
        return cls(model, folder, manifest, engine)

    def save(self, path: str | Path, overwrite: bool = False, progress: Progress | None = None) -> Path:
        """Write the twin folder (into a temporary folder first, then moved into place); returns its path.

        Raises
        ------
        OutputExistsError
            ``path`` exists and ``overwrite`` is false.
        """
        from twin.model.folder import write_twin

        out = Path(path).absolute()
        write_twin(self._model, out, overwrite=overwrite, progress=progress)
        return out

    # -- the parts --------------------------------------------------------------
    @property
    def model(self) -> Model:
        """Grids and tables (frozen): what every analysis takes."""
        return self._model

    @property
    def path(self) -> Path | None:
        """The twin folder this twin was opened from (None for a twin only built)."""
        return self._path

    @property
    def manifest(self) -> dict[str, Any]:
        """The folder's ``twin.json`` (empty for a twin only built); a copy."""
        return dict(self._manifest)

    @property
    def store(self) -> sa.Engine:
        """The operations store (SQLAlchemy engine) opened with the twin."""
        if self._store is None:
            raise TwinFolderError(
                "this twin has no operations store: save it (basin.save(path)) and open the folder "
                "(twin.open(path)) before storing readings or incidents"
            )
        return self._store

    @property
    def readings(self) -> Readings:
        """Ingest and views of the readings (:class:`twin.ops.readings.Readings`)."""
        from twin.ops.readings import Readings

        return Readings(self.store)

    def classify(self, at: Any = None, max_age_hours: float = 24.0, stations: list[str] | None = None) -> pd.DataFrame:
        """GB 3838-2002 class of every station at a time (see :func:`twin.analysis.classes.classify`)."""
        from twin.analysis.classes import classify

        return classify(self.readings, at, max_age_hours, stations)

    def classify_history(self, start: Any = None, end: Any = None, stations: list[str] | None = None) -> pd.DataFrame:
        """GB 3838-2002 class of every sample in a window (see :func:`twin.analysis.classes.classify_history`)."""
        from twin.analysis.classes import classify_history

        return classify_history(self.readings, start, end, stations)

    @property
    def incidents(self) -> Incidents:
        """Incidents recorded on this twin (:class:`twin.ops.incidents.Incidents`)."""
        from twin.ops.incidents import Incidents

        return Incidents(self._model, self.store)

    def alerts(self, at: Any = None, start: Any = None, end: Any = None, policy: Any = None) -> pd.DataFrame:
        """Four-level warnings over the readings, with response plans (:func:`twin.analysis.response.warnings`)."""
        from twin.analysis.response import warnings

        return warnings(self._model, self.store, at=at, start=start, end=end, policy=policy)

    def scene(self, **options: Any) -> Scene:
        """The basin in 3D (:func:`twin.scene.build_scene`; needs the ``scene`` extra): ``.save(path)``
        writes a PNG, glb or HTML. ``options`` are build_scene's (at, incident, plume, view, lang...)."""
        from twin.scene import build_scene

        return build_scene(self._model, store=self._store, **options)

    # -- the model's parts and questions, for people ---------------------------------
    @property
    def name(self) -> str:
        return self._model.name

    @property
    def catalog(self) -> Catalog:
        return self._model.catalog

    @property
    def terrain(self) -> Terrain:
        return self._model.terrain

    @property
    def drainage(self) -> Drainage:
        return self._model.drainage

    @property
    def network(self) -> Network:
        return self._model.network

    @property
    def jurisdictions(self) -> Jurisdictions:
        return self._model.jurisdictions

    @property
    def sites(self) -> gpd.GeoDataFrame:
        return self._model.sites

    @property
    def sources(self) -> tuple[dict[str, Any], ...]:
        return self._model.sources

    @property
    def crs(self) -> CRS:
        return self._model.crs

    # the questions the model answers, asked of the twin (the Model's own methods, documented there)
    grids = _of_model(Model.grids)
    to_twin_xy = _of_model(Model.to_twin_xy)
    locate = _of_model(Model.locate)
    catchment = _of_model(Model.catchment)
    downstream = _of_model(Model.downstream)
    info = _of_model(Model.info)

    def __repr__(self) -> str:
        where = f" at {self._path}" if self._path else ""
        return f"<BasinTwin {self.name!r}{where}: {len(self.network)} reaches, {len(self.sites)} sites>"


def open_store(model: Model, folder: Path, database_url: str | None = None) -> sa.Engine:
    """The operations store of a twin folder, migrated, the model's sites registered as stations.

    ``database_url`` or ``TWIN_DATABASE_URL`` selects a shared database (PostgreSQL);
    otherwise it is ``ops.sqlite`` in the folder.
    """
    from twin.ops import store as ops
    from twin.ops.readings import Readings
    from twin.settings import Settings

    url = database_url or Settings.from_env().database_url or ops.sqlite_url(folder)
    engine = ops.connect(url)
    Readings(engine).register_stations(pd.DataFrame(model.sites.drop(columns="geometry")))
    return engine
