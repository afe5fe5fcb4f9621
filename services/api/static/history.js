// History chart (uPlot, vendored): the mean as a line over a min–max band, one series at a
// time; the range buttons pick the span and the bucket step the API aggregates to.

import { getJSON, historyAvailable } from "./api.js";
import { el, num, setText } from "./format.js";

const RANGES = {
  day: { span: 86400, step: 60 },
  week: { span: 7 * 86400, step: 600 },
  month: { span: 30 * 86400, step: 3600 },
  year: { span: 365 * 86400, step: 86400 },
};

// Fields worth a chart; the rest of a device's numeric fields follow in the chooser.
const DEFAULTS = [
  { service: "teleinfo", field: "apparent_power_va", label: "Puissance soutirée" },
  { service: "vedirect", field: "soc_pct", label: "Charge batterie" },
  { service: "vedirect", field: "pv_power_w", label: "Puissance solaire" },
  { service: "inverter", field: "ac_power_w", label: "Puissance onduleur" },
];
// Counters, codes and the VE.Direct history registers (h1…h23) make poor charts.
const SKIP = /^(h\d+_|day_sequence)|_code$/;

const UNITS = [["_pct", "%"], ["_va", "VA"], ["_wh", "Wh"], ["_kwh", "kWh"], ["_w", "W"],
  ["_v", "V"], ["_a", "A"], ["_ah", "Ah"], ["_c", "°C"], ["_hz", "Hz"], ["_min", "min"],
  ["_s", "s"], ["_kva", "kVA"]];

function unitOf(field) {
  const hit = UNITS.filter(([s]) => field.endsWith(s)).sort((a, b) => b[0].length - a[0].length);
  return hit.length ? hit[0][1] : "";
}

let labels = {}; // service -> field -> words, from /api/fields
let range = "day";
let choices = []; // {service, device, field, label}
let chart = null;
let loading = 0; // sequence number: a slow answer must not overwrite a newer one
// The chart (and uPlot, 50 kB to run) waits until its box nears the screen: drawn at page
// load it blocked a phone's main thread for ~0.8 s (Lighthouse's total blocking time).
let near = !("IntersectionObserver" in window);
let library = null; // the promise of uPlot's script and stylesheet, loaded once
const box = () => document.getElementById("history-chart");
const select = () => document.getElementById("history-field");

/** Rebuild the field chooser from the devices (keeps the current choice when possible). */
export function updateChoices(devices) {
  const found = [];
  const seen = new Set();
  const add = (service, device, field, label) => {
    const key = `${service}/${device}/${field}`;
    if (seen.has(key)) return;
    seen.add(key);
    found.push({ service, device, field, label, key });
  };
  for (const def of DEFAULTS) {
    for (const d of devices) {
      if (d.service === def.service && d.state && typeof d.state[def.field] === "number") {
        add(d.service, d.device, def.field, `${def.label} (${d.device})`);
      }
    }
  }
  for (const d of devices) {
    if (!d.state || d.service === "relays" || d.service === "shedding") continue;
    for (const [field, v] of Object.entries(d.state).sort()) {
      if (typeof v === "number" && !SKIP.test(field)) {
        add(d.service, d.device, field, `${labels[d.service]?.[field] ?? field} (${d.device})`);
      }
    }
  }
  const sel = select();
  const same = found.length === choices.length &&
    found.every((c, i) => c.key === choices[i].key && c.label === choices[i].label);
  if (!sel || same) return false;
  const current = sel.value;
  choices = found;
  sel.replaceChildren(...found.map((c) => el("option", { value: c.key }, c.label)));
  if (found.some((c) => c.key === current)) sel.value = current;
  return current !== sel.value || !current;
}

