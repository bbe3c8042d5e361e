"""Errors a user meets: one line naming the problem and the fix, and nothing half-built left behind.

Every case is checked twice: through the library (the specific ``TwinError``
subclass *and* the builtin it also is) and through the CLI (exit status 1,
exactly one ``twin: error:`` line on stderr, no traceback, no output folder
and no ``.NAME.partial-*`` temp folder left in the parent directory).
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import twin
from twin.cli import cli
from twin.errors import (
    CatalogError,
    CRSError,
    OutputExistsError,
    OutsideBasinError,
    SourceError,
    TwinError,
    TwinFolderError,
)

from . import synthetic
from .synthetic import cell_lonlat

FAR = {"lon": 4.5, "lat": 45.0}  # ~150 km north-east of the synthetic grid


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def edit_catalog(path: Path, change: Callable[[dict], None]) -> Path:
    """Load a basin.yml, let ``change`` edit the mapping in place, write it back."""
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    return path


def units_as_shapefile(catalog: Path) -> Path:
    """Turn the fixture's units.geojson into units.shp and point the catalog at it (no declared CRS)."""
    folder = catalog.parent
    gpd.read_file(folder / "units.geojson").to_file(folder / "units.shp")

    def change(c: dict) -> None:
        c["sources"]["regions"]["path"] = "units.shp"
        c["sources"]["regions"].pop("crs")

    edit_catalog(catalog, change)
    return folder / "units.prj"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="twin")


