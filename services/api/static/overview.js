// The live overview (power tiles, tariff, shedding) and the device list, from the store.
// Devices are found by the fields they publish, not by id: ids come from serial numbers.

import { renderFlow } from "./flow.js";
import { DASH, TEMPO, age, el, isNum, num, periodLabel, setText } from "./format.js";

const $ = (id) => document.getElementById(id);

function down(d) {
  if (!d) return "";
  if (d.availability === "offline") return "hors ligne";
  return d.stale ? "périmé" : "";
}

/** Grey a tile and say why when any device feeding it is offline or stale. */
function markTile(id, devices) {
  const tile = $(id);
  if (!tile) return;
  const why = devices.map(down).find(Boolean) ?? "";
  tile.classList.toggle("stale", Boolean(why));
  let badge = tile.querySelector(".tile-why");
  if (why && !badge) {
    badge = el("span", { class: "badge tile-why" });
    tile.querySelector(".tile-label")?.after(badge);
  }
  if (badge) {
    setText(badge, why);
    badge.hidden = !why;
  }
}

function pick(devices, service, field) {
  const all = devices.filter((d) => d.service === service && d.state && field in d.state);
  // Prefer a live device when several publish the same field.
  return all.find((d) => !down(d)) ?? all[0] ?? null;
}

/** What the overview needs, computed from the devices; null where unknown. */
export function powerFlows(devices) {
  const meter = pick(devices, "teleinfo", "apparent_power_va") ??
    devices.find((d) => d.service === "teleinfo") ?? null;
  const m = meter?.state ?? {};
  const gridImport = isNum(m.apparent_power_va) ? m.apparent_power_va : null;
  // A meter that does not send SINSTI has no production contract: nothing is exported.
  const gridExport = isNum(m.injected_power_va) ? m.injected_power_va : (meter ? 0 : null);

  const pvDevices = devices.filter((d) => d.state && ((d.service === "vedirect" &&
    "pv_power_w" in d.state) || (d.service === "inverter" && "ac_power_w" in d.state)));
  let pv = pvDevices.length ? 0 : null;
  for (const d of pvDevices) {
    const v = d.service === "vedirect" ? d.state.pv_power_w : d.state.ac_power_w;
    pv = isNum(v) && pv !== null ? pv + v : null;
  }

  const battery = pick(devices, "vedirect", "soc_pct") ?? pick(devices, "vedirect", "power_w");
  const b = battery?.state ?? {};
  let batteryPower = isNum(b.power_w) ? b.power_w : null;
  if (batteryPower === null && isNum(b.battery_voltage_v) && isNum(b.battery_current_a)) {
    batteryPower = b.battery_voltage_v * b.battery_current_a;
  }
  // House = import + PV − export − battery charging (power_w > 0 charges). No PV or battery
  // device means none installed (0); one that is there but silent makes the sum unknown.
  let house = null;
  if (gridImport !== null && gridExport !== null &&
      (pv !== null || !pvDevices.length) && (batteryPower !== null || !battery)) {
    // VA and W are mixed here (the meter only gives VA): clamp the small negative error.
    house = Math.max(0, gridImport + (pv ?? 0) - gridExport - (batteryPower ?? 0));
  }
  return { meter, gridImport, gridExport, pvDevices, pv, battery, soc: b.soc_pct,
           batteryPower, house };
}

function setValue(id, value, unit, digits = 0) {
  const node = $(id);
  if (!node) return;
  setText(node, num(value, unit, digits));
  node.dataset.value = isNum(value) ? String(value) : "";
}

function tempoBadge(id, colour) {
  const node = $(id);
  if (!node) return;
  const known = typeof colour === "string" && colour in TEMPO;
  setText(node, known ? TEMPO[colour] : DASH);
  node.className = `badge${known ? ` tempo-${colour}` : ""}`;
  node.dataset.colour = known ? colour : "";
}

function renderShedding(shedding, relays) {
  const box = $("shedding");
  if (!box) return;
  if (!shedding || typeof shedding !== "object") {
    box.replaceChildren();
    return;
  }
  const limits = Array.isArray(shedding.limit_va) ? shedding.limit_va : [];
  const loads = Array.isArray(shedding.load_va) ? shedding.load_va : [];
  const shed = Array.isArray(shedding.shed) ? shedding.shed : [];
  const phases = limits.map((limit, i) => {
    const load = loads[i];
    const ratio = isNum(load) && isNum(limit) && limit > 0 ? Math.min(1, load / limit) : 0;
    const label = limits.length > 1 ? `Phase ${i + 1}` : "Charge";
    return el("div", { class: "phase" },
      el("span", { class: "small" }, `${label} ${num(load, "VA")} / ${num(limit, "VA")}`),
      el("span", { class: `bar${ratio >= 0.9 ? " high" : ""}` },
        el("span", { style: `width:${Math.round(ratio * 100)}%` })));
  });
  const names = shed.map((id) => relays.get(id)?.name ?? id);
  box.replaceChildren(
    el("h3", {}, "Délestage", shedding.stale ? el("span", { class: "badge stale-badge" },
      "données du compteur périmées") : null),
    ...phases,
    el("p", { class: `small${names.length ? " shed-now" : " muted"}` },
      names.length ? `Délestés : ${names.join(", ")}` : "Aucune charge délestée"));
}

