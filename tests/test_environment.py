"""``environment.yml`` (conda-forge) carries every dependency that ``make test`` installs with pip, with the same floors.

The Makefile installs the project with the extras named in its ``pip install -e ".[...]"`` line; each of
those requirements, and the core ones, must be in ``environment.yml`` under its conda-forge name with the
same version specifiers, so that a conda user gets what a pip user gets. The names differ now and then:
:data:`CONDA_NAMES` says where.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

#: PyPI name (canonical) -> conda-forge name, where they are spelt differently or one package differs.
#: A name not listed is the same on both (conda-forge names are lower case, as canonical PyPI names are).
CONDA_NAMES = {
    # the [binary] extra pulls PyPI's psycopg-binary, a wheel with its own libpq; conda-forge's psycopg
    # links conda-forge's libpq instead, so the extra has no conda counterpart
    "psycopg": "psycopg",
    "owslib": "owslib",  # PyPI spells it OWSLib
    "netcdf4": "netcdf4",  # PyPI spells it netCDF4
    "types-pyyaml": "types-pyyaml",  # PyPI spells it types-PyYAML
    # the Python driver (arrow-adbc feedstock); its C library is libadbc-driver-sqlite, pulled in by it
    "adbc-driver-sqlite": "adbc-driver-sqlite",
    "pillow": "pillow",  # not "PIL" (the import name)
    "pyyaml": "pyyaml",  # not "yaml" (the import name)
    # conda-forge's vtk is the full VTK with its Python module (vtk-base is the same without Qt/ffmpeg);
    # pyvista's off-screen EGL rendering uses the machine's Mesa either way
    "vtk": "vtk",
}
#: Names taken from memory of conda-forge and not confirmed from this machine (no conda client here to ask):
#: playwright (conda-forge's build of the Python package; Microsoft also publishes it on its own channel),
#: schemathesis (whether a 4.x build is there) and pygltflib.
UNCONFIRMED = ("playwright", "schemathesis", "pygltflib")
#: What the project needs that is not a Python package, and why; conda-forge names.
NON_PYTHON = {
    "nodejs": "node and npm, for twin_web/vendor.sh (MapLibre GL JS)",
    "postgresql": "initdb and pg_ctl, for the tests' throwaway PostgreSQL cluster (tests/pg_cluster.py)",
}


def make_test_extras(makefile: str) -> list[str]:
    """The extras in the Makefile's ``pip install -e ".[...]"`` (what ``make test`` installs)."""
    found = re.findall(r'pip install[^\n]*-e\s+"?\.\[([A-Za-z0-9_,\- ]+)\]', makefile)
    assert len(found) == 1, f"expected one `pip install -e .[extras]` line in the Makefile, found {found}"
    return [e.strip() for e in found[0].split(",")]


def requirements(pyproject: str, extras: list[str]) -> list[Requirement]:
    project = tomllib.loads(pyproject)["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def conda_specs(environment: str) -> dict[str, list[str]]:
    """conda-forge name -> the version specifiers given for it (a list: a name given twice has two)."""
    specs: dict[str, list[str]] = {}
    for item in yaml.safe_load(environment)["dependencies"]:
        if not isinstance(item, str):  # the pip: section
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)", item.strip())
        assert match, f"cannot read the conda spec {item!r}"
        specs.setdefault(match.group(1).lower(), []).append(match.group(2).replace(" ", ""))
    return specs


def conda_name(req: Requirement) -> str:
    name = canonicalize_name(req.name)
    return CONDA_NAMES.get(name, name)


def problems(pyproject: str, environment: str, extras: list[str]) -> list[str]:
    """Every way ``environment`` falls short of ``pyproject``'s requirements, one line each."""
    env = conda_specs(environment)
    out = []
    seen: dict[str, str] = {}
    for req in requirements(pyproject, extras):
        name = conda_name(req)
        if name in seen:  # in two extras (pillow): one entry serves both, with the same floor
            if seen[name] != str(req.specifier):
                out.append(f"{req} and {req.name}{seen[name]} ask for different versions")
            continue
        seen[name] = str(req.specifier)
        if name not in env:
            out.append(f"{req} is missing from environment.yml (conda-forge name: {name})")
        elif SpecifierSet(env[name][0]) != req.specifier:
            out.append(f"{req}: environment.yml has {name}{env[name][0]}, not the same versions ({req.specifier})")
    for name, why in NON_PYTHON.items():
        if name not in env:
            out.append(f"{name} is missing from environment.yml ({why})")
    out += [f"{name} is listed {len(given)} times in environment.yml" for name, given in env.items() if len(given) > 1]
    return out


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def test_environment_yml_has_every_dependency_that_make_test_installs():
    extras = make_test_extras(read("Makefile"))
    assert {"scene", "web", "test", "dev"} <= set(extras)
    assert problems(read("pyproject.toml"), read("environment.yml"), extras) == []


def test_environment_python_meets_requires_python():
    python = conda_specs(read("environment.yml"))["python"]
    assert python[0].startswith("="), python
    version = python[0].lstrip("=")
    assert version in SpecifierSet(tomllib.loads(read("pyproject.toml"))["project"]["requires-python"])


def test_every_name_mapping_is_for_a_dependency_of_the_project():
    # a mapping left behind by a dependency that went away would hide the next package of that name
    project = tomllib.loads(read("pyproject.toml"))["project"]
    everything = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    for reqs in project["optional-dependencies"].values():
        everything |= {canonicalize_name(Requirement(r).name) for r in reqs}
    assert set(CONDA_NAMES) | set(UNCONFIRMED) <= everything


def test_a_dependency_missing_or_with_another_floor_is_named():
    pyproject = read("pyproject.toml").replace(
        '"click>=8.1",', '"click>=8.1",\n    "OWSLib>=0.30",\n    "zarr>=2.16",', 1
    )
    environment = (
        read("environment.yml").replace("  - numpy>=1.26\n", "  - numpy>=1.20\n").replace("  - nodejs", "  - npm")
    )
    environment = environment.replace("  - tqdm>=4.66\n", "  - tqdm>=4.66\n  - tqdm\n")
    assert problems(pyproject, environment, ["web"]) == [
        "numpy>=1.26: environment.yml has numpy>=1.20, not the same versions (>=1.26)",
        "zarr>=2.16 is missing from environment.yml (conda-forge name: zarr)",
        "nodejs is missing from environment.yml (node and npm, for twin_web/vendor.sh (MapLibre GL JS))",
        "tqdm is listed 2 times in environment.yml",
    ]
