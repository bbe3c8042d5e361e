// The panels of the viewer: the incident and warning lists, the legend, and the details of what was
// picked (a station and its chart, a site, an incident and its downstream report, a warning and its
// response plan per jurisdiction, a downstream trace). Each function reads the viewer v and writes HTML.

import { drawSeriesChart } from "./chart.js";
import { $, esc, paint } from "./page.js";
import { COLOURS } from "./style.js";

export const CHART_WINDOWS_DAYS = [2, 7, 30];

// -- lists: incidents and warnings ------------------------------------------------------------------
export function renderLists(v) {
  if (!v.warnings) return;
  const incidents = [...v.incidents.features].sort((a, b) => Date.parse(b.properties.observed) - Date.parse(a.properties.observed));
  $("#incident-list").innerHTML = !v.may("incidents.read")
    ? `<li class="hint not-permitted">${esc(v.t("access.not_permitted"))}</li>`
    : incidents.length
      ? incidents
          .map((f) => {
            const p = f.properties;
            return `<li><button type="button" class="item" data-incident="${esc(f.id)}">
            <span class="chip incident"></span>
            <span class="what">${esc(v.t("incidents.item", { id: p.id, kind: v.i18n.term("incident_kind", p.kind) }))}</span>
            <span class="when">${esc(v.i18n.dateTime(p.observed))} · ${esc(v.i18n.term("incident_status", p.status))}</span></button></li>`;
          })
          .join("")
      : `<li class="hint">${esc(v.t("incidents.none"))}</li>`;
  const filter = $("#warning-filter").value;
  $("#warning-filter").disabled = !v.may("warnings.read");
  const t = v.timesMs[v.index];
  let list = [...v.warnings.features];
  if (filter === "active") {
    list = list.filter((f) => Date.parse(f.properties.start) <= t && (!f.properties.end || t < Date.parse(f.properties.end)));
  } else if (filter === "parameter") {
    list = list.filter((f) => f.properties.parameter === v.parameter);
  }
  list.sort((a, b) => Date.parse(b.properties.start) - Date.parse(a.properties.start) || b.properties.level - a.properties.level);
  $("#warning-list").innerHTML = !v.may("warnings.read")
    ? `<li class="hint not-permitted">${esc(v.t("access.not_permitted"))}</li>`
    : list.length
      ? list
          .map((f) => {
            const p = f.properties;
            const end = p.end ? v.i18n.dateTime(p.end) : v.t("warnings.ongoing");
            return `<li><button type="button" class="item" data-warning="${esc(f.id)}">
            <span class="chip" data-bg="${COLOURS.levels[p.level]}"></span>
            <span class="what">${esc(v.i18n.level(p.level))} · ${esc(v.stationName(p.station))} · ${esc(v.i18n.parameterName(v.parameterInfo(p.parameter)))}</span>
            <span class="when">${esc(v.i18n.dateTime(p.start))} – ${esc(end)}</span></button></li>`;
          })
          .join("")
      : `<li class="hint">${esc(v.t("warnings.none"))}</li>`;
  paint($("#warning-list"));
  for (const b of document.querySelectorAll("[data-incident]")) b.addEventListener("click", () => v.selectIncident(b.dataset.incident));
  for (const b of document.querySelectorAll("[data-warning]")) b.addEventListener("click", () => v.selectWarning(b.dataset.warning));
}

// what a station's warning is when the slice does not say it: not permitted by role, or outside the user's units
function warningHidden(v) {
  return v.may("warnings.read") ? v.t("access.outside_units") : v.t("access.not_permitted");
}

// -- legend ---------------------------------------------------------------------------------------
export function renderLegend(v) {
  const box = $("#legend");
  const p = v.parameterInfo();
  let rows;
  if (v.colourBy === "warning") {
    rows = [0, 1, 2, 3, 4].map((l) => [COLOURS.levels[l], v.i18n.level(l)]);
  } else {
    rows = [1, 2, 3, 4, 5, 6].map((c) => [COLOURS.classes[c], v.i18n.klass(c)]);
    rows.push([COLOURS.none, v.t("class.none")]);
  }
  let html = `<h3>${esc(v.colourBy === "warning" ? v.t("legend.levels") : v.t("legend.classes"))}</h3>
    <p class="param">${esc(v.i18n.parameterName(p))}</p><ul>`;
  html += rows.map(([c, label]) => `<li><span class="dot" data-bg="${c}"></span>${esc(label)}</li>`).join("");
  html += "</ul>";
  if (v.trace) {
    const now = v.plumeNow;
    const info = now?.segments
      ? v.t("legend.plume_now", { hours: v.i18n.number(now.hours, 3), max: v.i18n.quantity(now.max, "mg/L") })
      : v.t("legend.plume_none");
    html += `<h3>${esc(v.t("legend.plume"))}</h3><p class="param">${esc(info)}</p>`;
  } else {
    html += `<p class="param hint">${esc(v.t("legend.plume_hint"))}</p>`;
  }
  box.innerHTML = html;
  paint(box);
}

