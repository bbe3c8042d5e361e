// A station's series as an SVG chart: the readings over the GB 3838 class bands, the warning periods
// behind them, and the time slider's time as a line. Drawn by hand (no chart library to vendor).

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, parent = null) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

// about n round steps covering [lo, hi]
function ticks(lo, hi, n = 5) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => span / s <= n) ?? 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

// The vertical range to show: the readings, and the class limits near them (so a band's edge is visible).
function linearRange(values, limits) {
  let lo = values.length ? Math.min(...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  if (limits.length) {
    const lowLimit = Math.min(...limits);
    hi = Math.max(hi, lowLimit * 1.25);
    if (lo >= lowLimit) lo = Math.min(lo, lowLimit * 0.8);
  }
  if (lo >= 0 && lo < hi * 0.6) lo = 0; // concentrations from zero
  const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
  return [lo === 0 ? 0 : lo - pad, hi + pad];
}

// On a log scale: every reading, and every class limit within a decade of them.
function logRange(values, limits) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  for (const l of limits) {
    if (l > 0 && l < hi * 10) hi = Math.max(hi, l);
    if (l > 0 && l > lo / 10) lo = Math.min(lo, l);
  }
  return [lo / 1.6, hi * 1.6];
}

// 1, 2, 5 × powers of ten within [lo, hi]; just the powers when there are many
function logTicks(lo, hi) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const f of [1, 2, 5]) {
      const v = f * 10 ** e;
      if (v >= lo && v <= hi) out.push(Number(v.toPrecision(3)));
    }
  }
  return out.length > 6 ? out.filter((v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9) : out;
}

// "log" when the readings are all positive and span more than two decades, else "linear"
export function autoScale(values) {
  const finite = values.filter((v) => v !== null && Number.isFinite(v));
  if (!finite.length || Math.min(...finite) <= 0) return "linear";
  return Math.max(...finite) / Math.min(...finite) > 100 ? "log" : "linear";
}

/**
 * Draw a series chart into `container` (emptied first).
 *
 * series: the answer of /api/slices/stations/<id>; window: {start, end} in ms; cursor: ms or null;
 * i18n: an I18n; colours: {classes: {1..6: css}, levels: {1..4: css}}; scale: "linear", "log" or "auto"
 * (log when the readings span more than two decades). Returns the SVG, its data-scale saying which.
 */
