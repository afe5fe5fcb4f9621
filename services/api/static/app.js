// enerbox web page: live state over the WebSocket, relay commands, history and energy.
// Plain ES modules, no build step: the Pi serves these files as they are.

import { getJSON, historyAvailable, wsURL } from "./api.js";
import { loadEnergy } from "./energy.js";
import { initHourly, loadHourly } from "./hourly.js";
import { el, hhmm, setText } from "./format.js";
import { LANG, eventName, reasonText } from "./i18n.js";
import { initHistory, loadHistory, loadLabels, updateChoices } from "./history.js";
import { renderDevices, renderOverview } from "./overview.js";
import { initScreens } from "./display.js";
import { initRelays, renderRelays } from "./relays.js";

const MAX_EVENTS = 50;
const REFRESH_STATE_MS = 30_000; // re-read age/stale flags, which only the server computes
const REFRESH_HISTORY_MS = 60_000; // the historian writes once a minute
const CONNECTING_SHOWN_AFTER_MS = 3000; // a slower first connection is worth saying
const REFRESH_ENERGY_MS = 60_000; // cheap: 30 rows; also picks up a first ledger soon

const store = {
  services: {},
  devices: new Map(), // "service/device" -> device object
  relays: new Map(), // id -> relay object (insertion order = the API's order)
  shedding: null,
  events: [],
};

const key = (service, device) => `${service}/${device}`;
const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : null);

/** Replace the store with a full /api/state answer (REST or the WebSocket snapshot). */
function loadState(state) {
  const s = obj(state);
  if (!s) return;
  store.services = obj(s.services) ?? {};
  store.devices = new Map();
  for (const d of Array.isArray(s.devices) ? s.devices : []) {
    if (obj(d) && d.service && d.device) store.devices.set(key(d.service, d.device), d);
  }
  store.relays = new Map();
  for (const r of Array.isArray(s.relays) ? s.relays : []) {
    if (obj(r) && r.id) store.relays.set(r.id, r);
  }
  store.shedding = obj(s.shedding);
}

function device(service, name) {
  const k = key(service, name);
  let d = store.devices.get(k);
  if (!d) {
    d = { service, device: name, availability: null, state: {}, age_s: 0, stale: false };
    store.devices.set(k, d);
  }
  return d;
}

/** Apply one WebSocket message; unknown types are ignored (a newer API may add some). */
function apply(msg) {
  switch (msg.type) {
    case "snapshot":
      loadState(msg.state);
      store.events = Array.isArray(msg.events) ? msg.events.slice(-MAX_EVENTS) : [];
      break;
    case "state": {
      if (!msg.service || !msg.device || !obj(msg.state)) break;
      const d = device(msg.service, msg.device);
      Object.assign(d, { state: msg.state, age_s: 0, stale: false });
      break;
    }
    case "availability":
      if (msg.service && msg.device) device(msg.service, msg.device).availability = msg.availability;
      break;
    case "relay":
      if (obj(msg.relay) && msg.relay.id) updateRelay(msg.relay);
      break;
    case "status":
      if (msg.service) store.services[msg.service] = msg.status;
      break;
    case "event":
      if (obj(msg.event)) store.events = [...store.events, msg.event].slice(-MAX_EVENTS);
      break;
    case "shedding":
      store.shedding = obj(msg.shedding);
      break;
    default:
      return;
  }
  schedule();
}

function updateRelay(relay) {
  const old = store.relays.get(relay.id);
  store.relays.set(relay.id, old ? { ...old, ...relay } : relay);
  schedule();
}

function renderEvents() {
  const list = document.getElementById("event-list");
  if (!list) return;
  const items = store.events.slice(-10).reverse().map((e) => {
    // Relays by their configured name; reasons in the page's language (i18n.js).
    const relay = e.relay ? store.relays.get(e.relay) : null;
    const who = relay ? (relay.name || relay.id) : (e.relay ?? e.device ?? e.service ?? "");
    // The automation sends `reason` in its language (French by default) and `reason_en`.
    const said = LANG === "en" && typeof e.reason_en === "string" ? e.reason_en : e.reason;
    const why = reasonText(said ?? e.note ?? e.detail ?? "");
    return el("li", { dataset: { type: String(e.type ?? "") } },
      el("span", { class: "small muted" }, hhmm(e.ts)), " ",
      el("strong", {}, eventName(e.type)), who ? ` ${who}` : "", why ? ` — ${why}` : "");
  });
  list.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "Aucun événement récent")]));
}