def assert_one_error_line(result, *fragments: str) -> str:
    """Exit 1, nothing on stdout, exactly one 'twin: error:' line on stderr holding every fragment."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), f"unhandled {result.exception!r}"  # handled, not crashed
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("twin: error: ")
    for f in fragments:
        assert f in line, f"{f!r} not in {line!r}"
    return line


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(
        p.name
        for p in parent.iterdir()
        if p.name == name or p.name.startswith(f".{name}.partial-") or p.name.startswith(f".{name}.old-")
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------
# build failures: one table, checked through the library and the CLI
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    make: Callable  # (make_catalog, tmp_path) -> catalog path
    error: type[TwinError]
    builtin: type[Exception]
    says: tuple[str, ...]  # what the message must name (file, key, value...) and the fix it suggests


def _dem_without_crs(make_catalog, tmp_path):
    return make_catalog(synthetic.v_valley(), units=None, dem_crs=None)


def _corrupt_dem(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley(), units=None)
    (cat.parent / "dem.tif").write_bytes(b"this is not a GeoTIFF\n" * 50)
    return cat


def _truncated_dem(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley(), units=None)
    dem = cat.parent / "dem.tif"
    data = dem.read_bytes()
    dem.write_bytes(data[: len(data) // 2])
    return cat


def _empty_dem(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley(), units=None)
    (cat.parent / "dem.tif").write_bytes(b"")
    return cat


def _all_nodata_dem(make_catalog, tmp_path):
    return make_catalog(np.full((12, 10), np.nan, dtype="float32"), units=None)


def _dem_crs_disagrees(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley(), units=None)
    return edit_catalog(cat, lambda c: c["sources"]["dem"].update(crs="EPSG:2154"))


def _shapefile_prj_unreadable(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley())
    prj = units_as_shapefile(cat)
    prj.write_text('PROJCS["bogus",GEOGCS["x",DATUM["y",SPHEROID["z",1,0]]]]')  # WKT GDAL cannot parse
    return cat


def _shapefile_prj_garbage(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley())
    prj = units_as_shapefile(cat)
    prj.write_text("this is not a projection\n")  # GDAL ignores it: the layer has no CRS at all
    return cat


def _vectors_declared_unknown_epsg(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley())
    return edit_catalog(cat, lambda c: c["sources"]["regions"].update(crs="EPSG:999999"))


def _missing_file(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley(), units=None)
    return edit_catalog(cat, lambda c: c["sources"]["dem"].update(path="tiles/nope.tif"))


def _unknown_key(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley(), units=None)
    return edit_catalog(cat, lambda c: c["sources"]["dem"].update(colour="red"))


def _unknown_top_level_key(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley(), units=None)
    return edit_catalog(cat, lambda c: c.update(resolution=30))


def _invalid_yaml(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley(), units=None)
    cat.write_text("name: synthetic\nsources: {dem: {role: dem, path: [dem.tif}\n")
    return cat


def _no_catalog(make_catalog, tmp_path):
    return tmp_path / "nowhere" / "basin.yml"


def _site_outside_basin(make_catalog, tmp_path):
    inside = cell_lonlat(30, 15)
    return make_catalog(
        synthetic.v_valley(),
        sites=[
            {"id": "ok1", "name": "On the river", "lon": inside[0], "lat": inside[1]},
            {"id": "far9", "name": "Far away", **FAR},
        ],
    )


def _site_csv_without_crs(make_catalog, tmp_path):
    lon, lat = cell_lonlat(30, 15)
    cat = make_catalog(synthetic.v_valley(), sites=[{"id": "s1", "name": "Station", "lon": lon, "lat": lat}])
    return edit_catalog(cat, lambda c: c["sources"]["stations"].pop("crs"))


def _jurisdictions_without_code_field(make_catalog, tmp_path):
    cat = make_catalog(synthetic.v_valley())
    return edit_catalog(cat, lambda c: c["sources"]["regions"].update(code_field="insee"))


BUILD_CASES = {
    "dem-without-crs": Case(_dem_without_crs, CRSError, ValueError, ("dem.tif", "has no CRS", "crs: EPSG:")),
    "dem-corrupt": Case(_corrupt_dem, SourceError, OSError, ("dem.tif", "not a readable raster", "check the file")),
    "dem-truncated": Case(_truncated_dem, SourceError, OSError, ("dem.tif", "check the file")),
    "dem-empty": Case(_empty_dem, SourceError, OSError, ("dem.tif", "empty (0 bytes)", "replace it")),
    "dem-all-nodata": Case(
        _all_nodata_dem, SourceError, OSError, ("dem.tif", "no valid elevation", "check the nodata value")
    ),
    "dem-crs-disagrees": Case(
        _dem_crs_disagrees,
        CRSError,
        ValueError,
        ("dem.tif", "EPSG:32631", "EPSG:2154", "fix the catalog's 'crs' or the file"),
    ),
    "shapefile-prj-unreadable": Case(
        _shapefile_prj_unreadable, CRSError, ValueError, ("units.shp", "CRS that cannot be read", "fix its .prj")
    ),
    "shapefile-prj-garbage": Case(
        _shapefile_prj_garbage, CRSError, ValueError, ("units.shp", "has no CRS", "declare it in the catalog")
    ),
    "vectors-unknown-epsg": Case(
        _vectors_declared_unknown_epsg,
        CRSError,
        ValueError,
        ("units.geojson", "EPSG:999999", "give it as e.g. EPSG:4326"),
    ),
    "catalog-missing-file": Case(
        _missing_file, SourceError, OSError, ("nope.tif", "does not exist", "fix its path in the catalog")
    ),
    "catalog-unknown-key": Case(
        _unknown_key,
        CatalogError,
        ValueError,
        ("basin.yml", "at 'sources.dem': unknown key 'colour'", "catalog reference"),
    ),
    "catalog-unknown-top-key": Case(
        _unknown_top_level_key, CatalogError, ValueError, ("basin.yml", "unknown key 'resolution'", "catalog reference")
    ),
    "catalog-invalid-yaml": Case(
        _invalid_yaml, CatalogError, ValueError, ("basin.yml", "not valid YAML", "fix the file")
    ),
    "catalog-does-not-exist": Case(_no_catalog, SourceError, OSError, ("basin.yml", "does not exist", "basin.yml")),
    "site-outside-basin": Case(
        _site_outside_basin,
        OutsideBasinError,
        ValueError,
        ("far9", "outside the basin grid", "remove the site or fix its coordinates"),
    ),
    "site-csv-without-crs": Case(
        _site_csv_without_crs, CRSError, ValueError, ("sites.csv", "no CRS", "crs: EPSG:4326")
    ),
    "jurisdictions-without-code-field": Case(
        _jurisdictions_without_code_field, SourceError, OSError, ("insee", "region", "set code_field")
    ),
}


@pytest.mark.parametrize("case", BUILD_CASES.values(), ids=BUILD_CASES.keys())
def test_build_error_library(case: Case, make_catalog, tmp_path):
    catalog = case.make(make_catalog, tmp_path)
    with pytest.raises(case.error) as info:
        twin.BasinTwin.build(catalog)
    err = info.value
    assert isinstance(err, TwinError)
    assert isinstance(err, case.builtin)
    msg = str(err)
    assert "\n" not in msg
    for fragment in case.says:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"


@pytest.mark.parametrize("case", BUILD_CASES.values(), ids=BUILD_CASES.keys())
def test_build_error_cli(case: Case, make_catalog, tmp_path):
    catalog = case.make(make_catalog, tmp_path)
    parent = tmp_path / "twins"
    parent.mkdir()
    result = run("build", str(catalog), "-o", str(parent / "basin"), "--quiet")
    assert_one_error_line(result, *case.says)
    assert leftovers(parent, "basin") == []
    assert list(parent.iterdir()) == []


def test_builtin_catch_works_without_knowing_twin(make_catalog):
    """A caller catching only builtins still catches the twin's errors."""
    with pytest.raises(OSError):
        twin.BasinTwin.build(_missing_file(make_catalog, None))
    with pytest.raises(ValueError):
        twin.BasinTwin.build(_dem_without_crs(make_catalog, None))
    with pytest.raises(LookupError):
        twin.BasinTwin.build(make_catalog(synthetic.v_valley(), units=None)).network.reach(999)


