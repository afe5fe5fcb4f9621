// The power-flow picture: grid, house, PV, battery and steered loads around the house, with
// live watts and an arrow per line that says which way power goes. Inline SVG built once with
// a fixed viewBox (its box never changes size: no layout shift); only nodes the box has data
// for are drawn.

import { isNum, num } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const W = 360;
const H = 232;
// Where each node sits; the house is in the middle, every line goes to it.
const SPOTS = {
  house: [180, 110], grid: [50, 110], pv: [180, 28], battery: [310, 110], loads: [180, 192],
};
const LABELS = { grid: "Réseau", pv: "Solaire", battery: "Batterie", house: "Maison",
  loads: "Charges pilotées" };

let svg = null;
const nodes = {}; // name -> {g, value, line, arrow}

function make(tag, attrs, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

function build(box) {
  svg = make("svg", { viewBox: `0 0 ${W} ${H}`, class: "flow-svg", role: "img",
    "aria-label": "Flux de puissance" });
  const lines = make("g", { class: "flow-lines" });
  svg.append(lines);
  for (const [name, [x, y]] of Object.entries(SPOTS)) {
    const g = make("g", { class: `flow-node flow-${name}`, "data-node": name });
    // Lines reach the house from above and below, so its label goes inside a taller box,
    // and the loads' label under theirs: no line crosses a word.
    const house = name === "house";
    const half = house ? 24 : 14;
    g.append(make("rect", { x: x - 44, y: y - half, width: 88, height: 2 * half, rx: 14 }));
    const labelY = house ? y - 6 : name === "loads" ? y + 28 : y - 19;
    g.append(make("text", { x, y: labelY, class: "flow-label", "text-anchor": "middle" },
      LABELS[name]));
    const value = make("text", { x, y: house ? y + 14 : y + 5, class: "flow-value",
      "text-anchor": "middle" }, "—");
    g.append(value);
    svg.append(g);
    const entry = { g, value };
    if (name !== "house") {
      const [hx, hy] = SPOTS.house;
      entry.line = make("line", { x1: x, y1: y, x2: hx, y2: hy, class: "flow-line" });
      // The arrow sits mid-line; it is turned towards where the power goes.
      const mx = (x + hx) / 2;
      const my = (y + hy) / 2;
      const angle = (Math.atan2(hy - y, hx - x) * 180) / Math.PI;
      entry.arrow = make("path", { d: "M -7 -6 L 7 0 L -7 6 z", class: "flow-arrow",
        transform: `translate(${mx} ${my}) rotate(${angle})` });
      entry.angle = angle;
      entry.mid = [mx, my];
      lines.append(entry.line, entry.arrow);
    }
    nodes[name] = entry;
  }
  box.replaceChildren(svg);
}

/** direction: 1 towards the house, -1 away from it, 0 idle (no arrow). */
function set(name, shown, text, direction) {
  const n = nodes[name];
  if (!n) return;
  n.g.setAttribute("visibility", shown ? "visible" : "hidden");
  n.g.dataset.shown = String(shown);
  n.value.textContent = text;
  if (n.line) {
    n.line.setAttribute("visibility", shown ? "visible" : "hidden");
    n.line.classList.toggle("active", shown && direction !== 0);
    const turn = direction < 0 ? 180 : 0;
    n.arrow.setAttribute("visibility", shown && direction !== 0 ? "visible" : "hidden");
    n.arrow.setAttribute("transform",
      `translate(${n.mid[0]} ${n.mid[1]}) rotate(${n.angle + turn})`);
    n.g.dataset.direction = direction > 0 ? "in" : direction < 0 ? "out" : "idle";
  }
}

const sign = (v) => (isNum(v) && Math.abs(v) >= 1 ? Math.sign(v) : 0);

/** Draw the flows computed by overview.js (powerFlows) and the steered loads on now. */
export function renderFlow(f, relays) {
  const box = document.getElementById("flow");
  if (!box) return;
  if (!svg) build(box);
  // Grid: import flows into the house, export out of it (the meter gives VA).
  const net = isNum(f.gridImport) && isNum(f.gridExport) ? f.gridImport - f.gridExport : null;
  set("grid", Boolean(f.meter), net === null ? "—" : num(Math.abs(net), "VA"), sign(net));
  set("pv", f.pvDevices.length > 0, num(f.pv, "W"), sign(f.pv));
  // power_w > 0 charges the battery: power goes out of the house into it.
  set("battery", Boolean(f.battery), isNum(f.soc) ? `${num(f.soc, "%")}` : num(f.batteryPower, "W"),
    -sign(f.batteryPower));
  const steered = relays.filter((r) => r.kind === "switch");
  const on = steered.filter((r) => r.state?.state === "on");
  set("loads", steered.length > 0, `${on.length}/${steered.length} en marche`, on.length ? -1 : 0);
  set("house", true, num(f.house, "W"), 0);
  box.dataset.nodes = Object.keys(nodes).filter((k) => nodes[k].g.dataset.shown === "true").join(" ");
}
