// Relay and radiator cards. Each card is built once and then updated in place: live updates
// arrive several times a second and must not reset a select the user is choosing from.

import { ApiError, sendAutomationSwitch, sendRelayCommand } from "./api.js";
import { AUTO_HOLD, AUTO_STATUS, DASH, ORDERS, SOURCES, duration, el, hhmm, hm, isNum, setText }
  from "./format.js";
import { reasonText } from "./i18n.js";

const cards = new Map(); // relay id -> {root, refs}
let container = null;
let onAnswer = () => {};

/** `update(relay)` is called with the relay object the API returns after a command. */
export function initRelays(node, update) {
  container = node;
  onAnswer = update;
}

async function command(relay, card, body) {
  const { refs } = card;
  const forHour = refs.forHour.checked && body.mode !== "auto";
  const payload = forHour ? { ...body, for_s: 3600 } : body;
  card.root.classList.add("busy");
  setText(refs.error, "");
  for (const c of refs.controls) c.disabled = true;
  try {
    const answer = await sendRelayCommand(relay.id, payload);
    if (answer && answer.relay && typeof answer.relay === "object") {
      card.last = answer.relay;
      onAnswer(answer.relay);
    }
  } catch (err) {
    const why = err instanceof ApiError ? err.message : String(err);
    setText(refs.error, `Commande refusée : ${why}`);
  } finally {
    card.root.classList.remove("busy");
    for (const c of refs.controls) c.disabled = false;
    // Show the output as it is now: a select left on a rejected order would lie about it.
    refs.order?.blur();
    if (card.last) update(card, card.last);
  }
}

const hasAuto = (relay) => Boolean(relay.automated || (relay.automation && typeof relay.automation === "object"));

async function switchAutomation(relay, card, enabled) {
  const { refs } = card;
  card.switching = true;
  refs.autoToggle.disabled = true;
  setText(refs.error, "");
  try {
    const answer = await sendAutomationSwitch(relay.id, enabled);
    if (answer && answer.relay && typeof answer.relay === "object") {
      card.last = answer.relay;
      onAnswer(answer.relay);
    }
  } catch (err) {
    const why = err instanceof ApiError ? err.message : String(err);
    setText(refs.error, `Automatisme : ${why}`);
  } finally {
    card.switching = false;
    if (card.last) update(card, card.last);
  }
}

/** The automation's block: built whenever the relay is a load of the automation, so that
 * its room is kept before the first state arrives (no layout shift). */
function buildAuto(relay, card) {
  const refs = card.refs;
  refs.autoStatus = el("span", { class: "auto-status", dataset: { autoStatus: "" } }, DASH);
  refs.autoHold = el("span", { class: "auto-hold small" });
  refs.autoToggle = el("input", { type: "checkbox", role: "switch", dataset: { autoToggle: "" } });
  refs.autoToggle.addEventListener("change", () => {
    switchAutomation(relay, card, refs.autoToggle.checked);
  });
  refs.autoReason = el("p", { class: "auto-reason small", dataset: { autoReason: "" } });
  refs.autoFill = el("span");
  refs.autoBar = el("span", { class: "bar auto-bar", role: "presentation" }, refs.autoFill);
  refs.autoTime = el("span", { class: "auto-time", dataset: { autoTime: "" } });
  refs.autoMore = el("p", { class: "auto-more small muted", dataset: { autoMore: "" } });
  refs.auto = el("div", { class: "relay-auto", dataset: { auto: "" } },
    el("div", { class: "auto-head" },
      el("span", { class: "auto-line" }, refs.autoStatus, refs.autoHold),
      el("label", { class: "auto-switch small" }, refs.autoToggle, " automatisme")),
    refs.autoReason,
    el("div", { class: "auto-daily small" }, refs.autoBar, refs.autoTime), refs.autoMore);
  return refs.auto;
}

/** "03:20" of "2026-12-02T03:20:00+01:00": the box's local time as the automation wrote it. */
function clockOf(iso) {
  const m = typeof iso === "string" ? /T(\d{2}:\d{2})/.exec(iso) : null;
  return m ? m[1] : null;
}