// -- the details panel --------------------------------------------------------------------------------
export function renderDetails(v) {
  const box = $("#details");
  const sel = v.selection;
  if (!sel) {
    box.innerHTML = `<p class="hint">${esc(v.t("details.empty"))}</p>`;
    return;
  }
  if (sel.kind === "station") renderStation(v, box);
  else if (sel.kind === "incident") renderIncident(v, box);
  else if (sel.kind === "warning") renderWarning(v, box);
  else if (sel.kind === "trace") renderTrace(v, box, v.t("trace.title"));
  else if (sel.kind === "site") renderSite(v, box);
  paint(box);
}

function renderStation(v, box) {
  const id = v.selection.id;
  const f = v.siteById.get(id);
  const p = f?.properties ?? { id };
  const now = v.slice?.stations.find((s) => s.id === id);
  const par = v.parameterInfo();
  const series = v.series?.station.id === id ? v.series : null;
  const windows = CHART_WINDOWS_DAYS.map(
    (d) => `<option value="${d}" ${d === v.chartDays ? "selected" : ""}>${esc(v.t("chart.window_days", { days: d }))}</option>`,
  ).join("");
  const scales = ["auto", "linear", "log"]
    .map((k) => `<option value="${k}" ${k === v.chartScale ? "selected" : ""}>${esc(v.t(`chart.scale_${k}`))}</option>`)
    .join("");
  const also = (v.alsoHere ?? [])
    .filter((x) => x.layer.id === "incidents")
    .map((x) => `<button type="button" class="link" data-incident="${esc(x.properties.id)}">${esc(v.t("incidents.item", { id: x.properties.id, kind: v.i18n.term("incident_kind", x.properties.kind) }))}</button>`)
    .join(" ");
  box.innerHTML = `
    <h2 class="station-title">${esc(v.i18n.placeName(p))} <small>${esc(id)}</small></h2>
    <p class="meta">${esc(p.river ?? "")} · ${esc(v.i18n.term("water_body", p.water_body))} · ${esc(v.t("station.target", { klass: v.i18n.klass(p.target_class) }))}</p>
    <dl class="now">
      <dt>${esc(v.t("station.at"))}</dt><dd>${esc(v.i18n.dateTimeZone(v.times[v.index]))}</dd>
      <dt>${esc(v.i18n.parameterName(par))}</dt><dd>${now?.value === null || now?.value === undefined ? esc(v.t("station.no_reading")) : esc(v.i18n.quantity(now.value, par.unit))}</dd>
      <dt>${esc(v.t("station.class"))}</dt><dd><span class="dot" data-bg="${now?.class ? COLOURS.classes[now.class] : COLOURS.none}"></span>${esc(v.i18n.klass(now?.class))}</dd>
      <dt>${esc(v.t("station.warning"))}</dt><dd>${
        now && !("warning_level" in now)
          ? `<span class="dot" data-bg="${COLOURS.none}"></span><span class="not-permitted">${esc(warningHidden(v))}</span>`
          : `<span class="dot" data-bg="${COLOURS.levels[now?.warning_level || 0]}"></span>${esc(v.i18n.level(now?.warning_level || 0))}`
      }</dd>
    </dl>
    <div class="chart-head"><h3>${esc(v.t("chart.title"))}</h3>
      <span><select id="chart-scale" aria-label="${esc(v.t("chart.scale"))}">${scales}</select>
      <select id="chart-window" aria-label="${esc(v.t("chart.window"))}">${windows}</select></span></div>
    <div id="chart" class="chart"></div>
    <p class="caption">${esc(v.t("chart.caption", { source: series?.class_source ?? v.config.class_source }))}${series && series.flag.includes("S") ? ` ${esc(v.t("chart.simulated"))}` : ""}</p>
    <h3>${esc(v.t("chart.periods"))}</h3>
    <ul class="periods">${
      series && !series.warnings
        ? `<li class="hint not-permitted">${esc(warningHidden(v))}</li>`
        : series?.warnings.length
        ? series.warnings
            .map(
              (w) => `<li><button type="button" class="link" data-warning="${esc(w.id)}"><span class="dot" data-bg="${COLOURS.levels[w.level]}"></span>${esc(v.i18n.level(w.level))}</button>
            ${esc(v.i18n.dateTime(w.start))} – ${esc(w.end ? v.i18n.dateTime(w.end) : v.t("warnings.ongoing"))}</li>`,
            )
            .join("")
        : `<li class="hint">${esc(v.t("chart.no_periods"))}</li>`
    }</ul>
    ${also ? `<p class="also">${esc(v.t("details.also_here"))} ${also}</p>` : ""}`;
  $("#chart-window", box).addEventListener("change", (ev) => {
    v.chartDays = Number(ev.target.value);
    v.loadSeries(true);
  });
  $("#chart-scale", box).addEventListener("change", (ev) => {
    v.chartScale = ev.target.value;
    renderDetails(v);
  });
  for (const b of box.querySelectorAll("[data-incident]")) b.addEventListener("click", () => v.selectIncident(b.dataset.incident));
  for (const b of box.querySelectorAll("[data-warning]")) b.addEventListener("click", () => v.selectWarning(b.dataset.warning));
  if (series) {
    const width = Math.max(280, Math.min(1200, $("#chart", box).clientWidth || 340)); // drawn at 1:1
    drawSeriesChart($("#chart", box), series, {
      window: series.window,
      cursor: v.timesMs[v.index] ?? null,
      i18n: v.i18n,
      colours: COLOURS,
      width,
      height: 220,
      scale: v.chartScale,
    });
  } else {
    $("#chart", box).innerHTML = `<p class="hint">${esc(v.t("status.loading"))}</p>`;
  }
}

