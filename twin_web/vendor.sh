#!/bin/sh
# The viewer's browser libraries, from the npm registry (versions pinned by twin_web/package-lock.json),
# copied into twin_web/static/vendor/ where the Flask app serves them: the page loads nothing from a CDN.
# Run by `make setup` (and so by `make demo` and `make test`, which install Node and npm first when they
# are missing); safe to run again. Fails when it cannot produce MapLibre: a viewer without it draws no map.
set -eu
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "twin_web/vendor.sh: Node.js and npm are needed to fetch MapLibre GL JS for the map viewer; install them with: sudo apt-get install -y nodejs npm" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
out=static/vendor/maplibre-gl
rm -rf "$out"
mkdir -p "$out"
for f in maplibre-gl.js maplibre-gl.js.map maplibre-gl.css LICENSE.txt; do
  cp "node_modules/maplibre-gl/dist/$f" "$out/$f"
done
node -p "require('./node_modules/maplibre-gl/package.json').version" >"$out/VERSION"
echo "twin_web/vendor.sh: MapLibre GL JS $(cat "$out/VERSION") in twin_web/$out"
