// The basin twin's map viewer (one page): MapLibre GL JS over our own tiles and API.
//
// Data: tiles from /tiles/, features from /api/collections/, station colours at a time from
// /api/slices/time, a station's chart from /api/slices/stations/<id>, downstream reports from
// /api/slices/downstream, and the set-up, slider times and plumes from /api/viewer/.
// window.twinViewer is the viewer, for the browser tests (whenSettled() waits for it to be still).
// Beside it: style.js (colours, the MapLibre style), panels.js (lists, legend, details), chart.js
// (a station's SVG chart), i18n.js (strings, Beijing-time dates, units), page.js (DOM and API helpers).

import { I18n, LANGUAGES } from "./i18n.js";
import { $, esc, getJSON, url } from "./page.js";
import * as panels from "./panels.js";
import { COLOURS, EMPTY, mapStyle } from "./style.js";

const STATIC = document.body.dataset.static || "/static/";
const PLAY_INTERVAL_MS = 700;

// the GB 3838 class of a value from the class bands of /api/slices (their ends' inclusiveness kept)
function classOf(v, bands) {
  if (v === null || !Number.isFinite(v)) return null;
  for (const b of bands) {
    const lo = b.lower ?? -Infinity;
    const hi = b.upper ?? Infinity;
    const inc = b.inclusive;
    const aboveLo = inc === "lower" || inc === "both" ? v >= lo : v > lo;
    const belowHi = inc === "upper" || inc === "both" ? v <= hi : v < hi;
    if (aboveLo && belowHi) return b.class;
  }
  return null;
}

function nearestIndex(sortedMs, ms) {
  let lo = 0;
  let hi = sortedMs.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sortedMs[mid] < ms) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(sortedMs[lo - 1] - ms) <= Math.abs(sortedMs[lo] - ms)) return lo - 1;
  return lo;
}

// -- the viewer ----------------------------------------------------------------------------------

class Viewer {
  constructor(i18n, config) {
    this.i18n = i18n;
    this.config = config;
    this.parameter = config.default.parameter;
    this.colourBy = "class";
    this.mode = "2d";
    this.times = [];
    this.timesMs = [];
    this.index = -1;
    this.periods = [];
    this.slice = null;
    this.sliceCache = new Map();
    this.seq = 0;
    this.pending = new Set();
    this.tracing = false;
    this.trace = null; // {origin, release, report, plume}
    this.selection = null; // {kind: station|incident|warning|trace, id}
    this.chartDays = panels.CHART_WINDOWS_DAYS[1];
    this.chartScale = "auto";
    this.series = null;
    this.labels = new Map();
    this.traceMarkers = [];
    this.playing = null;
    this.ready = false;
  }

  t(key, vars) {
    return this.i18n.t(key, vars);
  }

  // whether the user's role may take an action (the set-up's "may"): the panels say "not permitted" otherwise
  may(action) {
    return (this.config.may ?? []).includes(action);
  }

  track(promise) {
    this.pending.add(promise);
    const done = () => this.pending.delete(promise);
    promise.then(done, done);
    return promise;
  }

  // -- start-up -----------------------------------------------------------------------------------
  async start() {
    this.bindControls();
    this.applyLanguage();
    // only the collections this user may read (a researcher sees no incidents or warnings)
    const readable = await this.track(getJSON(url("api/collections")));
    const listed = new Set(readable.collections.map((c) => c.id));
    const empty = { type: "FeatureCollection", features: [] };
    const collection = (id) =>
      listed.has(id) ? getJSON(url(`api/collections/${id}/items`, { limit: 10000 })) : Promise.resolve(empty);
    const [stations, sites, incidents, warnings, sections, jurisdictions] = await this.track(
      Promise.all(["stations", "sites", "incidents", "warnings", "sections", "jurisdictions"].map(collection)),
    );
    this.stations = stations;
    this.sites = sites;
    this.others = { type: "FeatureCollection", features: sites.features.filter((f) => f.properties.kind !== "station") };
    this.incidents = incidents;
    this.warnings = warnings;
    this.sections = sections;
    this.jurisdictions = jurisdictions;
    this.unitNames = new Map(jurisdictions.features.map((f) => [`${f.properties.level}-${f.properties.code}`, f.properties.name]));
    this.siteById = new Map(sites.features.map((f) => [String(f.id), f]));
    this.createMap();
    await this.track(new Promise((resolve) => this.map.once("load", resolve)));
    this.addStationLabels();
    this.renderLists();
    if (this.parameter) await this.loadTimes(this.config.default.at);
    else this.setStatus(this.t("status.no_readings"));
    this.renderLegend();
    this.ready = true;
  }

