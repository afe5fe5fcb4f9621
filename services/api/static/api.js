// REST calls and the write token. URLs are relative to the page, so the page also works when
// a reverse proxy serves the API under a path prefix.

const TOKEN_KEY = "enerbox.token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** FastAPI's "detail" is a string, or a list of {loc, msg} for a validation error (422). */
function detailText(body, status) {
  const d = body && typeof body === "object" ? body.detail : null;
  if (typeof d === "string" && d) return d;
  if (Array.isArray(d)) return d.map((e) => (e && e.msg) || JSON.stringify(e)).join("; ");
  return `erreur HTTP ${status}`;
}

async function request(path, init = {}) {
  let res;
  try {
    res = await fetch(path, { cache: "no-store", ...init });
  } catch {
    throw new ApiError(0, "API injoignable");
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null; // an empty or non-JSON answer (a proxy's error page): the status says enough
  }
  if (!res.ok) throw new ApiError(res.status, detailText(body, res.status));
  return body;
}

/** GET a JSON answer. The token goes along when known: a box may require it for reads too
 * (api.read_requires_token), and then a 401 asks for it like a write does. */
export async function getJSON(path, params) {
  const url = `api/${path}${params ? `?${new URLSearchParams(params)}` : ""}`;
  const token = storedToken();
  const auth = (t) => (t ? { headers: { Authorization: `Bearer ${t}` } } : {});
  try {
    return await request(url, auth(token));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    storeToken("");
    const asked = await askToken("Cette box demande le jeton pour lire ses données.");
    if (!asked) throw err;
    return request(url, auth(asked));
  }
}

let historyKnown = false;

/** Whether the historian has written its file yet: asking /api/history or /api/energy before
 * would get a 503, which the browser logs as a console error on every fresh install. */
export async function historyAvailable() {
  if (!historyKnown) {
    try {
      historyKnown = (await request("api/health"))?.history_available === true;
    } catch {
      historyKnown = false;
    }
  }
  return historyKnown;
}

/** The WebSocket URL; with the token only when the box refused us without it (a browser
 * cannot set a WebSocket's headers, and a token in a URL is best avoided). */
export function wsURL(withToken) {
  const url = new URL("api/ws", document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const token = withToken ? storedToken() : "";
  if (token) url.searchParams.set("token", token);
  return url;
}

function storedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return ""; // storage disabled (private mode): ask each time instead
  }
}

function storeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives for this call only */
  }
}

let asking = null; // one dialog at a time, shared by commands sent together
let firstReason = null; // the dialog's own wording, restored after a "token refused"

/** Show the token dialog; resolves to the token, or "" when cancelled. The token is stored
 * at once, so that a second command sent before the first one's answer does not ask again;
 * a 401 removes it. */
function askToken(reason) {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const text = document.getElementById("token-reason");
  firstReason ??= text.textContent;
  text.textContent = reason || firstReason;
  input.value = "";
  asking = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      asking = null;
      const token = dialog.returnValue === "ok" ? input.value.trim() : "";
      if (token) storeToken(token);
      resolve(token);
    }, { once: true });
  });
  dialog.returnValue = "";
  dialog.showModal();
  input.focus();
  return asking;
}

/** POST a relay command with the bearer token, asking for it once and again on a 401. */
export function sendRelayCommand(id, body) {
  return postWithToken(`api/relays/${encodeURIComponent(id)}`, body);
}

/** Switch a load's automation on or off (same token as the commands). */
export function sendAutomationSwitch(id, enabled) {
  return postWithToken(`api/relays/${encodeURIComponent(id)}/automation`, { enabled });
}

async function postWithToken(path, body) {
  let token = storedToken();
  if (!token) token = await askToken("");
  for (let attempt = 0; attempt < 3; attempt += 1) {
    if (!token) throw new ApiError(401, "pas de jeton saisi");
    try {
      return await request(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      storeToken("");
      token = await askToken(`Jeton refusé (${err.message}). Saisissez le jeton de l'API.`);
    }
  }
  throw new ApiError(401, "jeton refusé");
}
