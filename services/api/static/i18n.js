// Words of the events: type names and the services' reasons (English sentences on MQTT),
// in French and English. One table per language here: switching the page's language is
// choosing the other key.

export const LANG = document.documentElement.lang === "en" ? "en" : "fr";

const EVENTS = {
  fr: {
    shed: "délestage", restore: "rétablissement", rejected: "commande refusée",
    command: "commande", device_lost: "appareil perdu", device_found: "appareil retrouvé",
    stale: "données périmées", fresh: "données revenues", forced_expired: "fin du forçage",
    readback_mismatch: "relecture en défaut", shedding_offline: "délestage absent",
    shedding_back: "délestage revenu", safe_state: "position de repli",
    decision: "automatisme", unreachable: "minimum hors d'atteinte", startup: "démarrage",
    counter_backwards: "compteur revenu en arrière",
  },
  en: {},
};

// Reason sentences by pattern; $1… are the pattern's groups.
const REASONS = [
  { re: /^phase (\d+) at (\d+)% of (\d+) VA \(shed at (\d+)%\)$/,
    fr: "phase $1 à $2\u202f% de $3 VA (délestage à $4\u202f%)" },
  { re: /^phase (\d+) at (\d+)%, under (\d+)% with the load counted$/,
    fr: "phase $1 à $2\u202f%, sous $3\u202f% en comptant la charge" },
  { re: /^overrun signalled by the meter on phase (\d+)$/,
    fr: "dépassement signalé par le compteur sur la phase $1" },
  { re: /^rotation$/, fr: "rotation des charges délestées" },
  { re: /^remembered: applied when the load is restored$/,
    fr: "retenue : appliquée au rétablissement de la charge" },
  { re: /^no valid meter data: shed loads stay shed, nothing is /,
    fr: "pas de données valides du compteur : les charges délestées le restent" },
  { re: /^loads shedding could shed are held in their safe state$/,
    fr: "les charges délestables sont tenues en position de repli" },
];

/** An event type in words. */
export function eventName(type) {
  const t = String(type ?? "");
  return EVENTS[LANG][t] ?? t.replaceAll("_", " ") ?? "événement";
}

// "9000" -> "9 000", as the rest of the page writes numbers.
const frNumber = (text) => (/^\d{4,}$/.test(text) ? Number(text).toLocaleString("fr-FR") : text);

/** A service's reason sentence in the page's language (as sent when no pattern knows it). */
export function reasonText(reason) {
  if (typeof reason !== "string" || !reason) return "";
  if (LANG === "en") return reason;
  for (const r of REASONS) {
    const m = r.re.exec(reason);
    if (m) return r[LANG].replace(/\$(\d)/g, (_, i) => frNumber(m[Number(i)] ?? ""));
  }
  return reason;
}
