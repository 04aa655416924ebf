// Calls to the designer's own /api: same origin only, JSON both ways. The
// session cookie goes along by itself (it is HttpOnly: this page never
// sees it), and nothing is cached or stored.

/** An answer other than 2xx, with the server's own words. */
export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

async function call(method, path, body) {
  const init = { method, cache: "no-store", credentials: "same-origin", redirect: "error" };
  if (body !== undefined) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "unreachable", `the designer did not answer (${e.message}); is task-host designer still running?`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  if (!response.ok) {
    const message = json?.error?.message ?? (text.trim().slice(0, 300) || `HTTP ${response.status}`);
    throw new ApiError(response.status, json?.error?.kind ?? `http-${response.status}`, message);
  }
  if (json === null) throw new ApiError(response.status, "bad-answer", "the designer's answer is not JSON");
  return json;
}

export const getJson = (path) => call("GET", path);
export const postJson = (path, body) => call("POST", path, body);
