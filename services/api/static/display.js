// "Ce que montre l'écran": the newest frame of each display that writes one (make run's dummy
// screen), refreshed every few seconds. The card sits last on the page and each image has
// its size before it loads, so nothing moves when they come.

import { getJSON } from "./api.js";
import { el } from "./format.js";

const REFRESH_MS = 3000;
const SCALE = 2; // 128x64 OLED pixels, doubled (pixelated) to be readable

export async function initScreens() {
  let displays;
  try {
    displays = await getJSON("display");
  } catch {
    return; // an older API, or no answer: no card
  }
  const shown = (Array.isArray(displays) ? displays : []).filter(
    (d) => d && typeof d.id === "string" && typeof d.frame_url === "string");
  if (!shown.length) return;
  const list = document.getElementById("screen-list");
  const frames = shown.map((d) => {
    const [w, h] = String(d.size).split("x").map(Number);
    const img = el("img", { class: "screen-frame", alt: `Écran ${d.id}`,
      width: (w || 128) * SCALE, height: (h || 64) * SCALE, dataset: { display: d.id } });
    list.append(el("figure", { class: "screen" }, img, el("figcaption", { class: "muted small" }, d.id)));
    return img;
  });
  document.getElementById("screens").hidden = false;
  const refresh = () => {
    if (document.visibilityState !== "visible") return;
    const t = Date.now();
    for (const img of frames) {
      // Relative, like every other call (a path prefix keeps working); a new query string
      // makes the browser ask again (the answer is no-store anyway).
      img.src = `api/display/${encodeURIComponent(img.dataset.display)}.png?t=${t}`;
    }
  };
  refresh();
  setInterval(refresh, REFRESH_MS);
}