def test_real_process_prints_one_line_and_exits_1(make_catalog, tmp_path):
    """The installed ``twin`` script, progress bar on: the terminal ends with the one error line."""
    catalog = _all_nodata_dem(make_catalog, tmp_path)
    exe = Path(sys.executable).with_name("twin")
    proc = subprocess.run(
        [str(exe), "build", str(catalog), "-o", str(tmp_path / "out")], capture_output=True, cwd=tmp_path
    )  # bytes: keep the progress bar's \r as they are
    stderr = proc.stderr.decode()
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1  # the progress bar redraws with \r and is cleared
    shown = stderr.split("\r")[-1]  # what is left on the terminal
    assert shown.startswith("twin: error: DEM 'dem'")
    assert "holds no valid elevation" in shown
    assert leftovers(tmp_path, "out") == []


# ---------------------------------------------------------------------------
# output folder exists / failure while writing
# ---------------------------------------------------------------------------
@pytest.fixture
def basin(make_catalog):
    return twin.BasinTwin.build(make_catalog(synthetic.v_valley()))


def test_existing_output_folder_library(basin, tmp_path):
    out = tmp_path / "twins" / "mine"
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    before = snapshot(out)
    with pytest.raises(OutputExistsError) as info:
        basin.save(out)
    assert isinstance(info.value, TwinFolderError)
    assert isinstance(info.value, FileExistsError)
    assert "mine" in str(info.value) and "--overwrite" in str(info.value)
    assert snapshot(out) == before
    assert leftovers(out.parent, "mine") == ["mine"]


