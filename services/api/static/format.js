// Formatting and small DOM helpers shared by the page's modules. Every formatter accepts
// anything (a field may be missing or null in a reading) and returns "—" rather than throw.

export const DASH = "—";

const nf = (digits) =>
  new Intl.NumberFormat("fr-FR", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
const NF = [nf(0), nf(1), nf(2), nf(3)];

export function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

/** A number with its unit ("1 234 VA"), or "—" when unknown. */
export function num(v, unit = "", digits = 0) {
  if (!isNum(v)) return DASH;
  const text = NF[Math.min(digits, 3)].format(v);
  return unit ? `${text} ${unit}` : text;
}

export function kwh(wh) {
  return isNum(wh) ? num(wh / 1000, "kWh", wh < 10000 ? 2 : 1) : DASH;
}

const EUR = new Intl.NumberFormat("fr-FR", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export function eur(v) {
  return isNum(v) ? `${EUR.format(v)} €` : DASH;
}

export function pct(ratio) {
  return isNum(ratio) ? num(ratio * 100, "%", 0) : DASH;
}

/** "HH:MM" local time of an ISO timestamp. */
export function hhmm(iso) {
  const d = iso ? new Date(iso) : null;
  if (!d || Number.isNaN(d.getTime())) return DASH;
  return d.toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
}

export function duration(s) {
  if (!isNum(s)) return DASH;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min`;
}

/** "1 h 40", "3 h", "25 min": a counter against its minimum, short enough for one line. */
export function hm(s) {
  if (!isNum(s)) return DASH;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (!h) return `${m} min`;
  return m ? `${h} h ${String(m).padStart(2, "0")}` : `${h} h`;
}

export function age(s) {
  if (!isNum(s)) return "";
  if (s < 90) return `il y a ${Math.round(s)} s`;
  if (s < 5400) return `il y a ${Math.round(s / 60)} min`;
  return `il y a ${Math.round(s / 3600)} h`;
}

/** Local calendar day as YYYY-MM-DD (the ledger's days are local days). */
export function localDay(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

export const TEMPO = { blue: "Bleu", white: "Blanc", red: "Rouge" };

const COLOURS = { blue: "bleu", white: "blanc", red: "rouge" };
const PERIODS = { hc: "HC", hp: "HP", base: "Base", pm: "Pointe mobile", hn: "Heures normales" };

/** "blue_hc" → "HC bleu", "hp" → "HP": tariff periods and index names of the ledger. */
export function periodLabel(key) {
  if (typeof key !== "string" || !key) return DASH;
  const parts = key.split("_");
  const colour = COLOURS[parts[0]];
  const rest = colour ? parts.slice(1) : parts;
  const name = rest.map((p) => PERIODS[p] ?? p).join(" ");
  return colour ? `${name} ${colour}`.trim() : name;
}

export const ORDERS = {
  confort: "Confort", eco: "Éco", "hors-gel": "Hors-gel", arret: "Arrêt",
  "confort-1": "Confort −1", "confort-2": "Confort −2", on: "Marche", off: "Arrêt",
};

/** The automation's statuses (DESIGN.md's rule that decided, and "disabled"). */
export const AUTO_STATUS = {
  idle: "au repos", surplus: "surplus solaire", catch_up: "rattrapage", required: "imposé",
  scheduled: "programmé", blocked: "bloqué", done: "fait",
  unreachable: "minimum hors d'atteinte", stale: "données périmées",
  disabled: "automatisme désactivé",
};

/** What holds a load where it is (a minimum on/off time, the starts cap). */
export const AUTO_HOLD = {
  min_on: "maintenu : marche minimale", min_off: "maintenu : arrêt minimal",
  max_starts: "maintenu : démarrages par heure plafonnés",
};

export const SOURCES = {
  user: "manuel", auto: "automatique", shed: "délestage", default: "par défaut",
};

/** Build an element: el("td", {class: "x", dataset: {a: "1"}}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "class") node.className = v;
    // Through the CSSOM: the CSP refuses style attributes (style-src 'self', no inline).
    else if (k === "style") node.style.cssText = String(v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c !== undefined && c !== null && c !== false) node.append(c);
  }
  return node;
}

/** Set an element's text only when it changed (keeps selection and avoids layout work). */
export function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}