function renderSite(v, box) {
  const f = v.siteById.get(v.selection.id);
  const p = f?.properties ?? {};
  box.innerHTML = `<h2>${esc(v.i18n.placeName(p))} <small>${esc(p.id)}</small></h2>
    <dl class="props">
      <dt>${esc(v.t("site.kind"))}</dt><dd>${esc(v.i18n.term("site_kind", p.kind))}</dd>
      <dt>${esc(v.t("site.river"))}</dt><dd>${esc(p.river ?? "—")}</dd>
      <dt>${esc(v.t("site.target"))}</dt><dd>${esc(v.i18n.klass(p.target_class))}</dd>
      <dt>${esc(v.t("site.area"))}</dt><dd>${esc(v.i18n.quantity(p.upstream_area_km2, "km2"))}</dd>
      <dt>${esc(v.t("site.note"))}</dt><dd>${esc(p.note ?? "")}</dd>
    </dl>`;
}

function unitList(v, jurisdictions) {
  return Object.entries(jurisdictions ?? {})
    .map(([level, codes]) => {
      const names = (Array.isArray(codes) ? codes : [codes]).map((c) => v.unitNames.get(`${level}-${c}`) ?? c);
      return v.t("incident.unit", { level: v.i18n.term("jurisdiction_level", level), names: names.join(v.t("sep.list")) });
    })
    .join(v.t("sep.groups"));
}

function renderIncident(v, box) {
  const f = v.incidents.features.find((x) => String(x.id) === v.selection.id);
  if (!f) {
    box.innerHTML = "";
    return;
  }
  const p = f.properties;
  const downstream = (p.downstream_stations ?? [])
    .map((s) => v.t("incident.downstream_site", { name: v.stationName(s.id), distance: v.i18n.quantity(s.distance_km, "km") }))
    .join(v.t("sep.list"));
  const report = v.trace?.origin.kind === "incident" && v.trace.origin.id === v.selection.id;
  box.innerHTML = `<h2>${esc(v.t("incidents.item", { id: p.id, kind: v.i18n.term("incident_kind", p.kind) }))}</h2>
    <dl class="props">
      <dt>${esc(v.t("incident.status"))}</dt><dd>${esc(v.i18n.term("incident_status", p.status))}</dd>
      <dt>${esc(v.t("incident.observed"))}</dt><dd>${esc(v.i18n.dateTimeZone(p.observed))}</dd>
      <dt>${esc(v.t("incident.reported"))}</dt><dd>${esc(v.i18n.dateTimeZone(p.reported))}</dd>
      <dt>${esc(v.t("incident.reporter"))}</dt><dd>${esc(p.reporter ?? "—")}</dd>
      <dt>${esc(v.t("incident.case"))}</dt><dd>${esc(p.case_id ?? "—")}</dd>
      <dt>${esc(v.t("incident.where"))}</dt><dd>${esc(v.i18n.number(p.lon, 7))}, ${esc(v.i18n.number(p.lat, 7))} (${esc(p.coord_system)})</dd>
      <dt>${esc(v.t("incident.units"))}</dt><dd>${esc(unitList(v, p.jurisdictions))}</dd>
      <dt>${esc(v.t("incident.downstream"))}</dt><dd>${esc(downstream || "—")}</dd>
      <dt>${esc(v.t("incident.description"))}</dt><dd>${esc(p.description ?? "")}</dd>
    </dl>
    <div id="incident-report">${report ? "" : `<p class="hint">${esc(v.t("status.loading"))}</p>`}</div>`;
  if (report) renderTrace(v, $("#incident-report", box), v.t("incident.report"));
}

