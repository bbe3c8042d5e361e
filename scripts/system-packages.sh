#!/bin/sh
# The system packages that `make demo` and `make test` need, installed when missing (run by the Makefile).
#
#   sh scripts/system-packages.sh demo   Node.js and npm: twin_web/vendor.sh fetches the map viewer's MapLibre GL JS
#   sh scripts/system-packages.sh test   that, and what the tests use: Chromium (/usr/bin/chromium, the viewer's
#                                        browser tests), a CJK font (the 3D scene's Chinese labels), Mesa's EGL
#                                        and software renderer (the 3D scene off screen) and PostgreSQL's server
#                                        binaries (the tests start a throwaway cluster of their own)
#
# Each need is checked by what uses it (a command, a file, a shared library), not by a package name. As root
# the missing ones are installed with apt-get (one update, one install, quiet); otherwise it prints the one
# command to run and exits 1. Nothing is started: the tests start their own PostgreSQL and stop it.
set -eu
case "${1:-}" in
  demo | test) goal=$1 ;;
  *) echo "usage: sh scripts/system-packages.sh demo|test" >&2; exit 2 ;;
esac

missing=""
want() { missing="$missing $1"; }
has_command() { command -v "$1" >/dev/null 2>&1; }
has_library() { # a shared library the dynamic loader finds by name
  for ldconfig in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
    if has_command "$ldconfig"; then "$ldconfig" -p | grep -q "[[:space:]]$1 " && return 0 || return 1; fi
  done
  return 1
}
has_file() { # any of the paths given (globs allowed) exists
  for pattern in "$@"; do
    for f in $pattern; do [ -e "$f" ] && return 0; done
  done
  return 1
}
has_postgres_server() { # initdb and pg_ctl, where tests/pg_cluster.py looks for them
  dirs=""
  has_command pg_config && dirs=$(pg_config --bindir 2>/dev/null || true)
  for d in $dirs /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && return 0
  done
  has_command initdb && has_command pg_ctl
}

has_command node || want nodejs
has_command npm || want npm
if [ "$goal" = test ]; then
  [ -x /usr/bin/chromium ] || want chromium
  # twin.scene.style looks for WenQuanYi Micro Hei first
  has_file /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || want fonts-wqy-microhei
  # what VTK's EGL window loads: libglvnd's libEGL, Mesa's EGL vendor library, Mesa's software rasteriser
  has_library libEGL.so.1 || want libegl1
  has_library libEGL_mesa.so.0 || want libegl-mesa0
  has_file "/usr/lib/*/dri/swrast_dri.so" /usr/lib/dri/swrast_dri.so || want libgl1-mesa-dri
  has_postgres_server || want postgresql
fi

[ -z "$missing" ] && exit 0
missing=${missing# }
if [ -n "${TWIN_SYSTEM_PACKAGES_INSTALLED:-}" ]; then
  echo "scripts/system-packages.sh: still missing after apt-get install: $missing" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! has_command apt-get; then
  echo "make $goal needs system packages this machine lacks; install them with: sudo apt-get install -y $missing" >&2
  exit 1
fi
echo "scripts/system-packages.sh: installing with apt-get: $missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # one word per package
apt-get install -y -qq $missing >/dev/null
TWIN_SYSTEM_PACKAGES_INSTALLED=1 exec sh "$0" "$goal" # check again, by what uses them
