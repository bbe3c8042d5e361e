#!/bin/sh
# A separate Python environment with richdem, for benchmarks/build.py:
#
#   sh benchmarks/richdem-env.sh [VENV]
#   python benchmarks/build.py --tools twin,pyflwdir,richdem --python richdem=VENV/bin/python
#
# richdem 0.3.4 (its last release on PyPI, 2018) has no wheel for Python 3.11,
# and its sdist does not build there as it is. This script makes a venv
# (default benchmarks/out/richdem-venv; RICHDEM_VENV or the first argument
# choose another), installs numpy and rasterio into it, and builds richdem
# from its PyPI sdist with three patches (see patch_sdist below). Running it
# again does nothing more once richdem imports and runs in the venv.
# BASE_PYTHON chooses the interpreter the venv is made from (default
# python3.11, else python3). Progress goes to stderr; the last line on stdout
# is the venv's interpreter.
set -eu

RICHDEM_VERSION=0.3.4
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-${RICHDEM_VENV:-$here/out/richdem-venv}}

say() { printf 'richdem-env: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ -z "${BASE_PYTHON:-}" ]; then
    if command -v python3.11 >/dev/null 2>&1; then BASE_PYTHON=python3.11; else BASE_PYTHON=python3; fi
fi
command -v "$BASE_PYTHON" >/dev/null 2>&1 || die "no $BASE_PYTHON on PATH; set BASE_PYTHON to a Python 3 interpreter"

# A smoke test of the installed richdem: import it and fill and route a tiny grid.
richdem_works() {
    "$1" - >/dev/null 2>&1 <<'EOF'
import numpy as np
import rasterio  # noqa: F401 (build.py reads the DEM with it)
import richdem as rd

dem = rd.rdarray(np.arange(16, dtype="float32").reshape(4, 4), no_data=-9999)
dem.geotransform = [0, 1, 0, 0, 0, -1]
rd.FillDepressions(dem, epsilon=True, in_place=True)
assert rd.FlowAccumulation(dem, method="D8").max() > 1
EOF
}

if [ -x "$venv/bin/python" ] && richdem_works "$venv/bin/python"; then
    say "richdem already works in $venv"
    printf '%s\n' "$venv/bin/python"
    exit 0
fi

# -- build tools: a C++ compiler and the headers of the base Python ------------

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

python_include=$("$BASE_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
missing=""
command -v g++ >/dev/null 2>&1 || missing="$missing g++"
[ -f "$python_include/Python.h" ] || missing="$missing python3-dev"
"$BASE_PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$missing python3-venv"
if [ -n "$missing" ]; then
    command -v apt-get >/dev/null 2>&1 || die "missing build tools:$missing (and no apt-get to install them)"
    say "installing with apt-get:$missing"
    as_root apt-get update >&2
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y --no-install-recommends $missing >&2
    # python3-dev gives headers to Debian's own python3 only
    [ -f "$python_include/Python.h" ] || die "no Python.h for $BASE_PYTHON in $python_include; install its headers"
fi

# -- the venv and the packages build.py needs -----------------------------------

if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv from $BASE_PYTHON"
    mkdir -p "$(dirname "$venv")"
    "$BASE_PYTHON" -m venv "$venv"
fi
py=$venv/bin/python
pip() { "$py" -m pip --disable-pip-version-check "$@" >&2; }
pip install --upgrade pip
# numpy < 2: richdem 0.3.4 declares it (install_requires) and was written
# against numpy 1. pybind11: its headers replace the copy in the sdist.
# setuptools and wheel: the build runs without isolation, with these (current
# ones, so the build is the same whatever the base Python's venv brings).
pip install --upgrade "numpy<2" rasterio pybind11 setuptools wheel

# -- richdem from its sdist ---------------------------------------------------

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM  # exit, so that the EXIT trap cleans up
say "downloading the richdem $RICHDEM_VERSION sdist"
pip download --no-binary richdem --no-deps --dest "$work" "richdem==$RICHDEM_VERSION"
tar -xzf "$work/richdem-$RICHDEM_VERSION.tar.gz" -C "$work"
src=$work/richdem-$RICHDEM_VERSION

patch_sdist() {
    # 1. The sdist bundles pybind11 2.2.1 (lib/pybind11), which reads CPython
    #    internals that Python 3.11 made private (PyFrameObject's fields,
    #    PyThreadState.frame): every file fails with "invalid use of incomplete
    #    type 'PyFrameObject'". Current pybind11 headers go in its place.
    pybind11_include=$("$py" -c 'import pybind11; print(pybind11.get_include())')
    rm -rf "$src/lib/pybind11"
    cp -R "$pybind11_include/pybind11" "$src/lib/pybind11"
    # 2. setup.py compiles with -std=c++11. pybind11 3 still accepts C++11, but
    #    it is the oldest standard it supports; build in C++17 (g++ 12's
    #    default), which richdem's own code compiles in unchanged.
    sed -i 's/-std=c++11/-std=c++17/g' "$src/setup.py"
    grep -q -- "-std=c++17" "$src/setup.py" || die "setup.py no longer sets -std=c++11; check the patch"
    # 3. richdem/__init__.py imports pkg_resources (for its version string),
    #    which current setuptools no longer ships (84 has none, 80 had it):
    #    read the version through importlib.metadata instead.
    sed -i \
        -e 's/^import pkg_resources$/import importlib.metadata/' \
        -e 's/pkg_resources\.require("richdem")\[0\]\.version/importlib.metadata.version("richdem")/' \
        "$src/richdem/__init__.py"
    ! grep -q pkg_resources "$src/richdem/__init__.py" || die "richdem/__init__.py still uses pkg_resources; check the patch"
}
patch_sdist

say "building richdem (a few minutes: one large C++ file)"
# No build isolation: the patched tree needs nothing but setuptools, which is
# in the venv already, and an isolated build would fetch it again.
pip install --no-build-isolation "$src"

richdem_works "$py" || die "richdem was built but does not run; try: $py -c 'import richdem'"
say "richdem $RICHDEM_VERSION works in $venv"
printf '%s\n' "$py"