def test_existing_output_folder_cli(make_catalog, tmp_path):
    catalog = make_catalog(synthetic.v_valley())
    out = tmp_path / "twins" / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    (out / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = snapshot(out)
    result = run("build", str(catalog), "-o", str(out), "--quiet")
    assert_one_error_line(result, "mine", "exists", "--overwrite")
    assert snapshot(out) == before
    assert leftovers(out.parent, "mine") == ["mine"]


def test_existing_twin_folder_is_kept_when_rebuilding_it_fails(make_catalog, tmp_path):
    """A second build into an existing twin fails cleanly and leaves the first twin intact."""
    out = tmp_path / "twins" / "basin"
    good = make_catalog(synthetic.v_valley(), name="good")
    assert run("build", str(good), "-o", str(out), "--quiet").exit_code == 0
    before = snapshot(out)
    bad = _all_nodata_dem(make_catalog, tmp_path)
    result = run("build", str(bad), "-o", str(out), "--overwrite", "--quiet")
    assert_one_error_line(result, "no valid elevation")
    assert snapshot(out) == before
    assert leftovers(out.parent, "basin") == ["basin"]
    assert run("info", str(out), "--verify").exit_code == 0


def _fail_while_writing(monkeypatch, error: BaseException) -> None:
    """Make the last step of writing a twin (the manifest) fail, after every raster and vector is written."""

    def boom():
        raise error

    monkeypatch.setattr("twin.model.folder.software_versions", boom)


def test_failure_while_writing_leaves_no_partial_folder(basin, tmp_path, monkeypatch):
    _fail_while_writing(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    out = tmp_path / "twins" / "basin"
    with pytest.raises(OSError, match="No space left"):
        basin.save(out)
    assert leftovers(out.parent, "basin") == []
    assert list(out.parent.iterdir()) == []


def test_interrupted_write_leaves_no_partial_folder(basin, tmp_path, monkeypatch):
    _fail_while_writing(monkeypatch, KeyboardInterrupt())
    out = tmp_path / "twins" / "basin"
    with pytest.raises(KeyboardInterrupt):
        basin.save(out)
    assert list(out.parent.iterdir()) == []


def test_failed_overwrite_keeps_the_old_twin(basin, tmp_path, monkeypatch):
    out = tmp_path / "twins" / "basin"
    basin.save(out)
    before = snapshot(out)
    _fail_while_writing(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError):
        basin.save(out, overwrite=True)
    assert snapshot(out) == before
    assert leftovers(out.parent, "basin") == ["basin"]


def test_failure_while_writing_cli(make_catalog, tmp_path, monkeypatch):
    _fail_while_writing(monkeypatch, TwinFolderError("cannot write the manifest; free some disk space"))
    catalog = make_catalog(synthetic.v_valley())
    out = tmp_path / "twins" / "basin"
    result = run("build", str(catalog), "-o", str(out), "--quiet")
    assert_one_error_line(result, "free some disk space")
    assert leftovers(out.parent, "basin") == []


# ---------------------------------------------------------------------------
# questions to a twin that cannot be answered
# ---------------------------------------------------------------------------
@pytest.fixture
def twin_dir(basin, tmp_path):
    return basin.save(tmp_path / "twins" / "basin")


def test_catchment_point_outside_grid_library(basin):
    for snap in (True, False):
        with pytest.raises(OutsideBasinError) as info:
            basin.catchment(FAR["lon"], FAR["lat"], snap=snap)
        assert isinstance(info.value, ValueError)
        msg = str(info.value)
        assert "outside the basin grid" in msg
        assert "EPSG:32631" in msg  # the grid's extent is given in its CRS
        assert "check its coordinates and CRS" in msg


def test_catchment_point_outside_grid_cli(twin_dir):
    result = run("catchment", str(twin_dir), "--lon", str(FAR["lon"]), "--lat", str(FAR["lat"]))
    assert_one_error_line(result, "outside the basin grid", "check its coordinates and CRS")


def test_downstream_point_outside_grid_cli(twin_dir):
    result = run("downstream", str(twin_dir), "--lon", str(FAR["lon"]), "--lat", str(FAR["lat"]))
    assert_one_error_line(result, "outside the basin grid")


def test_catchment_lat_lon_swapped_is_outside(twin_dir):
    """A classic slip: lat given as lon. The answer is an error, not a wrong catchment."""
    lon, lat = cell_lonlat(30, 15)
    result = run("catchment", str(twin_dir), "--lon", str(lat), "--lat", str(lon))
    assert_one_error_line(result, "outside the basin grid")


@pytest.mark.parametrize(
    "command",
    [
        ["info"],
        ["info", "--verify"],
        ["catchment", "--lon", "3.0", "--lat", "44.2"],
        ["downstream", "--lon", "3.0", "--lat", "44.2"],
    ],
)
def test_folder_that_is_not_a_twin(command, tmp_path):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a twin")
    with pytest.raises(TwinFolderError) as info:
        twin.BasinTwin.open(folder)
    assert isinstance(info.value, OSError)
    result = run(command[0], str(folder), *command[1:])
    assert_one_error_line(result, "somewhere", "is not a twin folder", "twin build")


def test_folder_that_does_not_exist(tmp_path):
    result = run("info", str(tmp_path / "nothing-here"))
    assert_one_error_line(result, "nothing-here", "not a twin folder")
    assert not (tmp_path / "nothing-here").exists()


def test_twin_folder_with_missing_output(twin_dir):
    (twin_dir / "drainage" / "d8.tif").unlink()
    with pytest.raises(TwinFolderError) as info:
        twin.BasinTwin.open(twin_dir)
    assert isinstance(info.value, OSError)
    assert "drainage/d8.tif" in str(info.value) and "rebuild it" in str(info.value)
    result = run("info", str(twin_dir))
    assert_one_error_line(result, "incomplete", "drainage/d8.tif", "rebuild it")


def test_twin_folder_with_missing_vectors(twin_dir):
    (twin_dir / "vectors.gpkg").unlink()
    result = run("catchment", str(twin_dir), "--lon", "3.0", "--lat", "44.2")
    assert_one_error_line(result, "incomplete", "vectors.gpkg")


@pytest.mark.parametrize(
    "rel, damage",
    [
        ("terrain/elevation.tif", "truncate"),
        ("drainage/d8.tif", "garbage"),
        ("vectors.gpkg", "truncate"),
        ("vectors.gpkg", "empty"),
    ],
)
def test_twin_folder_with_unreadable_output(twin_dir, rel, damage):
    """A damaged output (disk error, half-copied folder) is one line, not a GDAL traceback."""
    target = twin_dir / rel
    data = target.read_bytes()
    target.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"garbage" * 100, "empty": b""}[damage])
    with pytest.raises(TwinFolderError) as info:
        twin.BasinTwin.open(twin_dir)
    assert isinstance(info.value, OSError)
    lon, lat = cell_lonlat(30, 15)
    # opening checks the hashes first (the file changed since the build); `twin info` reads without
    # the check (its --verify hashes every output), and then fails on the unreadable file
    for command, says in (
        (["info"], "cannot be read"),
        (["info", "--verify"], "cannot be read"),
        (["catchment", "--lon", str(lon), "--lat", str(lat)], "changed since the build"),
    ):
        result = run(command[0], str(twin_dir), *command[1:])
        assert_one_error_line(result, rel, says, "rebuild the twin")


def test_twin_folder_with_corrupt_manifest(twin_dir):
    (twin_dir / "twin.json").write_text("{ not json")
    with pytest.raises(TwinFolderError, match="twin.json"):
        twin.BasinTwin.open(twin_dir)
    assert_one_error_line(run("info", str(twin_dir)), "twin.json", "not valid JSON", "rebuild the twin")


def test_twin_folder_of_another_format(twin_dir):
    mf = twin_dir / "twin.json"
    manifest = json.loads(mf.read_text())
    manifest["format_version"] = 99
    mf.write_text(json.dumps(manifest))
    assert_one_error_line(run("info", str(twin_dir)), "v99", "rebuild it")


def test_copied_twin_folder_still_opens(twin_dir, tmp_path):
    """The twin folder is self-contained: a copy elsewhere opens and verifies."""
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(twin_dir, copy)
    shutil.rmtree(twin_dir)
    result = run("info", str(copy), "--verify")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verified"] is True
