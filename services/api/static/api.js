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

export function getJSON(path, params) {
  const query = params ? `?${new URLSearchParams(params)}` : "";
  return request(`api/${path}${query}`);
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

/** Show the token dialog; resolves to the token, or "" when cancelled. */
function askToken(reason) {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const text = document.getElementById("token-reason");
  if (reason) text.textContent = reason;
  input.value = "";
  asking = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      asking = null;
      resolve(dialog.returnValue === "ok" ? input.value.trim() : "");
    }, { once: true });
  });
  dialog.returnValue = "";
  dialog.showModal();
  input.focus();
  return asking;
}

/** POST a relay command with the bearer token, asking for it once and again on a 401. */
export async function sendRelayCommand(id, body) {
  let token = storedToken();
  if (!token) token = await askToken("");
  for (let attempt = 0; attempt < 3; attempt += 1) {
    if (!token) throw new ApiError(401, "commande annulée : pas de jeton");
    try {
      const answer = await request(`api/relays/${encodeURIComponent(id)}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      storeToken(token);
      return answer;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      storeToken("");
      token = await askToken(`Jeton refusé (${err.message}). Saisissez le jeton de l'API.`);
    }
  }
  throw new ApiError(401, "jeton refusé");
}
