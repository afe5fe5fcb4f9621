// Hourly bars of today and yesterday (import, export, production, self-consumption) from
// /api/energy/hourly, as inline SVG with a fixed viewBox (no layout shift, no dependency),
// and today so far against yesterday to the same hour.

import { getJSON, historyAvailable } from "./api.js";
import { el, isNum, kwh, localDay, setText } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const SERIES = [
  { key: "import_wh", label: "Soutirage" },
  { key: "export_wh", label: "Injection" },
  { key: "production_wh", label: "Production" },
  { key: "self_consumption_wh", label: "Autoconsommation" },
];
const W = 480;
const H = 160;
const AXIS = 16; // room under the bars for the hours

const RETRY_MS = 10_000;
let retry = null; // the pending early retry while today has no data yet
let shown = "today";
const days = { today: null, yesterday: null }; // the API's answers

function svgEl(tag, attrs, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

// Hours are the box's local hours (the answer's timezone), whatever the browser's zone.
function hourOf(answer, start) {
  try {
    // formatToParts: "fr-FR" writes a lone hour as "01 h"; only the number is wanted.
    const parts = new Intl.DateTimeFormat("fr-FR", { hour: "2-digit", hourCycle: "h23",
      timeZone: answer?.timezone || undefined }).formatToParts(new Date(start * 1000));
    return parts.find((p) => p.type === "hour")?.value ?? "?";
  } catch {
    return String(new Date(start * 1000).getHours()).padStart(2, "0");
  }
}

function draw(answer) {
  const box = document.getElementById("hourly-chart");
  if (!box) return;
  const hours = Array.isArray(answer?.hours) ? answer.hours : [];
  const max = Math.max(1, ...hours.flatMap((h) => SERIES.map((s) => (isNum(h[s.key]) ? h[s.key] : 0))));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "hourly-svg", role: "img",
    "aria-label": "Énergie heure par heure" });
  const slot = W / Math.max(24, hours.length);
  const bar = (slot - 2) / SERIES.length;
  hours.forEach((h, i) => {
    SERIES.forEach((s, j) => {
      const v = h[s.key];
      if (!isNum(v) || v <= 0) return;
      const height = ((H - AXIS) * v) / max;
      const rect = svgEl("rect", { x: i * slot + 1 + j * bar, y: H - AXIS - height,
        width: Math.max(1, bar - 0.5), height, class: `hb hb-${j}` });
      rect.append(svgEl("title", {}, `${hourOf(answer, h.start)} h · ${s.label} ${kwh(v)}`));
      svg.append(rect);
    });
    if (i % 3 === 0) {
      // From the hour's left edge: centred, the first label ran off the picture.
      svg.append(svgEl("text", { x: i * slot + 1, y: H - 3, class: "hb-axis",
        "text-anchor": "start" }, `${Number(hourOf(answer, h.start))} h`));
    }
  });
  box.replaceChildren(svg);
  box.dataset.day = answer?.date ?? "";
  box.dataset.hours = String(hours.filter((h) => isNum(h.import_wh) || isNum(h.production_wh)).length);
}

/** Sum of a series over the hours that started before ``until`` (epoch s). */
function upTo(answer, key, until) {
  const hours = Array.isArray(answer?.hours) ? answer.hours : [];
  const v = hours.filter((h) => h.start < until && isNum(h[key])).map((h) => h[key]);
  return v.length ? v.reduce((a, b) => a + b, 0) : null;
}

function compare() {
  const box = document.getElementById("hourly-compare");
  if (!box) return;
  // The box's day starts at its first hour (local midnight in the box's zone).
  const startToday = days.today?.hours?.[0]?.start;
  const startYesterday = days.yesterday?.hours?.[0]?.start;
  const elapsed = isNum(startToday) ? Date.now() / 1000 - startToday : 0;
  const rows = SERIES.map((s) => {
    const today = isNum(startToday) ? upTo(days.today, s.key, startToday + elapsed) : null;
    const before = isNum(startYesterday)
      ? upTo(days.yesterday, s.key, startYesterday + elapsed) : null;
    let delta = "";
    if (isNum(today) && isNum(before) && before > 0) {
      const p = Math.round((100 * (today - before)) / before);
      delta = ` (${p > 0 ? "+" : p < 0 ? "−" : "±"}${Math.abs(p)} %)`;
    }
    return el("div", { class: "kv", dataset: { compare: s.key } },
      el("span", {}, s.label),
      el("span", {}, `${kwh(today)} · hier ${kwh(before)}${delta}`));
  });
  const hh = new Intl.DateTimeFormat("fr-FR", { hour: "2-digit", minute: "2-digit",
    hourCycle: "h23", timeZone: days.today?.timezone || undefined }).format(new Date());
  box.replaceChildren(el("p", { class: "small muted" },
    `Aujourd'hui jusqu'à ${hh}, comparé à hier jusqu'à la même heure :`),
  el("div", { class: "kv-list" }, ...rows));
}

function show() {
  draw(days[shown]);
  for (const b of document.querySelectorAll("[data-hourly-day]")) {
    b.setAttribute("aria-pressed", String(b.dataset.hourlyDay === shown));
  }
}

export async function loadHourly() {
  const status = document.getElementById("hourly-status");
  if (!(await historyAvailable())) {
    setText(status, "Pas encore d'historique.");
    return;
  }
  const now = new Date();
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  try {
    [days.today, days.yesterday] = await Promise.all([
      getJSON("energy/hourly", { date: localDay(now) }),
      getJSON("energy/hourly", { date: localDay(yesterday) })]);
  } catch (err) {
    setText(status, `Énergie horaire indisponible : ${err.message}`);
    return;
  }
  setText(status, "");
  show();
  compare();
  // A first run: today's first hour needs two minutes of counters. Ask again in 10 s rather
  // than at the next minute's refresh, until an hour has data.
  const any = (days.today?.hours ?? []).some((h) => isNum(h.import_wh) || isNum(h.production_wh));
  if (!any && !retry) retry = setTimeout(() => { retry = null; loadHourly(); }, RETRY_MS);
}

export function initHourly() {
  for (const b of document.querySelectorAll("[data-hourly-day]")) {
    b.addEventListener("click", () => {
      shown = b.dataset.hourlyDay === "yesterday" ? "yesterday" : "today";
      show();
    });
  }
}
