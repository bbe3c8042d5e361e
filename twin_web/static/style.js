// The map's colours and its MapLibre style: our own raster tiles (basemaps and terrain-RGB for 3D),
// the twin's features as GeoJSON, and the layers drawn from them. No glyphs or sprites are needed
// (labels are HTML markers), so nothing is fetched from outside this server.

import { url } from "./page.js";

export const COLOURS = {
  classes: { 1: "#45b5e8", 2: "#1f5fbf", 3: "#2ca25f", 4: "#e8c000", 5: "#f07f09", 6: "#d7191c" },
  levels: { 0: "#3aa757", 1: "#1e6fe0", 2: "#f2cf00", 3: "#ff8c00", 4: "#e0001b" },
  none: "#9aa3ab",
  kinds: { intake: "#00a6a6", mine: "#8a5a2b", dump: "#6b6b6b", outfall: "#8e44ad" },
  river: "#1668b8",
  trace: "#c2185b",
  boundary: ["#3d1f6e", "#5b3f8c", "#7d6b99"],
};

export const EMPTY = { type: "FeatureCollection", features: [] };

// the style of viewer v (its set-up and the features it has fetched)
export function mapStyle(v) {
  const tiles = (name) => url(v.config.tiles[name].tilejson);
  const levels = v.config.levels;
  const boundary = (level, k) => ({
    id: `boundaries-${level}`,
    type: "line",
    source: "jurisdictions",
    filter: ["==", ["get", "level"], level],
    layout: { "line-join": "round", visibility: k < 2 ? "visible" : "none" },
    paint: {
      "line-color": COLOURS.boundary[Math.min(k, 2)],
      "line-width": [2.6, 1.3, 0.6][Math.min(k, 2)],
      "line-opacity": [1, 0.9, 0.7][Math.min(k, 2)],
      ...(k === 1 ? { "line-dasharray": [3, 2] } : {}),
    },
  });
  return {
    version: 8,
    sources: {
      elevation: { type: "raster", url: tiles("elevation"), tileSize: 256 },
      hillshade: { type: "raster", url: tiles("hillshade"), tileSize: 256 },
      "upstream-area": { type: "raster", url: tiles("upstream-area"), tileSize: 256 },
      subbasins: { type: "raster", url: tiles("subbasins"), tileSize: 256 },
      dem: { type: "raster-dem", url: tiles("terrain-rgb"), tileSize: 256, encoding: "mapbox" },
      reaches: { type: "geojson", data: url("api/collections/reaches/items", { limit: 10000 }) },
      jurisdictions: { type: "geojson", data: v.jurisdictions },
      sections: { type: "geojson", data: v.sections },
      stations: { type: "geojson", data: v.stationData() },
      sites: { type: "geojson", data: v.others },
      incidents: { type: "geojson", data: v.incidents },
      trace: { type: "geojson", data: EMPTY },
      plume: { type: "geojson", data: EMPTY },
    },
    sky: {
      "sky-color": "#9cc3e4",
      "horizon-color": "#eef3f7",
      "fog-color": "#eef3f7",
      "sky-horizon-blend": 0.6,
      "horizon-fog-blend": 0.6,
      "fog-ground-blend": 0.85,
      "atmosphere-blend": 0,
    },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#e4e9ee" } },
      { id: "basemap-elevation", type: "raster", source: "elevation" },
      { id: "basemap-hillshade", type: "raster", source: "hillshade", paint: { "raster-opacity": 0.45 } },
      { id: "basemap-upstream-area", type: "raster", source: "upstream-area", layout: { visibility: "none" } },
      { id: "basemap-subbasins", type: "raster", source: "subbasins", layout: { visibility: "none" }, paint: { "raster-opacity": 0.85 } },
      ...levels
        .map((lv, k) => boundary(lv, k))
        .reverse(),
      {
        id: "rivers",
        type: "line",
        source: "reaches",
        layout: { "line-cap": "round", "line-join": "round" },
        paint: {
          "line-color": COLOURS.river,
          "line-width": ["interpolate", ["linear"], ["coalesce", ["get", "strahler"], 1], 1, 0.8, 2, 1.3, 3, 2.3, 4, 3.6],
        },
      },
      {
        id: "trace",
        type: "line",
        source: "trace",
        layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": COLOURS.trace, "line-width": 8, "line-opacity": 0.5 },
      },
      {
        id: "plume",
        type: "line",
        source: "plume",
        layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": ["get", "colour"], "line-width": 10, "line-opacity": ["get", "opacity"] },
      },
      {
        id: "sections",
        type: "circle",
        source: "sections",
        filter: ["==", ["get", "level"], levels[0] ?? ""],
        paint: { "circle-radius": 4, "circle-color": "#ffffff", "circle-stroke-color": COLOURS.boundary[0], "circle-stroke-width": 2 },
      },
      {
        id: "sites",
        type: "circle",
        source: "sites",
        paint: {
          "circle-radius": 6,
          "circle-color": ["match", ["get", "kind"], ...Object.entries(COLOURS.kinds).flat(), "#8e44ad"],
          "circle-stroke-color": "#ffffff",
          "circle-stroke-width": 1.5,
        },
      },
      {
        id: "incidents",
        type: "circle",
        source: "incidents",
        paint: { "circle-radius": 15, "circle-opacity": 0, "circle-stroke-color": "#6a1b9a", "circle-stroke-width": 3 },
      },
      {
        id: "stations",
        type: "circle",
        source: "stations",
        paint: { "circle-radius": 8, "circle-color": ["get", "colour"], "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 },
      },
      {
        id: "selected",
        type: "circle",
        source: "stations",
        filter: ["==", ["get", "id"], ""],
        paint: { "circle-radius": 13, "circle-opacity": 0, "circle-stroke-color": "#111111", "circle-stroke-width": 2.5 },
      },
    ],
  };
}
