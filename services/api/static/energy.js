// Today's energy and cost, and the 30-day table, from one /api/energy/daily call.

import { getJSON, historyAvailable } from "./api.js";
import { DASH, el, eur, isNum, kwh, localDay, pct, periodLabel } from "./format.js";

const DAYS = 30;

function sum(rows, key) {
  const values = rows.map((r) => r[key]).filter(isNum);
  return values.length ? values.reduce((a, v) => a + v, 0) : null;
}

function renderToday(rows, today) {
  const box = document.getElementById("today-energy");
  if (!box) return;
  const mine = rows.filter((r) => r.day === today);
  if (!mine.length) {
    box.replaceChildren(el("p", { class: "muted" }, "Pas encore de données pour aujourd'hui."));
    return;
  }
  const byIndex = {};
  for (const r of mine) {
    for (const [k, v] of Object.entries(r.import_wh_by_index ?? {})) {
      if (isNum(v) && v > 0) byIndex[k] = (byIndex[k] ?? 0) + v; // unused indexes: noise
    }
  }
  // A ratio cannot be summed across meters: shown only when there is one meter.
  const sufficiency = mine.length === 1 ? mine[0].self_sufficiency : null;
  const line = (label, value, id) => el("div", { class: "kv" },
    el("span", {}, label), el("strong", id ? { id } : {}, value));
  const flagged = mine.some((r) => r.flags);
  box.replaceChildren(el("div", { class: "kv-list" },
    line("Soutirage", kwh(sum(mine, "import_wh")), "today-import"),
    ...Object.entries(byIndex).map(([k, v]) =>
      el("div", { class: "kv sub" }, el("span", {}, periodLabel(k)), el("span", {}, kwh(v)))),
    line("Coût du soutirage", eur(sum(mine, "import_cost_eur"))),
    line("Abonnement", eur(sum(mine, "subscription_eur"))),
    line("Coût total", eur(sum(mine, "total_cost_eur")), "today-cost"),
    line("Injection", kwh(sum(mine, "export_wh"))),
    line("Production", kwh(sum(mine, "production_wh"))),
    line("Autoconsommation", kwh(sum(mine, "self_consumption_wh"))),
    line("Autosuffisance", pct(sufficiency))));
  if (flagged) {
    box.append(el("p", { class: "small warn" },
      "Données incomplètes aujourd'hui (compteur absent ou lecture rejetée)."));
  }
}

function renderTable(rows) {
  const body = document.querySelector("#daily-table tbody");
  if (!body) return;
  const sorted = [...rows].sort((a, b) => String(b.day).localeCompare(String(a.day)));
  if (!sorted.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "Aucune donnée.")));
    return;
  }
  body.replaceChildren(...sorted.map((r) => el("tr", {
    class: r.flags ? "flagged" : "", title: r.flags ? `drapeaux ${r.flags}` : null,
    dataset: { day: String(r.day ?? "") } },
    // "2026-12-02", or "02/12" on a phone (the table must fit its width).
    el("td", {}, el("span", { class: "day-long" }, String(r.day ?? DASH)),
      el("span", { class: "day-short" }, String(r.day ?? "").split("-").reverse().slice(0, 2).join("/"))),
    el("td", { class: "opt" }, String(r.meter ?? DASH)),
    el("td", { class: "num" }, kwh(r.import_wh)), el("td", { class: "num" }, kwh(r.export_wh)),
    el("td", { class: "num" }, kwh(r.production_wh)),
    el("td", { class: "num opt" }, kwh(r.self_consumption_wh)),
    el("td", { class: "num opt" }, pct(r.self_sufficiency)),
    el("td", { class: "num" }, eur(r.total_cost_eur)))));
}

function showError(message) {
  const box = document.getElementById("today-energy");
  if (box) box.replaceChildren(el("p", { class: "warn" }, `Énergie indisponible : ${message}`));
  const body = document.querySelector("#daily-table tbody");
  if (body) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "warn" }, message)));
  }
}

export async function loadEnergy() {
  const now = new Date();
  const first = new Date(now.getFullYear(), now.getMonth(), now.getDate() - (DAYS - 1));
  const today = localDay(now);
  try {
    if (!(await historyAvailable())) {
      renderToday([], today);
      renderTable([]);
      return;
    }
    const rows = await getJSON("energy/daily", { start: localDay(first), end: today });
    const list = Array.isArray(rows) ? rows.filter((r) => r && typeof r === "object") : [];
    renderToday(list, today);
    renderTable(list);
  } catch (err) {
    showError(err.message);
  }
}
