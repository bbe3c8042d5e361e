#!/bin/sh
# The viewer's browser libraries, from the npm registry (versions pinned by web/package-lock.json),
# copied into web/static/vendor/ where the Flask app serves them: the page loads nothing from a CDN.
# Run by `make setup` (and so by `make demo` and `make test`); safe to run again.
set -eu
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "web/vendor.sh: npm not found; the map viewer needs it once to fetch MapLibre GL JS:" >&2
  echo "  apt-get install -y nodejs npm   then   sh web/vendor.sh" >&2
  exit 0 # the library and the API work without the viewer; the page and the server log say what is missing
fi
npm ci --no-audit --no-fund --loglevel=error
out=static/vendor/maplibre-gl
rm -rf "$out"
mkdir -p "$out"
for f in maplibre-gl.js maplibre-gl.js.map maplibre-gl.css LICENSE.txt; do
  cp "node_modules/maplibre-gl/dist/$f" "$out/$f"
done
node -p "require('./node_modules/maplibre-gl/package.json').version" >"$out/VERSION"
echo "web/vendor.sh: MapLibre GL JS $(cat "$out/VERSION") in web/$out"