function updateAuto(card, relay) {
  const { refs } = card;
  const a = relay.automation && typeof relay.automation === "object" ? relay.automation : null;
  const status = a && typeof a.status === "string" ? a.status : "";
  refs.auto.dataset.auto = status;
  refs.auto.classList.toggle("stale", Boolean(a && a.stale));
  refs.auto.classList.toggle("waiting", !a);
  let text = a ? (AUTO_STATUS[status] ?? status) : "en attente de l'automatisme";
  if (a && a.stale) text += " (automatisme muet)";
  refs.autoStatus.dataset.autoStatus = status;
  setText(refs.autoStatus, text);
  setText(refs.autoHold, a && AUTO_HOLD[a.hold] ? ` · ${AUTO_HOLD[a.hold]}` : "");
  const reason = a && typeof a.reason === "string" ? a.reason : "";
  setText(refs.autoReason, reason);
  refs.autoReason.title = reason;
  const enabled = a ? (typeof a.enabled === "boolean" ? a.enabled : status !== "disabled") : false;
  // While a switch is on its way the toggle shows what the user asked, not the old state.
  if (!card.switching) refs.autoToggle.checked = enabled;
  refs.autoToggle.disabled = !a || Boolean(card.switching);
  // Today's on-time against the daily minimum; the row keeps its height when there is none.
  const min = a && isNum(a.min_on_s) && a.min_on_s > 0 ? a.min_on_s : null;
  const on = a && isNum(a.on_today_s) ? a.on_today_s : null;
  refs.autoBar.classList.toggle("none", min === null);
  refs.autoFill.style.width = min !== null && on !== null ? `${Math.min(100, (100 * on) / min)}%` : "0%";
  let time = "";
  if (min !== null) time = `${hm(on ?? 0)} / ${hm(min)}${a.by ? ` avant ${a.by}` : ""}`;
  else if (on !== null) time = `${hm(on)} aujourd'hui`;
  setText(refs.autoTime, time);
  const more = [];
  if (min !== null && isNum(a.remaining_s) && a.remaining_s > 0) more.push(`reste ${hm(a.remaining_s)}`);
  const latest = a ? clockOf(a.latest_start) : null;
  if (latest && min !== null && isNum(a.remaining_s) && a.remaining_s > 0) {
    more.push(`départ au plus tard ${latest}`);
  }
  setText(refs.autoMore, more.join(" · "));
}

function build(relay) {
  const refs = {};
  const card = { root: null, refs };
  refs.state = el("span", { class: "relay-state", dataset: { relayState: "" } }, DASH);
  refs.meta = el("div", { class: "relay-meta small" });
  refs.shed = el("span", { class: "badge shed", hidden: true }, "Délesté");
  refs.shedWhy = el("span", { class: "small shed-why" });
  refs.pending = el("p", { class: "relay-pending small", dataset: { relayPending: "" } });
  refs.fault = el("span", { class: "badge fault", hidden: true,
    title: "La sortie relue ne correspond pas à l'ordre donné" }, "Relecture en défaut");
  refs.error = el("p", { class: "relay-error small", dataset: { relayError: "" }, role: "alert" });
  refs.forHour = el("input", { type: "checkbox", dataset: { forHour: "" } });
  refs.buttons = [];
  const controls = el("div", { class: "relay-controls" });
  const button = (cmd, label) => {
    const b = el("button", { type: "button", dataset: { command: cmd }, "aria-pressed": "false",
      onclick: () => command(relay, card, { mode: cmd }) }, label);
    refs.buttons.push(b);
    return b;
  };
  if (relay.kind === "fil_pilote") {
    const options = Array.isArray(relay.options) ? relay.options : Object.keys(ORDERS);
    refs.order = el("select", { dataset: { order: "" }, "aria-label": `Ordre ${relay.name ?? ""}` },
      ...options.map((o) => el("option", { value: o }, ORDERS[o] ?? o)));
    refs.order.addEventListener("change", () => {
      command(relay, card, { order: refs.order.value });
    });
    controls.append(refs.order, button("auto", "Auto"));
  } else {
    controls.append(button("on", "Marche"), button("off", "Arrêt"), button("auto", "Auto"));
  }
  controls.append(el("label", { class: "for-hour small" }, refs.forHour, " pendant 1 h"));
  refs.controls = [...refs.buttons, ...(refs.order ? [refs.order] : [])];
  card.root = el("article", { class: "relay", dataset: { relay: relay.id, kind: relay.kind ?? "" } },
    el("div", { class: "relay-head" },
      el("span", { class: "relay-name" }, relay.name || relay.id), refs.state),
    refs.meta, hasAuto(relay) ? buildAuto(relay, card) : null,
    el("div", { class: "relay-flags" }, refs.shed, refs.shedWhy, refs.fault), refs.pending,
    controls, refs.error);
  return card;
}