  createMap() {
    const [w, s, e, n] = this.config.bounds;
    this.map = new maplibregl.Map({
      container: "map",
      style: this.style(),
      bounds: [
        [w, s],
        [e, n],
      ],
      fitBoundsOptions: { padding: 24 },
      maxPitch: 75,
      attributionControl: { compact: true },
      locale: this.mapLocale(),
    });
    this.map.addControl(new maplibregl.NavigationControl({ visualizePitch: true }), "top-right");
    this.map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "top-right");
    this.map.on("click", (ev) => this.onMapClick(ev));
    for (const id of ["stations", "incidents", "sites"]) {
      this.map.on("mouseenter", id, () => {
        if (!this.tracing) this.map.getCanvas().style.cursor = "pointer";
      });
      this.map.on("mouseleave", id, () => {
        if (!this.tracing) this.map.getCanvas().style.cursor = "";
      });
    }
    this.map.on("error", (ev) => {
      // a tile the server does not have is not worth a red console line; anything else is
      if (ev?.error?.status === 404) return;
      console.error("map:", ev?.error?.message || ev);
    });
  }

  style() {
    return mapStyle(this);
  }

  mapLocale() {
    return {
      "NavigationControl.ZoomIn": this.t("map.zoom_in"),
      "NavigationControl.ZoomOut": this.t("map.zoom_out"),
      "NavigationControl.ResetBearing": this.t("map.reset_bearing"),
      "ScaleControl.Meters": this.t("units.m"),
      "ScaleControl.Kilometers": this.t("units.km"),
    };
  }

  // -- controls ---------------------------------------------------------------------------------------
  bindControls() {
    // colouring by warning level means nothing to a role that may not read warnings
    const byWarning = $('#colour-by option[value="warning"]');
    byWarning.disabled = !this.may("warnings.read");
    byWarning.title = byWarning.disabled ? this.t("access.not_permitted") : "";
    $("#parameter").addEventListener("change", (ev) => this.setParameter(ev.target.value));
    $("#colour-by").addEventListener("change", (ev) => {
      this.colourBy = ev.target.value;
      this.paintStations();
      this.renderLegend();
    });
    for (const b of document.querySelectorAll("#view-mode button")) b.addEventListener("click", () => this.setMode(b.dataset.mode));
    for (const b of document.querySelectorAll("#language button")) b.addEventListener("click", () => this.setLanguage(b.dataset.lang));
    $("#trace-tool").addEventListener("click", () => this.setTracing(!this.tracing));
    $("#trace-cancel").addEventListener("click", () => this.setTracing(false));
    $("#panel-toggle").addEventListener("click", () => {
      const collapsed = document.body.classList.toggle("panel-collapsed");
      $("#panel-toggle").setAttribute("aria-expanded", String(!collapsed));
      this.map?.resize();
    });
    for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => this.showTab(b.dataset.tab));
    for (const input of document.querySelectorAll('input[name="basemap"]')) input.addEventListener("change", () => this.setBasemap(input.value));
    for (const input of document.querySelectorAll("#overlays input[data-layer]")) {
      input.addEventListener("change", () => this.setOverlay(input.dataset.layer, input.checked));
    }
    const slider = $("#time-slider");
    slider.addEventListener("input", () => this.showTime(Number(slider.value)));
    $("#play").addEventListener("click", () => this.togglePlay());
    $("#warning-filter").addEventListener("change", () => this.renderLists());
    window.addEventListener("resize", () => this.series && this.renderDetails());
  }

  showTab(tab) {
    for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
    for (const s of document.querySelectorAll("#panel .tab")) s.hidden = s.id !== `tab-${tab}`;
    if (document.body.classList.contains("panel-collapsed")) {
      document.body.classList.remove("panel-collapsed");
      $("#panel-toggle").setAttribute("aria-expanded", "true");
      this.map?.resize();
    }
  }

  setBasemap(name) {
    const on = {
      "basemap-elevation": name === "terrain",
      "basemap-hillshade": name === "terrain" || name === "hillshade",
      "basemap-upstream-area": name === "upstream-area",
      "basemap-subbasins": name === "subbasins",
    };
    for (const [id, visible] of Object.entries(on)) this.map.setLayoutProperty(id, "visibility", visible ? "visible" : "none");
    this.map.setPaintProperty("basemap-hillshade", "raster-opacity", name === "hillshade" ? 1 : 0.45);
    this.basemap = name;
  }

  setOverlay(layer, visible) {
    const ids = layer === "stations" ? ["stations", "selected"] : [layer];
    for (const id of ids) if (this.map.getLayer(id)) this.map.setLayoutProperty(id, "visibility", visible ? "visible" : "none");
    if (layer === "stations") for (const m of this.labels.values()) m.getElement().hidden = !visible;
    if (layer === "trace") for (const m of this.traceMarkers) m.getElement().hidden = !visible;
  }

  setMode(mode) {
    this.mode = mode;
    for (const b of document.querySelectorAll("#view-mode button")) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
    if (mode === "3d") {
      this.map.setTerrain({ source: "dem", exaggeration: 1.6 });
      this.map.easeTo({ pitch: 62, bearing: -28, duration: 900 });
    } else {
      this.map.setTerrain(null);
      this.map.easeTo({ pitch: 0, bearing: 0, duration: 700 });
    }
  }

  setTracing(on) {
    this.tracing = on;
    $("#trace-tool").setAttribute("aria-pressed", String(on));
    $("#trace-hint").hidden = !on;
    $("#trace-error").hidden = true;
    this.map.getCanvas().style.cursor = on ? "crosshair" : "";
  }

  setStatus(text) {
    const s = $("#status");
    s.textContent = text || "";
    s.hidden = !text;
  }

  // -- language ---------------------------------------------------------------------------------------
  setLanguage(lang) {
    if (!LANGUAGES.includes(lang)) return;
    this.i18n.lang = lang;
    try {
      window.localStorage.setItem("twin.lang", lang);
    } catch {
      // storage refused (private mode): the choice lasts for this page only
    }
    this.applyLanguage();
    this.renderParameterOptions();
    this.updateTimeLabel();
    this.renderLegend();
    this.renderLists();
    this.renderDetails();
    this.updateLabels();
    this.drawTraceMarkers();
    if (this.map?._locale) {
      // MapLibre reads its control strings from the map's locale, set only at construction: refresh it
      // in place, and move the map by nothing so the scale bar is written again
      Object.assign(this.map._locale, this.mapLocale());
      this.map.jumpTo({ center: this.map.getCenter() });
    }
  }

  applyLanguage() {
    const lang = this.i18n.lang;
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.documentElement.dataset.lang = lang;
    for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = this.t(e.dataset.i18n);
    for (const e of document.querySelectorAll("[data-i18n-title]")) e.title = this.t(e.dataset.i18nTitle);
    for (const e of document.querySelectorAll("[data-i18n-aria]")) e.setAttribute("aria-label", this.t(e.dataset.i18nAria));
    for (const e of document.querySelectorAll("[data-unit]")) e.textContent = this.i18n.unit(e.dataset.unit);
    for (const b of document.querySelectorAll("#language button")) b.setAttribute("aria-pressed", String(b.dataset.lang === lang));
    document.title = `${this.t("app.name")} · ${this.config.title}`;
    $("#simulated-badge").hidden = !this.config.simulated;
    const notes = [this.t("notes.zone"), this.t("notes.classes", { source: this.config.class_source })];
    if (this.config.simulated) notes.unshift(this.t("notes.simulated"));
    $("#data-note").innerHTML = notes.map((n) => `<span>${esc(n)}</span>`).join("<br>");
    if (this.map) {
      const titles = {
        ".maplibregl-ctrl-zoom-in": "map.zoom_in",
        ".maplibregl-ctrl-zoom-out": "map.zoom_out",
        ".maplibregl-ctrl-compass": "map.reset_bearing",
      };
      for (const [sel, key] of Object.entries(titles)) {
        const b = $(sel);
        if (b) {
          b.title = this.t(key);
          b.setAttribute("aria-label", this.t(key));
        }
      }
    }
    this.renderParameterOptions();
  }

  renderParameterOptions() {
    const select = $("#parameter");
    select.replaceChildren(
      ...this.config.parameters.map((p) => {
        const o = document.createElement("option");
        o.value = p.id;
        o.textContent = `${this.i18n.parameterName(p)} · ${this.i18n.unit(p.unit) || this.t("units.dimensionless")}`;
        return o;
      }),
    );
    if (this.parameter) select.value = this.parameter;
    select.disabled = !this.config.parameters.length;
  }

  parameterInfo(id = this.parameter) {
    return this.config.parameters.find((p) => p.id === id) ?? { id, name_zh: id, long_name: id, unit: "" };
  }

  // -- time -------------------------------------------------------------------------------------------
  async loadTimes(at) {
    const data = await this.track(getJSON(url("api/viewer/times", { parameter: this.parameter })));
    this.times = data.time;
    this.timesMs = data.time.map((t) => Date.parse(t));
    this.periods = data.warnings ?? []; // absent when the role may not read warnings
    const slider = $("#time-slider");
    slider.max = String(Math.max(0, this.times.length - 1));
    slider.disabled = this.times.length === 0;
    this.drawWarningTicks();
    if (!this.times.length) {
      this.setStatus(this.t("status.no_readings"));
      return;
    }
    this.setStatus("");
    const k = at ? nearestIndex(this.timesMs, Date.parse(at)) : this.times.length - 1;
    await this.showTime(k);
  }

  async setParameter(p) {
    this.parameter = p;
    const at = this.times[this.index];
    await this.loadTimes(at);
    this.renderLegend();
    this.renderLists();
    if (this.selection?.kind === "station") await this.selectStation(this.selection.id);
  }

  async showTime(index) {
    if (!this.times.length) return;
    index = Math.max(0, Math.min(this.times.length - 1, index));
    this.index = index;
    const at = this.times[index];
    $("#time-slider").value = String(index);
    this.updateTimeLabel();
    this.paintPlume();
    const seq = ++this.seq;
    const key = `${this.parameter}|${at}`;
    let slice = this.sliceCache.get(key);
    if (!slice) {
      slice = await this.track(getJSON(url("api/slices/time", { at, parameter: this.parameter })));
      this.sliceCache.set(key, slice);
    }
    if (seq !== this.seq) return;
    this.slice = slice;
    this.paintStations();
    if ($("#warning-filter").value === "active") this.renderLists();
    await this.refreshSelectionForTime();
  }

  updateTimeLabel() {
    const at = this.times[this.index];
    $("#time-label").textContent = at ? this.i18n.dateTimeZone(at) : this.t("status.no_readings");
  }

  drawWarningTicks() {
    const box = $("#warning-ticks");
    box.replaceChildren();
    const n = this.timesMs.length;
    if (n < 2) return;
    const span = this.timesMs[n - 1] - this.timesMs[0];
    for (const p of this.periods) {
      const s = nearestIndex(this.timesMs, Date.parse(p.start));
      const e = p.end ? nearestIndex(this.timesMs, Date.parse(p.end)) : n - 1;
      const tick = document.createElement("span");
      tick.className = "tick";
      tick.style.left = `${(s / (n - 1)) * 100}%`;
      tick.style.width = `${Math.max(0.4, ((e - s) / (n - 1)) * 100)}%`;
      tick.style.background = COLOURS.levels[p.level];
      tick.title = `${this.i18n.level(p.level)} · ${this.stationName(p.station)}`;
      box.appendChild(tick);
    }
    box.dataset.span = String(span);
  }

  togglePlay() {
    const button = $("#play");
    if (this.playing) {
      clearInterval(this.playing);
      this.playing = null;
      button.textContent = "▶";
      button.setAttribute("aria-pressed", "false");
      return;
    }
    if (this.index >= this.times.length - 1) this.showTime(0);
    button.textContent = "❚❚";
    button.setAttribute("aria-pressed", "true");
    this.playing = setInterval(() => {
      if (this.index >= this.times.length - 1) this.togglePlay();
      else this.showTime(this.index + 1);
    }, PLAY_INTERVAL_MS);
  }

  // -- stations -----------------------------------------------------------------------------------------
  stationName(id) {
    const f = this.siteById?.get(String(id));
    return f ? this.i18n.placeName(f.properties) : String(id);
  }

  colourOf(entry) {
    if (!entry) return COLOURS.none;
    if (this.colourBy === "warning") return "warning_level" in entry ? COLOURS.levels[entry.warning_level || 0] : COLOURS.none;
    return entry.class ? COLOURS.classes[entry.class] : COLOURS.none;
  }

  stationData() {
    const byId = new Map((this.slice?.stations ?? []).map((s) => [s.id, s]));
    return {
      type: "FeatureCollection",
      features: this.stations.features.map((f) => {
        const s = byId.get(String(f.id));
        return {
          ...f,
          properties: {
            ...f.properties,
            colour: this.colourOf(s),
            class: s?.class ?? null,
            warning_level: s?.warning_level ?? 0,
            value: s?.value ?? null,
          },
        };
      }),
    };
  }

  paintStations() {
    this.map.getSource("stations")?.setData(this.stationData());
    this.map.setFilter("selected", ["==", ["get", "id"], this.selection?.kind === "station" ? this.selection.id : ""]);
  }

  addStationLabels() {
    for (const f of this.stations.features) {
      const e = document.createElement("div");
      e.className = "map-label station-label";
      const marker = new maplibregl.Marker({ element: e, anchor: "left", offset: [12, 0] }).setLngLat(f.geometry.coordinates).addTo(this.map);
      this.labels.set(String(f.id), marker);
    }
    this.updateLabels();
  }

  updateLabels() {
    for (const [id, m] of this.labels) m.getElement().textContent = this.stationName(id);
  }

  // -- clicks ---------------------------------------------------------------------------------------
  onMapClick(ev) {
    if (this.tracing) {
      this.runTrace(ev.lngLat.lng, ev.lngLat.lat, { kind: "point" });
      return;
    }
    const p = ev.point;
    const layers = ["stations", "incidents", "sites"].filter((id) => this.map.getLayoutProperty(id, "visibility") !== "none");
    const found = this.map.queryRenderedFeatures(
      [
        [p.x - 6, p.y - 6],
        [p.x + 6, p.y + 6],
      ],
      { layers },
    );
    const pick = (layer) => found.find((f) => f.layer.id === layer);
    const station = pick("stations");
    const incident = pick("incidents");
    const site = pick("sites");
    this.alsoHere = found.filter((f) => f !== station);
    if (station) this.selectStation(String(station.properties.id));
    else if (incident) this.selectIncident(String(incident.properties.id));
    else if (site) this.selectSite(String(site.properties.id));
  }

  async selectStation(id) {
    this.selection = { kind: "station", id };
    this.paintStations();
    this.showTab("details");
    await this.loadSeries(true);
  }

  // the chart's time window: centred on the slider's time, moved (not cut) to stay within the readings
  chartWindow() {
    const t = this.timesMs[this.index] ?? Date.now();
    const span = this.chartDays * 24 * 3600 * 1000;
    let start = t - span / 2;
    const first = this.timesMs[0] ?? start;
    const last = this.timesMs[this.timesMs.length - 1] ?? start + span;
    const pad = 3600 * 1000;
    if (start + span > last + pad) start = last + pad - span;
    if (start < first - pad) start = first - pad;
    return { start, end: start + span };
  }

  async loadSeries(force = false) {
    const sel = this.selection;
    if (sel?.kind !== "station") return;
    const win = this.chartWindow();
    if (!force && this.series && this.series.station.id === sel.id && this.series.parameter === this.parameter) {
      const cur = this.timesMs[this.index];
      const margin = (this.series.window.end - this.series.window.start) * 0.15;
      if (cur >= this.series.window.start + margin && cur <= this.series.window.end - margin) {
        this.renderDetails();
        return;
      }
    }
    const query = {
      parameter: this.parameter,
      start: new Date(win.start).toISOString(),
      end: new Date(win.end).toISOString(),
    };
    const series = await this.track(getJSON(url(`api/slices/stations/${encodeURIComponent(sel.id)}`, query)));
    if (this.selection !== sel) return;
    series.window = win;
    this.series = series;
    this.renderDetails();
  }

  async refreshSelectionForTime() {
    if (this.selection?.kind === "station") await this.loadSeries(false);
    else if (this.selection) this.renderDetails();
  }

  selectIncident(id) {
    this.selection = { kind: "incident", id };
    this.paintStations();
    this.showTab("details");
    this.renderDetails();
    const f = this.incidents.features.find((x) => String(x.id) === id);
    if (f) {
      // to the first reading at or after the incident was observed, so the slider plays its plume on
      const observed = Date.parse(f.properties.observed);
      const k = this.timesMs.findIndex((t) => t >= observed);
      if (k >= 0) this.showTime(k);
      const [lon, lat] = f.geometry.coordinates;
      this.runTrace(lon, lat, { kind: "incident", id }, f.properties.observed);
    }
  }

  selectSite(id) {
    this.selection = { kind: "site", id };
    this.paintStations();
    this.showTab("details");
    this.renderDetails();
  }

  async selectWarning(id) {
    this.selection = { kind: "warning", id, feature: null };
    const sel = this.selection;
    this.showTab("details");
    this.renderDetails();
    const feature = await this.track(getJSON(url(`api/collections/warnings/items/${encodeURIComponent(id)}`)));
    if (this.selection !== sel) return;
    sel.feature = feature;
    const p = feature.properties;
    if (p.parameter !== this.parameter && this.config.parameters.some((x) => x.id === p.parameter)) {
      this.parameter = p.parameter;
      $("#parameter").value = p.parameter;
      await this.loadTimes(p.start);
      this.renderLegend();
    } else {
      await this.showTime(nearestIndex(this.timesMs, Date.parse(p.start)));
    }
    this.renderDetails();
  }

  // -- trace from here ------------------------------------------------------------------------------
  async runTrace(lon, lat, origin, at = null) {
    const when = at || this.times[this.index];
    if (!when) return;
    const mass = Number($("#trace-mass").value) > 0 ? Number($("#trace-mass").value) : 100;
    const release = { lon: lon.toFixed(6), lat: lat.toFixed(6), parameter: this.parameter || "NH3-N", mass_kg: mass };
    $("#trace-error").hidden = true;
    this.setStatus(this.t("trace.running"));
    try {
      const [report, plume] = await this.track(
        Promise.all([
          getJSON(url("api/slices/downstream", { ...release, at: when })),
          getJSON(url("api/viewer/plume", { ...release, release_at: when })),
        ]),
      );
      this.trace = { origin, release: { ...release, at: when }, report, plume };
      this.map.getSource("trace").setData(report.path);
      this.drawTraceMarkers();
      this.paintPlume();
      this.setTracing(false);
      if (origin.kind === "point") this.selection = { kind: "trace" };
      this.showTab("details");
      this.renderDetails();
      this.renderLegend();
      this.setStatus("");
    } catch (err) {
      this.setStatus("");
      const box = $("#trace-error");
      box.textContent = `${this.t("trace.failed")} ${err.message}`;
      box.hidden = false;
      $("#trace-hint").hidden = false;
    }
  }

  drawTraceMarkers() {
    for (const m of this.traceMarkers) m.remove();
    this.traceMarkers = [];
    if (!this.trace) return;
    const top = this.config.levels[0];
    const sectionById = new Map(this.sections.features.map((f) => [`section-${f.id}`, f]));
    const visible = $('#overlays input[data-layer="trace"]').checked;
    for (const e of this.trace.report.entries) {
      let f = null;
      if (e.kind === "section" && e.level === top) f = sectionById.get(e.id);
      else if (e.kind === "station" || e.kind === "intake") f = this.siteById.get(String(e.id));
      const when = e.likely ?? e.earliest;
      if (!f || !when || !(e.distance_km > 0)) continue; // the release point itself needs no arrival time
      const h = (Date.parse(when) - Date.parse(this.trace.release.at)) / 3600e3;
      const el = document.createElement("div");
      el.className = `map-label arrival ${e.kind}`;
      const name = e.kind === "section" ? e.name : this.stationName(e.id);
      el.textContent = `${name} · ${this.i18n.clock(when)} (+${this.i18n.hours(h)})`;
      el.hidden = !visible;
      const m = new maplibregl.Marker({ element: el, anchor: "right", offset: [-12, 0] }).setLngLat(f.geometry.coordinates).addTo(this.map);
      this.traceMarkers.push(m);
    }
  }

  // the plume at the slider's time: segments between the sampled points, by class of concentration
  paintPlume() {
    const source = this.map?.getSource("plume");
    if (!source) return;
    const plume = this.trace?.plume;
    const t = this.timesMs[this.index];
    this.plumeNow = null;
    if (!plume || t === undefined) {
      source.setData(EMPTY);
      return;
    }
    const t0 = Date.parse(plume.time[0]);
    const step = plume.step_minutes * 60e3;
    const f = (t - t0) / step;
    const rows = plume.concentration_mg_l;
    if (f < 0 || f > rows.length - 1) {
      source.setData(EMPTY);
      return;
    }
    const i = Math.floor(f);
    const w = f - i;
    const a = rows[i];
    const b = rows[Math.min(i + 1, rows.length - 1)];
    const conc = a.map((v, k) => (v ?? 0) * (1 - w) + (b[k] ?? 0) * w);
    const peak = Math.max(...plume.peak_mg_l.map((v) => v ?? 0));
    const floor = peak * 1e-3;
    const features = [];
    let now = 0;
    for (let k = 0; k + 1 < conc.length; k++) {
      const c = (conc[k] + conc[k + 1]) / 2;
      now = Math.max(now, c);
      if (!(c > floor)) continue;
      const klass = plume.classified ? classOf(c, plume.class_bands) : null;
      const opacity = 0.35 + 0.65 * Math.min(1, Math.log10(c / floor) / Math.log10(peak / floor || 10));
      features.push({
        type: "Feature",
        geometry: {
          type: "LineString",
          coordinates: [
            [plume.lon[k], plume.lat[k]],
            [plume.lon[k + 1], plume.lat[k + 1]],
          ],
        },
        properties: { c, class: klass, colour: klass ? COLOURS.classes[klass] : "#b0005a", opacity },
      });
    }
    this.plumeNow = { max: now, segments: features.length, hours: (t - t0) / 3600e3 };
    source.setData({ type: "FeatureCollection", features });
    this.renderLegend();
  }

  // -- lists, legend and details (panels.js) ----------------------------------------------------------
  renderLists() {
    panels.renderLists(this);
  }

  renderLegend() {
    panels.renderLegend(this);
  }

  renderDetails() {
    panels.renderDetails(this);
  }

  // -- for the tests: true once no request is pending and the map has drawn everything (false on timeout)
  async whenSettled(timeoutMs = 30000) {
    const until = performance.now() + timeoutMs;
    while (performance.now() < until) {
      if (this.pending.size) {
        await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => setTimeout(r, 500))]);
        continue;
      }
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const map = this.map;
      if (!this.pending.size && this.ready && map && map.loaded() && map.areTilesLoaded() && !map.isMoving()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }
}

