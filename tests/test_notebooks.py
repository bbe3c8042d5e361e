"""The notebooks in ``notebooks/``, run top to bottom on the demo twin after the mine-leak scenario.

Each notebook is executed once per module with nbclient, in a kernel that runs this
interpreter (a kernelspec written to a temporary folder and found only by these tests),
with ``TWIN_DIR`` pointing at a copy of the demo twin on which the scenario was run, as
``make demo`` does. A cell that raises fails the test that asked for the notebook. The
tests then read what the notebooks showed: images, figures and tables.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from PIL import Image
from traitlets import default

import twin
from twin.analysis import scenarios

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("01-explore-basin.ipynb", "02-readings-and-warnings.ipynb", "03-trace-an-incident.ipynb")
MAX_LOGIC_LINES = 8  # per code cell, imports aside: more than that belongs in `twin`


@pytest.fixture(scope="module")
def scenario_dir(demo_dir, tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the demo twin with the mine-leak scenario (seed 1), as ``make demo`` leaves it."""
    folder = tmp_path_factory.mktemp("notebooks") / "cevennes"
    shutil.copytree(demo_dir, folder)
    opened = twin.open(str(folder))
    truth = scenarios.run(opened.model, opened.store, "mine-leak", seed=1, folder=opened.path)
    return folder, truth


@pytest.fixture(scope="session")
def kernels(tmp_path_factory) -> Path:
    """A folder holding a kernelspec ``python3`` that runs this interpreter (the venv's python)."""
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(root / "python3", overrides={"display_name": "basin twin tests"})
    return root


def manager_for(kernels: Path) -> type[AsyncKernelManager]:
    """A kernel manager class that looks for kernelspecs in ``kernels`` only.

    Given as a class, not an instance, so that nbclient owns the manager and shuts the
    kernel and its channels down after the run.
    """

    class Manager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=[str(kernels)])

    return Manager