function renderTrace(v, box, title) {
  const tr = v.trace;
  if (!tr) {
    box.innerHTML = "";
    return;
  }
  const r = tr.report;
  const top = v.config.levels[0];
  const chain = (level) =>
    r.entries
      .filter((e) => e.kind === "jurisdiction" && e.level === level)
      .sort((a, b) => a.distance_km - b.distance_km)
      .map((e) => e.name)
      .join(" → ");
  const par = v.parameterInfo(tr.release.parameter);
  const since = (iso) => (Date.parse(iso) - Date.parse(tr.release.at)) / 3600e3;
  const rows = r.entries
    .map((e) => {
      const site = ["station", "intake", "mine", "dump", "outfall"].includes(e.kind);
      const name = site ? v.stationName(e.id) : e.name;
      const kind = e.level
        ? `${v.i18n.term("entry_kind", e.kind)} · ${v.i18n.term("jurisdiction_level", e.level)}`
        : v.i18n.term("entry_kind", e.kind);
      const note = e.note ? ` · ${noteText(v, e.note)}` : "";
      const arrival = e.likely
        ? `${esc(v.i18n.day(e.likely))} ${esc(v.i18n.clock(e.earliest))} / ${esc(v.i18n.clock(e.likely))}
           <br><small>+${esc(v.i18n.number(since(e.earliest), 3))} / +${esc(v.i18n.hours(since(e.likely)))}</small>`
        : e.earliest
          ? `${esc(v.i18n.day(e.earliest))} ${esc(v.i18n.clock(e.earliest))}`
          : "—";
      const peak =
        e.peak_mg_l === null
          ? "—"
          : `${esc(v.i18n.number(e.peak_mg_l, 3))}${e.class ? `<br><span class="dot" data-bg="${COLOURS.classes[e.class]}"></span><small>${esc(v.i18n.klass(e.class))}</small>` : ""}`;
      return `<tr class="${esc(e.kind)}">
        <td>${esc(name)}<br><small>${esc(kind)}${esc(note)}</small></td>
        <td class="num">${esc(v.i18n.number(e.distance_km, 3))}</td>
        <td>${arrival}</td>
        <td class="num">${peak}</td></tr>`;
    })
    .join("");
  box.innerHTML = `<h2 class="trace-title">${esc(title)}</h2>
    <p class="meta">${esc(v.t("trace.release", {
      lon: tr.release.lon,
      lat: tr.release.lat,
      time: v.i18n.dateTimeZone(tr.release.at),
      mass: v.i18n.quantity(Number(tr.release.mass_kg), "kg"),
      parameter: v.i18n.parameterName(par),
    }))}</p>
    <p class="meta">${esc(v.t("trace.snapped", { reach: r.release.reach_id }))}</p>
    <p class="crossing"><strong>${esc(v.t("trace.crossed"))}</strong> <span class="chain" id="trace-chain">${esc(chain(top) || "—")}</span></p>
    ${v.config.levels[1] ? `<p class="crossing minor">${esc(v.i18n.term("jurisdiction_level", v.config.levels[1]))}: ${esc(chain(v.config.levels[1]) || "—")}</p>` : ""}
    <div class="table-wrap"><table class="entries">
      <thead><tr><th>${esc(v.t("trace.name"))}</th>
      <th>${esc(v.t("trace.distance", { unit: v.i18n.unit("km") }))}</th>
      <th>${esc(v.t("trace.arrival"))}</th>
      <th>${esc(v.t("trace.peak", { unit: v.i18n.unit("mg/L") }))}</th></tr></thead>
      <tbody>${rows}</tbody></table></div>
    <p class="caption">${esc(v.t("trace.caption", { zone: v.i18n.zone() }))} ${esc(tr.plume.model.velocity)}; ${esc(tr.plume.model.dispersion)}.</p>`;
}

