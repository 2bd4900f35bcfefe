// The REST API as the console calls it: the same endpoints and token as any client.
//
// The token lives in sessionStorage (this tab only, gone when it closes) and goes out
// in the Authorization header; the one exception is the job stream, whose documented
// ?access_token= fallback exists because EventSource cannot send headers.

const TOKEN_KEY = "qruntime.console.token";

/** A failed API call: the error envelope {code, status, message, errors}. */
export class ApiError extends Error {
  constructor(status, envelope) {
    super(envelope?.message || `HTTP ${status}`);
    this.status = status;
    this.errors = envelope?.errors;
  }
}

let unauthorizedHandler = () => {};

/** Call `handler(error)` whenever the API answers 401 (token unknown, revoked or expired). */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function saveToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** One request; resolves to the Response when it is 2xx, else throws ApiError. */
export async function request(method, path, { body, bearer = token(), signal } = {}) {
  const headers = { Accept: "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, signal, cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { message: "The API could not be reached; is the server running?" });
  }
  if (!response.ok) {
    let envelope;
    try {
      envelope = await response.json();
    } catch {
      envelope = { message: `${response.status} ${response.statusText}` };
    }
    const error = new ApiError(response.status, envelope);
    if (response.status === 401 && bearer && bearer === token()) unauthorizedHandler(error);
    throw error;
  }
  return response;
}

export async function getJSON(path, options) {
  return (await request("GET", path, options)).json();
}

/** POST/PUT/DELETE with an optional JSON body; resolves to the JSON answer, or null for 204. */
export async function send(method, path, body) {
  const response = await request(method, path, { body });
  return response.status === 204 ? null : response.json();
}

/** GET /jobs/{id}/results as text, or null while the job has not ended (204). */
export async function resultText(jobId) {
  const response = await request("GET", `/jobs/${encodeURIComponent(jobId)}/results`);
  return response.status === 204 ? null : response.text();
}

/** The job's event stream URL, resuming after `lastEventId` (the header wins on reconnects). */
export function streamUrl(jobId, lastEventId) {
  const query = new URLSearchParams();
  if (token()) query.set("access_token", token());
  if (lastEventId) query.set("last_event_id", String(lastEventId));
  const suffix = query.toString();
  return `/jobs/${encodeURIComponent(jobId)}/stream${suffix ? `?${suffix}` : ""}`;
}

/** `path` with a query string built from the defined, non-empty entries of `params`. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