function initialLanguage() {
  const asked = new URLSearchParams(window.location.search).get("lang");
  if (LANGUAGES.includes(asked)) return asked;
  try {
    const kept = window.localStorage.getItem("twin.lang");
    if (LANGUAGES.includes(kept)) return kept;
  } catch {
    // no storage: the default
  }
  return document.documentElement.dataset.lang || "zh";
}

function fatal(html) {
  const box = document.createElement("div");
  box.className = "fatal";
  box.setAttribute("role", "alert");
  box.innerHTML = html;
  $("#map-wrap").appendChild(box);
}

async function main() {
  if (typeof window.maplibregl === "undefined") {
    fatal(
      `<h2>地图库缺失 · The map library is missing</h2><p>请运行 <code>sh twin_web/vendor.sh</code>（或 <code>make setup</code>）后刷新本页。</p>
       <p>Run <code>sh twin_web/vendor.sh</code> (or <code>make setup</code>), then reload this page.</p>`,
    );
    return;
  }
  try {
    const [i18n, config] = await Promise.all([I18n.load(STATIC, initialLanguage()), getJSON(url("api/viewer/"))]);
    const viewer = new Viewer(i18n, config);
    window.twinViewer = viewer;
    await viewer.start();
  } catch (err) {
    console.error(err);
    fatal(`<h2>无法加载 · Could not load</h2><p>${esc(err.message)}</p>`);
  }
}

main();
