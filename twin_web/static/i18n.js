// Languages of the viewer: the strings of static/i18n/<lang>.json, and dates, numbers and units in each.
// Chinese is the default. Every time is shown in Beijing time (UTC+8) with its zone named.

export const LANGUAGES = ["zh", "en"];
const BEIJING_OFFSET_MS = 8 * 3600 * 1000;

export class I18n {
  constructor(strings, lang) {
    this.strings = strings; // {zh: {...}, en: {...}}
    this.lang = LANGUAGES.includes(lang) ? lang : "zh";
  }

  static async load(base, lang) {
    const entries = await Promise.all(
      LANGUAGES.map(async (l) => {
        const resp = await fetch(`${base}i18n/${l}.json`);
        if (!resp.ok) throw new Error(`i18n/${l}.json: HTTP ${resp.status}`);
        return [l, await resp.json()];
      }),
    );
    return new I18n(Object.fromEntries(entries), lang);
  }

  // The string of a dotted key ("layers.rivers"), with {name} placeholders filled; the key itself if missing.
  t(key, vars = {}) {
    const find = (lang) => key.split(".").reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), this.strings[lang]);
    let s = find(this.lang);
    if (typeof s !== "string") s = find("en");
    if (typeof s !== "string") return key;
    return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  }

  has(key) {
    const v = key.split(".").reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), this.strings[this.lang]);
    return typeof v === "string";
  }

  // -- dates: Beijing time ---------------------------------------------------------------------------
  _parts(iso) {
    const ms = typeof iso === "number" ? iso : Date.parse(iso);
    if (!Number.isFinite(ms)) return null;
    const d = new Date(ms + BEIJING_OFFSET_MS); // read with getUTC*: the wall clock in Beijing
    return { y: d.getUTCFullYear(), m: d.getUTCMonth() + 1, d: d.getUTCDate(), H: d.getUTCHours(), M: d.getUTCMinutes() };
  }

  // "2026年9月3日 22:00" / "3 Sep 2026, 22:00" (Beijing time; the zone is named by zone())
  dateTime(iso) {
    const p = this._parts(iso);
    if (!p) return "—";
    const hm = `${String(p.H).padStart(2, "0")}:${String(p.M).padStart(2, "0")}`;
    if (this.lang === "zh") return `${p.y}年${p.m}月${p.d}日 ${hm}`;
    return `${p.d} ${this.monthName(p.m)} ${p.y}, ${hm}`;
  }

  // A date and time with its zone: "2026年9月3日 22:00 北京时间 (UTC+8)"
  dateTimeZone(iso) {
    return `${this.dateTime(iso)} ${this.zone()}`;
  }

  // "9月3日" / "3 Sep"
  day(iso) {
    const p = this._parts(iso);
    if (!p) return "";
    if (this.lang === "zh") return `${p.m}月${p.d}日`;
    return `${p.d} ${this.monthName(p.m)}`;
  }

  // "22:00"
  clock(iso) {
    const p = this._parts(iso);
    return p ? `${String(p.H).padStart(2, "0")}:${String(p.M).padStart(2, "0")}` : "";
  }

  monthName(m) {
    return this.t("time.months").split(",")[m - 1];
  }

  zone() {
    return this.t("time.zone");
  }

  // milliseconds of the Beijing midnight at or before a time
  static beijingMidnight(ms) {
    const day = 24 * 3600 * 1000;
    return Math.floor((ms + BEIJING_OFFSET_MS) / day) * day - BEIJING_OFFSET_MS;
  }

  // -- numbers and units -------------------------------------------------------------------------------
  number(v, digits = 3) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "—";
    if (v === 0) return "0";
    const a = Math.abs(v);
    let s;
    if (a >= 10 ** digits) s = v.toFixed(0);
    else if (a < 1e-4) s = v.toExponential(digits - 1);
    else s = String(Number(v.toPrecision(digits)));
    return s;
  }

  // a unit in this language ("mg/L" → "毫克/升"); unknown units as they are
  unit(u) {
    const key = `units.${u}`;
    return this.has(key) ? this.t(key) : u;
  }

  // a value with its unit: "0.9 毫克/升"; a dimensionless one without
  quantity(v, u, digits = 3) {
    const unit = this.unit(u);
    return unit ? `${this.number(v, digits)} ${unit}` : this.number(v, digits);
  }

  hours(h) {
    return `${this.number(h, 3)} ${this.unit("h")}`;
  }

  // GB 3838 class: "III类" / "Class III"; 劣V: "劣V类" / "Worse than V (劣V)"
  klass(c) {
    if (!c) return this.t("class.none");
    return this.t(`class.c${c}`);
  }

  // the short form, for tight places (a chart's band labels): "III类" / "III"
  klassShort(c) {
    return c ? this.t(`class_short.c${c}`) : "";
  }

  level(l) {
    return this.t(`level.l${l || 0}`);
  }

  // a parameter's name from the viewer's set-up entry
  parameterName(p) {
    if (!p) return "";
    const name = this.lang === "zh" ? p.name_zh : p.long_name;
    if (!name || name.toLowerCase() === p.id.toLowerCase()) return p.id;
    return this.lang === "zh" ? `${name}（${p.id}）` : `${name} (${p.id})`;
  }

  // a place's name: the Chinese name where the twin has one
  placeName(props) {
    if (!props) return "";
    if (this.lang === "zh" && props.name_zh) return props.name_zh;
    return props.name ?? props.id ?? "";
  }

  // something from a fixed vocabulary (incident kinds, site kinds, rules...): its translation or itself
  term(group, value) {
    const key = `${group}.${value}`;
    return this.has(key) ? this.t(key) : String(value ?? "");
  }
}