export function drawSeriesChart(container, series, { window, cursor, i18n, colours, width = 340, height = 220, scale = "auto" }) {
  container.replaceChildren();
  const m = { left: 46, right: 44, top: 14, bottom: 34 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    class: "series-chart",
    role: "img",
    "aria-label": i18n.t("chart.aria", { station: series.station.name, parameter: series.parameter }),
  });
  svg.dataset.scale = "linear";
  const times = series.time.map((t) => Date.parse(t));
  const values = series.value;
  const [t0, t1] = [window.start, window.end];
  const inWindow = values.filter((v, i) => times[i] >= t0 && times[i] <= t1 && v !== null && Number.isFinite(v));
  const limits = series.class_bands.flatMap((b) => [b.lower, b.upper]).filter((v) => v !== null && Number.isFinite(v));
  const log = (scale === "auto" ? autoScale(inWindow) : scale) === "log" && inWindow.length > 0 && Math.min(...inWindow) > 0;
  const [v0, v1] = log ? logRange(inWindow, limits) : linearRange(inWindow, limits);
  const f = log ? Math.log10 : (v) => v;
  svg.dataset.scale = log ? "log" : "linear";
  const x = (t) => m.left + ((t - t0) / (t1 - t0)) * w;
  const y = (v) => m.top + h - ((f(Math.min(Math.max(v, v0), v1)) - f(v0)) / (f(v1) - f(v0))) * h;
  const clipId = `clip-${Math.random().toString(36).slice(2)}`;
  const defs = el("defs", {}, svg);
  el("rect", { x: m.left, y: m.top, width: w, height: h }, el("clipPath", { id: clipId }, defs));
  const plot = el("g", { "clip-path": `url(#${clipId})` }, svg);

  // class bands
  const bandLayer = el("g", { class: "bands" }, plot);
  const labels = el("g", { class: "band-labels" }, svg);
  for (const b of series.class_bands) {
    const lo = b.lower === null ? v0 : Math.max(b.lower, v0);
    const hi = b.upper === null ? v1 : Math.min(b.upper, v1);
    if (!(hi > lo)) continue;
    el(
      "rect",
      { x: m.left, y: y(hi), width: w, height: y(lo) - y(hi), fill: colours.classes[b.class], "fill-opacity": 0.16, "data-class": b.class },
      bandLayer,
    );
    if (b.upper !== null && b.upper > v0 && b.upper < v1) {
      el("line", { x1: m.left, x2: m.left + w, y1: y(b.upper), y2: y(b.upper), class: "limit" }, bandLayer);
    }
    if (y(lo) - y(hi) >= 9) {
      const label = el("text", { x: m.left + w + 4, y: (y(hi) + y(lo)) / 2 + 4, class: "band-label", fill: colours.classes[b.class] }, labels);
      label.textContent = i18n.klassShort(b.class);
    }
  }

  // warning periods
  const warnLayer = el("g", { class: "warnings" }, plot);
  for (const wp of series.warnings ?? []) {  // absent: the user may not see this station's warnings
    const s = Date.parse(wp.start);
    const e = wp.end ? Date.parse(wp.end) : t1;
    if (e < t0 || s > t1) continue;
    const r = el(
      "rect",
      { x: x(s), y: m.top, width: Math.max(2, x(e) - x(s)), height: h, fill: colours.levels[wp.level], "fill-opacity": 0.22, class: "warning-period", "data-level": wp.level },
      warnLayer,
    );
    el("title", {}, r).textContent = `${i18n.level(wp.level)} ${i18n.dateTime(wp.start)} – ${wp.end ? i18n.dateTime(wp.end) : "…"}`;
    el("rect", { x: x(s), y: m.top, width: Math.max(2, x(e) - x(s)), height: 5, fill: colours.levels[wp.level] }, warnLayer);
  }

  // the readings: a line broken where readings are missing for more than twice the usual step
  const shown = times
    .map((t, i) => [t, values[i], series.class[i]])
    .filter(([t, v]) => t >= t0 - 864e5 && t <= t1 + 864e5 && v !== null && (!log || v > 0));
  const steps = shown.slice(1).map(([t], i) => t - shown[i][0]).sort((a, b) => a - b);
  const usual = steps.length ? steps[Math.floor(steps.length / 2)] : Infinity;
  let d = "";
  shown.forEach(([t, v], i) => {
    const gap = i === 0 || t - shown[i - 1][0] > 2.5 * usual;
    d += `${gap ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
  });
  el("path", { d, class: "series" }, plot);
  if (shown.length <= 400) {
    for (const [t, v, c] of shown) {
      el("circle", { cx: x(t), cy: y(v), r: 2.2, fill: c ? colours.classes[c] : "#888", class: "reading" }, plot);
    }
  }

  // axes
  const axis = el("g", { class: "axis" }, svg);
  el("rect", { x: m.left, y: m.top, width: w, height: h, class: "frame" }, axis);
  for (const v of log ? logTicks(v0, v1) : ticks(v0, v1, 4)) {
    if (v < v0 || v > v1) continue;
    el("line", { x1: m.left - 4, x2: m.left, y1: y(v), y2: y(v) }, axis);
    const tx = el("text", { x: m.left - 6, y: y(v) + 3.5, "text-anchor": "end" }, axis);
    tx.textContent = i18n.number(v, 3);
  }
  const unit = el("text", { x: 4, y: m.top - 4, class: "unit" }, axis);
  unit.textContent = `${i18n.unit(series.units.value)}${log ? ` · ${i18n.t("chart.log")}` : ""}`;
  const day = 24 * 3600 * 1000;
  const spanDays = (t1 - t0) / day;
  const every = spanDays <= 3 ? 1 : spanDays <= 10 ? 2 : spanDays <= 40 ? 7 : 30;
  let k = 0;
  for (let t = i18n.constructor.beijingMidnight(t0) + day; t < t1; t += day, k++) {
    if (k % every) continue;
    el("line", { x1: x(t), x2: x(t), y1: m.top + h, y2: m.top + h + 4 }, axis);
    el("line", { x1: x(t), x2: x(t), y1: m.top, y2: m.top + h, class: "grid" }, axis);
    const tx = el("text", { x: x(t), y: m.top + h + 15, "text-anchor": "middle" }, axis);
    tx.textContent = i18n.day(t);
  }
  const zone = el("text", { x: m.left + w, y: height - 3, "text-anchor": "end", class: "unit" }, axis);
  zone.textContent = i18n.zone();

  // the slider's time
  if (cursor !== null && cursor >= t0 && cursor <= t1) {
    el("line", { x1: x(cursor), x2: x(cursor), y1: m.top, y2: m.top + h, class: "cursor" }, svg);
  }

  // the reading under the pointer
  const hover = el("g", { class: "hover", visibility: "hidden" }, svg);
  const dot = el("circle", { r: 4 }, hover);
  const box = el("rect", { rx: 3, height: 32 }, hover);
  const line1 = el("text", {}, hover);
  const line2 = el("text", {}, hover);
  svg.addEventListener("pointermove", (ev) => {
    const rect = svg.getBoundingClientRect();
    const px = ((ev.clientX - rect.left) / rect.width) * width;
    const t = t0 + ((px - m.left) / w) * (t1 - t0);
    let best = null;
    for (const p of shown) if (best === null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
    if (!best || px < m.left || px > m.left + w) {
      hover.setAttribute("visibility", "hidden");
      return;
    }
    const [bt, bv, bc] = best;
    dot.setAttribute("cx", x(bt));
    dot.setAttribute("cy", y(bv));
    line1.textContent = i18n.dateTime(bt);
    line2.textContent = `${i18n.quantity(bv, series.units.value)} · ${i18n.klass(bc)}`;
    const bw = Math.max(line1.getComputedTextLength?.() || 120, line2.getComputedTextLength?.() || 120) + 10;
    const bx = Math.min(Math.max(x(bt) - bw / 2, 2), width - bw - 2);
    box.setAttribute("x", bx);
    box.setAttribute("y", 2);
    box.setAttribute("width", bw);
    line1.setAttribute("x", bx + 5);
    line1.setAttribute("y", 15);
    line2.setAttribute("x", bx + 5);
    line2.setAttribute("y", 29);
    hover.setAttribute("visibility", "visible");
  });
  svg.addEventListener("pointerleave", () => hover.setAttribute("visibility", "hidden"));
  container.appendChild(svg);
  return svg;
}