// French dates on the time axis (uPlot's defaults are English, 12 h).
function timeTicks(_u, splits, _axis, _space, incr) {
  return splits.map((t) => {
    const d = new Date(t * 1000);
    if (incr >= 28 * 86400) return d.toLocaleDateString("fr-FR", { month: "short", year: "numeric" });
    const day = d.toLocaleDateString("fr-FR", { day: "numeric", month: "short" });
    if (incr >= 86400 || (d.getHours() === 0 && d.getMinutes() === 0)) return day;
    return d.toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
  });
}

function timeValue(_u, t) {
  if (typeof t !== "number") return "—";
  return new Date(t * 1000).toLocaleString("fr-FR", { day: "numeric", month: "short",
    hour: "2-digit", minute: "2-digit" });
}

// Tick spacings, a minute at least: the labels say HH:MM, so 30 s ticks read "10:41 10:41".
const TIME_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
  2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 91 * 86400, 182 * 86400, 365 * 86400];

// The time axis spans at least ten steps: a first minute alone labelled every tick "10:39".
function timeRange(minSpan) {
  return (_u, min, max) => {
    if (min === null || max === null) {
      const now = Date.now() / 1000;
      return [now - minSpan, now];
    }
    return [min, Math.max(max, min + minSpan)];
  };
}

function makeChart(container, data, unit, filled, step) {
  const width = Math.max(280, container.clientWidth || 600);
  const height = window.matchMedia("(max-width: 600px)").matches ? 220 : 300;
  const fmt = (_u, v) => num(v, unit, Math.abs(v ?? 0) < 10 ? 2 : 0);
  const styles = getComputedStyle(document.documentElement);
  const ink = styles.getPropertyValue("--muted").trim() || "#666";
  const accent = styles.getPropertyValue("--accent").trim() || "#1565c0";
  const axis = { stroke: ink, grid: { stroke: "rgba(127,127,127,0.15)" },
    ticks: { stroke: "rgba(127,127,127,0.3)" } };
  const opts = {
    width, height,
    series: [
      { label: "Date", value: timeValue },
      { label: "min", stroke: "rgba(21,101,192,0.35)", width: 1, value: fmt, points: { show: false } },
      // Dots only when the data is sparse: a lone minute between gaps would draw nothing.
      { label: "moyenne", stroke: accent, width: 2, value: fmt,
        points: { show: filled < 100, size: 5, fill: accent } },
      { label: "max", stroke: "rgba(21,101,192,0.35)", width: 1, value: fmt, points: { show: false } },
    ],
    bands: [{ series: [3, 1], fill: "rgba(21,101,192,0.15)" }],
    // All-empty data (a fresh install) still gets a sane axis instead of NaN.
    scales: { x: { time: true, range: timeRange(10 * step) }, y: { range: (_u, min, max) => (min === null || max === null
      ? [0, 1] : globalThis.uPlot.rangeNum(min, max, 0.1, true)) } },
    axes: [{ ...axis, values: timeTicks, incrs: TIME_STEPS }, { ...axis, size: 60, values: (_u, ticks) => ticks.map((t) => num(t, "", 1)) }],
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
  };
  return new globalThis.uPlot(opts, data, container);
}

/** Fetch one vendored file as a <script> or stylesheet <link>; resolves when loaded. */
function attach(node) {
  return new Promise((resolve) => {
    node.addEventListener("load", () => resolve(true));
    node.addEventListener("error", () => resolve(false));
    document.head.append(node);
  });
}

/** uPlot, on the first chart (true when it is there). */
function loadLibrary() {
  if (typeof globalThis.uPlot === "function") return Promise.resolve(true);
  library ??= Promise.all([
    attach(el("link", { rel: "stylesheet", href: "static/vendor/uPlot.min.css" })),
    attach(el("script", { src: "static/vendor/uPlot.iife.min.js" })),
  ]).then(() => typeof globalThis.uPlot === "function");
  return library;
}

/** The field labels, once (an old box without /api/fields keeps the raw names). */
export async function loadLabels() {
  try {
    const answer = await getJSON("fields");
    if (answer && typeof answer === "object") labels = answer;
  } catch {
    labels = {};
  }
}