export function renderOverview(store) {
  const devices = [...store.devices.values()];
  const f = powerFlows(devices);
  setValue("grid-import", f.gridImport, "VA");
  setValue("grid-export", f.gridExport, "VA");
  markTile("tile-grid", [f.meter]);

  setValue("pv-power", f.pv, "W");
  const yieldToday = f.pvDevices.map((d) => d.state.yield_today_kwh).filter(isNum);
  setText($("pv-detail"), f.pvDevices.length
    ? (yieldToday.length ? `${num(yieldToday.reduce((a, v) => a + v, 0), "kWh", 2)} aujourd'hui` : "")
    : "pas de production connue");
  markTile("tile-pv", f.pvDevices);

  setValue("battery-soc", f.soc, "%", 1);
  const bp = f.batteryPower;
  setText($("battery-power"), !f.battery ? "pas de batterie connue"
    : bp === null ? DASH : `${num(Math.abs(bp), "W")} ${bp > 0 ? "en charge" : bp < 0 ? "en décharge" : ""}`.trim());
  markTile("tile-battery", [f.battery]);

  setValue("house-power", f.house, "W");
  markTile("tile-house", [f.meter, ...f.pvDevices, f.battery]);

  const m = f.meter?.state ?? {};
  const tariff = $("tariff-period");
  setText(tariff, typeof m.tariff_label === "string" && m.tariff_label ? m.tariff_label
    : periodLabel(m.tariff_period));
  if (tariff) tariff.dataset.period = typeof m.tariff_period === "string" ? m.tariff_period : "";
  tempoBadge("tempo-today", m.tempo_today);
  tempoBadge("tempo-tomorrow", m.tempo_tomorrow);
  const tempoRow = document.querySelector("#tile-tariff .tempo");
  if (tempoRow) tempoRow.hidden = !("tempo_today" in m || "tempo_tomorrow" in m);
  const ejp = $("ejp-notice");
  if (ejp) {
    const isEjp = m.ejp_notice === true || String(m.tariff_option ?? "").startsWith("ejp");
    ejp.hidden = !isEjp;
    setText(ejp, m.ejp_notice === true ? "Préavis EJP : jour de pointe" : "Pas de préavis EJP");
    ejp.classList.toggle("on", m.ejp_notice === true);
  }
  markTile("tile-tariff", [f.meter]);
  renderShedding(store.shedding, store.relays);
  renderFlow(f, [...store.relays.values()]);
  meterClock(m.meter_time);
}

/** "Compteur : 14:32": the meter's own clock (a simulated Linky runs a fast day). */
function meterClock(value) {
  const node = $("meter-clock");
  if (!node) return;
  const m = typeof value === "string" ? /[T ](\d{2}:\d{2})/.exec(value) : null;
  setText(node, m ? `Compteur : ${m[1]}` : "");
  node.dataset.time = m ? m[1] : "";
}

function label(d) {
  const name = d.state?.product_name;
  return name ? `${d.service} · ${d.device} (${name})` : `${d.service} · ${d.device}`;
}

export function renderDevices(store) {
  const list = $("device-list");
  if (!list) return;
  const items = [...store.devices.values()].map((d) => {
    const why = down(d);
    return el("li", { class: why ? "stale" : "", dataset: { device: `${d.service}/${d.device}` } },
      el("span", {}, label(d)),
      el("span", { class: `badge ${why ? "stale-badge" : "ok"}` }, why || "en ligne"),
      el("span", { class: "small muted" }, age(d.age_s)));
  });
  for (const [service, status] of Object.entries(store.services ?? {})) {
    if (status === "online") continue; // only a service that went away is worth a line
    items.push(el("li", { class: "stale" }, el("span", {}, `service ${service}`),
      el("span", { class: "badge stale-badge" }, status === "offline" ? "arrêté" : String(status))));
  }
  list.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "Aucun appareil")]));
}