function noteText(v, note) {
  if (/^the release is here/.test(note)) return v.t("trace.note_here");
  const m = /^entered at section (\d+)/.exec(note);
  if (m) return v.t("trace.note_entered", { section: m[1] });
  return note;
}

function renderWarning(v, box) {
  const sel = v.selection;
  const feature = sel.feature;
  if (!feature) {
    box.innerHTML = `<p class="hint">${esc(v.t("status.loading"))}</p>`;
    return;
  }
  const p = feature.properties;
  const par = v.parameterInfo(p.parameter);
  const plans = (p.plan ?? [])
    .map((u) => {
      const sites = (u.sites ?? [])
        .map(
          (s) =>
            `<li>${esc(
              v.t("plan.site", {
                kind: v.i18n.term("site_kind", s.kind),
                name: v.stationName(s.id),
                arrival: v.t("plan.arrival", { earliest: v.i18n.hours(s.earliest_h), likely: v.i18n.hours(s.likely_h) }),
              }),
            )}</li>`,
        )
        .join("");
      const sections = (u.sections ?? [])
        .map(
          (s) =>
            `<li>${esc(
              v.t("plan.section", {
                name: s.name ?? s.section_id ?? "",
                arrival: s.earliest_h === undefined ? "" : v.t("plan.arrival", { earliest: v.i18n.hours(s.earliest_h), likely: v.i18n.hours(s.likely_h) }),
              }),
            )}</li>`,
        )
        .join("");
      return `<section class="plan">
        <h4><span class="dot" data-bg="${COLOURS.levels[levelNumber(v, u.warning_level)]}"></span>${esc(u.name)} <small>${esc(v.i18n.term("jurisdiction_level", u.level))} ${esc(u.code)}</small></h4>
        <p>${esc(v.t("plan.level", { level: v.i18n.level(levelNumber(v, u.warning_level)) }))}</p>
        <p>${esc(v.t("plan.times", { earliest: v.i18n.dateTimeZone(u.earliest), likely: v.i18n.dateTime(u.likely) }))}</p>
        <p class="action">${esc(actionText(v, u.action, u.warning_level))}</p>
        ${sites || sections ? `<ul>${sections}${sites}</ul>` : ""}
      </section>`;
    })
    .join("");
  box.innerHTML = `<h2 class="warning-title"><span class="chip" data-bg="${COLOURS.levels[p.level]}"></span>${esc(v.i18n.level(p.level))} · ${esc(v.stationName(p.station))}</h2>
    <dl class="props">
      <dt>${esc(v.t("warning.parameter"))}</dt><dd>${esc(v.i18n.parameterName(par))}</dd>
      <dt>${esc(v.t("warning.start"))}</dt><dd>${esc(v.i18n.dateTimeZone(p.start))}</dd>
      <dt>${esc(v.t("warning.end"))}</dt><dd>${p.end ? esc(v.i18n.dateTimeZone(p.end)) : esc(v.t("warnings.ongoing"))}${p.end_reason ? ` (${esc(v.i18n.term("end_reason", p.end_reason))})` : ""}</dd>
      <dt>${esc(v.t("warning.peak"))}</dt><dd>${esc(v.i18n.quantity(p.peak_value, par.unit))}${p.peak_multiple !== null && p.peak_multiple !== undefined ? ` · ${esc(v.t("warning.multiple", { multiple: v.i18n.number(p.peak_multiple, 3) }))}` : ""}</dd>
      <dt>${esc(v.t("warning.rule"))}</dt><dd>${esc(v.i18n.term("rule", p.rule))}</dd>
      ${p.escalation ? `<dt>${esc(v.t("warning.escalation"))}</dt><dd>${esc(p.escalation)}</dd>` : ""}
    </dl>
    <h3>${esc(v.t("plan.title"))}</h3>
    ${plans || `<p class="hint">${esc(v.t("plan.none"))}</p>`}`;
}

function levelNumber(v, name) {
  return { blue: 1, yellow: 2, orange: 3, red: 4 }[name] ?? 0;
}

// the default policy's action texts are translated; any other policy's are shown as written
function actionText(v, text, level) {
  const known = v.i18n.strings.en.actions?.[level];
  if (known && text && known.replace(/\s+/g, " ").trim() === text.replace(/\s+/g, " ").trim()) return v.t(`actions.${level}`);
  return text ?? "";
}