// Live messages can come many times a second: draw at most once per frame.
let pending = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

let historyShown = false;
function render() {
  renderOverview(store);
  renderRelays([...store.relays.values()]);
  renderDevices(store);
  renderEvents();
  // The chooser depends on which devices exist: the first chart waits for it.
  const changed = updateChoices([...store.devices.values()]);
  if (changed || !historyShown) {
    historyShown = true;
    loadHistory();
  }
}

// WebSocket with reconnect and backoff (1 s doubling to 30 s, with jitter so that every
// phone on the LAN does not reconnect in the same instant after the Pi reboots).
let delay = 1000;
let connected = false;

function showWs(state, text) {
  const banner = document.getElementById("ws-status");
  if (!banner) return;
  banner.dataset.state = state;
  // "Connecting" shows only if it lasts (start): a banner there for the first 100 ms, then
  // gone, moved the whole page twice (Lighthouse's layout shift 0.1).
  banner.hidden = state === "connected" || state === "connecting";
  setText(banner, text);
  document.getElementById("live-dot")?.classList.toggle("on", state === "connected");
}

let wsNeedsToken = false;

function connect() {
  let ws;
  try {
    ws = new WebSocket(wsURL(wsNeedsToken));
  } catch {
    retry();
    return;
  }
  ws.addEventListener("open", () => {
    connected = true;
    delay = 1000;
    showWs("connected", "En direct");
  });
  ws.addEventListener("message", (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return; // not JSON: nothing this page understands
    }
    if (obj(msg)) apply(msg);
  });
  ws.addEventListener("close", async (ev) => {
    connected = false;
    if (ev.code === 4401 && !wsNeedsToken) {
      // Reads need the token on this box: a REST read asks for it, then we reconnect with it.
      wsNeedsToken = true;
      await refreshState();
    }
    retry();
  });
}

function retry() {
  const wait = Math.round(delay * (0.75 + Math.random() * 0.5));
  delay = Math.min(delay * 2, 30_000);
  showWs("disconnected", `Connexion perdue : nouvel essai dans ${Math.ceil(wait / 1000)} s. ` +
    "Les valeurs affichées peuvent être anciennes.");
  setTimeout(connect, wait);
}

async function refreshState() {
  try {
    loadState(await getJSON("state"));
    schedule();
  } catch (err) {
    if (!connected) showWs("disconnected", `API injoignable (${err.message}).`);
  }
}

function start() {
  initRelays(document.getElementById("relay-list"), updateRelay);
  initHistory();
  showWs("connecting", "Connexion en cours…");
  setTimeout(() => {
    const banner = document.getElementById("ws-status");
    if (banner && banner.dataset.state === "connecting") banner.hidden = false;
  }, CONNECTING_SHOWN_AFTER_MS);
  // Labels first: the chooser is built from them; the state fills the page meanwhile.
  loadLabels().then(() => { historyShown = false; schedule(); });
  refreshState(); // something on screen even before the WebSocket's snapshot
  connect();
  loadEnergy();
  initHourly();
  loadHourly();
  initScreens();
  setInterval(refreshState, REFRESH_STATE_MS);
  setInterval(() => loadHistory(), REFRESH_HISTORY_MS);
  setInterval(loadEnergy, REFRESH_ENERGY_MS);
  setInterval(loadHourly, REFRESH_ENERGY_MS);
  // On a fresh install the historian writes its first minute soon after start: show the
  // chart and today's energy then, not a minute or more later.
  const waiting = setInterval(async () => {
    if (await historyAvailable()) {
      clearInterval(waiting);
      loadHistory();
      loadEnergy();
      loadHourly();
    }
  }, 10_000);
  // After a phone wakes up, timers were paused: refresh right away.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      refreshState();
      loadEnergy();
    }
  });
}

start();