const plural = (n, one, many) => `${n.toLocaleString("fr-FR")} ${n > 1 ? many : one}`;

export async function loadHistory() {
  const container = box();
  const status = document.getElementById("history-status");
  const choice = choices.find((c) => c.key === select()?.value) ?? choices[0];
  if (!container || !near) return; // drawn when it nears the screen (initHistory)
  if (!choice) {
    setText(status, "Aucune mesure disponible pour l'instant.");
    return;
  }
  if (!(await loadLibrary())) {
    setText(status, "Bibliothèque de graphiques absente (static/vendor/uPlot.iife.min.js).");
    return;
  }
  if (!(await historyAvailable())) {
    setText(status, "Pas encore d'historique : l'historien écrit sa première minute.");
    return;
  }
  const { span, step } = RANGES[range];
  const end = Math.ceil(Date.now() / 1000);
  const start = Math.floor((end - span) / step) * step;
  const seq = ++loading;
  setText(status, "Chargement…");
  let answer;
  try {
    answer = await getJSON("history", { service: choice.service, device: choice.device,
      field: choice.field, start, end, step });
  } catch (err) {
    if (seq === loading) setText(status, `Historique indisponible : ${err.message}`);
    return;
  }
  if (seq !== loading) return;
  const points = Array.isArray(answer?.points) ? answer.points.filter(Array.isArray) : [];
  const cols = [[], [], [], []];
  for (const p of points) {
    for (let i = 0; i < 4; i += 1) cols[i].push(typeof p[i] === "number" ? p[i] : null);
  }
  // A history younger than the range: the axis starts at its first point ("depuis HH:MM")
  // rather than showing a few points at the end of an empty day.
  const first = cols[2].findIndex((v) => v !== null);
  let since = "";
  if (first > 0) {
    for (const c of cols) c.splice(0, first);
    since = ` depuis ${new Date(cols[0][0] * 1000).toLocaleString("fr-FR", range === "day"
      ? { hour: "2-digit", minute: "2-digit" } : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" })}`;
  }
  const filled = cols[2].filter((v) => v !== null).length;
  chart?.destroy();
  chart = makeChart(container, cols, unitOf(choice.field), filled, step);
  container.dataset.points = String(filled);
  container.dataset.series = choice.key;
  container.dataset.since = since.trim();
  setText(status, filled ? `${plural(filled, "point", "points")}, pas de ${step >= 3600 ? `${step / 3600} h` : `${step / 60} min`}${since}`
    : "Pas encore de données sur cette période (l'historique est écrit chaque minute).");
}

export function initHistory() {
  for (const b of document.querySelectorAll("[data-range]")) {
    b.addEventListener("click", () => {
      range = b.dataset.range in RANGES ? b.dataset.range : "day";
      for (const o of document.querySelectorAll("[data-range]")) {
        o.setAttribute("aria-pressed", String(o === b));
      }
      loadHistory();
    });
  }
  select()?.addEventListener("change", () => loadHistory());
  // Follow the container's width (phone rotation, window resize) without reloading data.
  const container = box();
  if (container && !near) {
    new IntersectionObserver((entries, observer) => {
      if (!entries.some((e) => e.isIntersecting)) return;
      observer.disconnect();
      near = true;
      loadHistory();
    }, { rootMargin: "300px 0px" }).observe(container);
  }
  if (container && "ResizeObserver" in window) {
    // Resized on the next frame, and only when the width changed: resizing inside the
    // observer's callback would raise "ResizeObserver loop" errors.
    new ResizeObserver(() => requestAnimationFrame(() => {
      const width = container.clientWidth;
      if (chart && width && Math.abs(width - chart.width) > 1) {
        chart.setSize({ width, height: chart.height });
      }
    })).observe(container);
  }
}