@pytest.fixture(scope="module")
def run(scenario_dir, kernels):
    """``run(name)``: the notebook executed (once per module), with its outputs."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's inline backend shows figures
    env["TWIN_DIR"] = str(scenario_dir[0])
    done: dict[str, nbformat.NotebookNode] = {}

    def execute(name: str) -> nbformat.NotebookNode:
        if name not in done:
            nb = nbformat.read(NOTEBOOKS / name, as_version=4)
            client = NotebookClient(
                nb,
                kernel_name="python3",
                kernel_manager_class=manager_for(kernels),
                timeout=None,
                resources={"metadata": {"path": str(NOTEBOOKS)}},
            )
            client.execute(env=env)  # raises CellExecutionError, naming the cell, if one fails
            done[name] = nb
        return done[name]

    return execute


def outputs(nb: nbformat.NotebookNode, containing: str | None = None) -> list[dict]:
    """Every output of the code cells (of those whose source contains ``containing``)."""
    return [
        out
        for cell in nb.cells
        if cell.cell_type == "code" and (containing is None or containing in cell.source)
        for out in cell.get("outputs", [])
    ]


def figures(outs: list[dict]) -> list[dict]:
    """The matplotlib figures among outputs (inline backend: a PNG and ``<Figure size ...>``)."""
    return [
        o
        for o in outs
        if "image/png" in o.get("data", {}) and o["data"].get("text/plain", "").startswith("<Figure size")
    ]


def images(outs: list[dict]) -> list[Image.Image]:
    """The ``IPython.display.Image`` PNGs among outputs, decoded."""
    return [
        Image.open(io.BytesIO(base64.b64decode(o["data"]["image/png"])))
        for o in outs
        if "image/png" in o.get("data", {}) and "IPython.core.display.Image" in o["data"].get("text/plain", "")
    ]


def text(outs: list[dict], kinds: tuple[str, ...] = ("text/plain",)) -> str:
    """What the outputs show as text: streams and results (plain text unless ``kinds`` says otherwise)."""
    parts = []
    for o in outs:
        if o["output_type"] == "stream":
            parts.append(o["text"])
        parts.extend(o.get("data", {}).get(kind, "") for kind in kinds)
    return "\n".join(parts)


# -- as stored ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebooks_are_valid_and_have_no_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and nb.cells[0].cell_type == "markdown"
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert 'os.environ.get("TWIN_DIR", "../twins/cevennes")' in code[0].source


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_hold_no_logic_of_their_own(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        logic = [ln for ln in lines if not ln.startswith(("import ", "from "))]
        assert len(logic) <= MAX_LOGIC_LINES, cell.source
        assert not any(ln.lstrip().startswith(("def ", "class ", "for ", "while ")) for ln in lines), cell.source


def test_scenario_times_and_incident_come_from_the_scenario_file():
    for name in ("02-readings-and-warnings.ipynb", "03-trace-an-incident.ipynb"):
        source = "\n".join(c.source for c in nbformat.read(NOTEBOOKS / name, as_version=4).cells)
        assert 'scenarios" / f"{SCENARIO}.json"' in source and "2026-" not in source
    assert 'truth["incident_id"]' in "\n".join(
        c.source for c in nbformat.read(NOTEBOOKS / NAMES[2], as_version=4).cells
    )


# -- executed -------------------------------------------------------------------------------------------


def test_the_kernel_runs_this_interpreter(kernels):
    spec = manager_for(kernels)(kernel_name="python3").kernel_spec
    assert spec.argv[0] == sys.executable and Path(spec.resource_dir).parent == kernels
    assert json.loads((kernels / "python3" / "kernel.json").read_text())["argv"][0] == sys.executable


def test_explore_shows_grids_reaches_catchment_profiles_and_the_scene(run):
    nb = run("01-explore-basin.ipynb")
    assert "EPSG:32631" in text(outputs(nb, "twin.open"))
    grids = text(outputs(nb, "grids = basin.grids()"))
    assert all(v in grids for v in ("elevation", "conditioned", "upstream_area", "strahler", "subbasin"))
    assert "UTM zone 31N" in text(outputs(nb, "grids.rio.crs"))
    assert "next_down" in text(outputs(nb, "reaches[columns]"))
    assert "upstream_area_at_outlet_km2" in text(outputs(nb, "basin.catchment"))
    for call in ("basin.network.reaches.plot", "rio.clip", "plots.profile", "terrain_profile"):
        assert len(figures(outputs(nb, call))) == 1, call
    (scene,) = images(outputs(nb, "basin.scene("))
    assert scene.format == "PNG" and scene.size == (800, 500)
    assert len(scene.convert("RGB").getcolors(1 << 24) or []) > 1000  # a rendered landscape, not a blank frame


def test_readings_show_the_class_bands_and_the_warnings_at_mialet(run):
    nb = run("02-readings-and-warnings.ipynb")
    assert re.search(r"Dimensions: +\(station: \d+, time: \d+\)", text(outputs(nb, "to_xarray")))
    assert "'units': 'mg/L'" in text(outputs(nb, "].attrs"))
    assert len(figures(outputs(nb, "plots.class_bands"))) == 1
    assert len(figures(outputs(nb, "classify_history(start"))) == 1
    assert "劣V" in text(outputs(nb, 'history["class"] == 6'))
    warnings = text(outputs(nb, "basin.alerts"), ("text/html",))
    assert "<table" in warnings and "GM-MIALET" in warnings and "red" in warnings
    plans = text(outputs(nb, "pd.DataFrame(first["))
    assert "red warning at GM-STETIENNE" in plans  # the first warning is upstream, in Lozère
    assert "Lozère" in plans and "Gard" in plans and "Close the drinking-water intakes" in plans


def test_trace_names_lozere_and_gard_finds_the_mine_and_shows_the_crossing(run, scenario_dir):
    _, truth = scenario_dir
    nb = run("03-trace-an-incident.ipynb")
    assert "fish_kill" in text(outputs(nb, "incidents.get"))
    report = text(outputs(nb, "downstream_report"))
    assert "Lozère → Gard" in report and "Drinking-water intake".lower() in report.lower()
    assert len(figures(outputs(nb, "plume.simulate"))) == 1
    assert truth["source"]["site"] in text(outputs(nb, "trace_upstream"))
    compared = text(outputs(nb, "best = candidates.iloc[0]"))
    assert compared.count(truth["source"]["site"]) == 2  # traced and true source agree
    assert len(figures(outputs(nb, "plots.profile"))) == 1
    shown = dict(re.findall(r"^(.+?) {2,}([-\d.e+]+)$", text(outputs(nb, '"peak at (km)"')), re.M))
    assert abs(float(shown["peak at (km)"]) - float(shown["boundary at (km)"])) < 0.5  # the plume is at the boundary
    (scene,) = images(outputs(nb, "basin.scene("))
    assert scene.format == "PNG" and scene.size == (800, 500)
