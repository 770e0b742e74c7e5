// API client: the bearer token lives in sessionStorage; any 401 sends the
// operator back to sign-in.

const KEY = "rsgo.token";

export const token = {
  get: () => sessionStorage.getItem(KEY) || "",
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class APIError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code;
    this.fields = err.fields || [];
  }
}

export async function api(method, path, body) {
  const opts = { method, headers: { Authorization: `Bearer ${token.get()}` } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  let data = null;
  try { data = await resp.json(); } catch { /* empty body */ }
  if (resp.status === 401) {
    token.clear();
    location.hash = "#/signin?next=" + encodeURIComponent(location.hash);
    throw new APIError(401, data);
  }
  if (!resp.ok) throw new APIError(resp.status, data);
  return data;
}

export const enc = encodeURIComponent;