function modeText(kind, st) {
  if (st.mode === "auto") return "mode automatique";
  if (st.mode === "on" || st.mode === "off") {
    const what = kind === "fil_pilote" ? "forcé" : `forcé ${ORDERS[st.mode].toLowerCase()}`;
    return st.until ? `${what} jusqu'à ${hhmm(st.until)}` : `${what} sans limite`;
  }
  return st.mode ? `mode ${st.mode}` : "";
}

/** A command given while the load is shed: kept, and applied when the load is restored. */
function pendingText(kind, st, shed) {
  if (!st || !shed || (st.mode !== "on" && st.mode !== "off")) return "";
  const what = kind === "fil_pilote"
    ? (typeof st.pending_order === "string" ? ORDERS[st.pending_order] ?? st.pending_order
      : st.mode === "off" ? ORDERS.off : "ordre forcé")
    : ORDERS[st.mode];
  const until = st.until ? ` jusqu'à ${hhmm(st.until)}` : "";
  return `Commande en attente : ${what}${until}, appliquée au rétablissement`;
}

function update(card, relay) {
  const { refs, root } = card;
  card.last = relay;
  const st = relay.state && typeof relay.state === "object" ? relay.state : null;
  const value = st ? (relay.kind === "fil_pilote" ? st.order : st.state) : null;
  refs.state.dataset.relayState = value ?? "";
  setText(refs.state, value ? (ORDERS[value] ?? String(value)) : "inconnu");
  root.classList.toggle("on", value === "on" || (relay.kind === "fil_pilote" &&
    typeof value === "string" && value.startsWith("confort")));
  root.classList.toggle("unknown", !st);
  const parts = [];
  if (st) {
    parts.push(modeText(relay.kind, st));
    if (st.source) parts.push(`source : ${SOURCES[st.source] ?? st.source}`);
    if (typeof st.on_time_today_s === "number" && relay.kind !== "fil_pilote") {
      parts.push(`en marche ${duration(st.on_time_today_s)} aujourd'hui`);
    }
  } else {
    parts.push("état inconnu (service relais muet ?)");
  }
  setText(refs.meta, parts.filter(Boolean).join(" · "));
  refs.shed.hidden = !(st && (st.shed || st.source === "shed"));
  setText(refs.shedWhy, !refs.shed.hidden && typeof st.shed_reason === "string"
    ? reasonText(st.shed_reason) : "");
  setText(refs.pending, pendingText(relay.kind, st, !refs.shed.hidden));
  root.classList.toggle("is-shed", !refs.shed.hidden);
  refs.fault.hidden = !(st && st.readback_ok === false);
  for (const b of refs.buttons) {
    b.setAttribute("aria-pressed", String(Boolean(st) && st.mode === b.dataset.command));
  }
  if (refs.auto) updateAuto(card, relay);
  // Leave the select alone while the user has it open or a command is on its way.
  const sel = refs.order;
  if (sel && document.activeElement !== sel && !root.classList.contains("busy")) {
    if (typeof value === "string" && [...sel.options].some((o) => o.value === value)) {
      sel.value = value;
    } else {
      sel.selectedIndex = -1;
    }
  }
}

export function renderRelays(relays) {
  if (!container) return;
  const list = Array.isArray(relays) ? relays.filter((r) => r && r.id) : [];
  if (!list.length) {
    cards.clear();
    container.replaceChildren(el("p", { class: "muted" }, "Aucun relais configuré."));
    return;
  }
  const seen = new Set();
  list.forEach((relay, i) => {
    seen.add(relay.id);
    let card = cards.get(relay.id);
    if (!card || card.root.dataset.kind !== (relay.kind ?? "") || Boolean(card.refs.auto) !== hasAuto(relay)) {
      card = build(relay);
      cards.get(relay.id)?.root.remove();
      cards.set(relay.id, card);
    }
    if (container.children[i] !== card.root) container.insertBefore(card.root, container.children[i] ?? null);
    update(card, relay);
  });
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      card.root.remove();
      cards.delete(id);
    }
  }
  for (const node of [...container.children]) {
    if (!node.dataset.relay) node.remove(); // the "loading" placeholder
  }
}
