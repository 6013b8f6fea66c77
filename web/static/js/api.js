// The console's only way to the server: the native API, with the signed-in access key as a
// Bearer header on every call. Nothing is cached and no cookie is sent (credentials: "omit"),
// so every action is authorized and audited exactly like any other client's.

const KEY_ITEM = "watchkeep.key";
const IDENTITY_ITEM = "watchkeep.identity";

export class ApiError extends Error {
  constructor(status, code, message, details = {}, requestId = null, retryAfterS = null) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || `HTTP${status}`;
    this.details = details || {};
    this.requestId = requestId;
    // Seconds the server asked us to wait (503 backpressure, 429), from Retry-After.
    this.retryAfterS = retryAfterS;
  }
}

/** The identity the sign-in answered with, or null when signed out. */
export function identity() {
  const raw = sessionStorage.getItem(IDENTITY_ITEM);
  if (!raw || !sessionStorage.getItem(KEY_ITEM)) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

export function signOut() {
  sessionStorage.removeItem(KEY_ITEM);
  sessionStorage.removeItem(IDENTITY_ITEM);
}

/**
 * ConsoleLogin: check the key with the server (which records a signin.watchkeep event) and
 * keep it for this tab only (sessionStorage: gone when the tab closes, never sent elsewhere).
 */
export async function signIn(key) {
  const who = await request("POST", "/api/v1/signin", { key });
  sessionStorage.setItem(KEY_ITEM, key);
  sessionStorage.setItem(IDENTITY_ITEM, JSON.stringify(who));
  return who;
}

/**
 * Call the API: api("GET", "/api/v1/logs/groups", {query: {prefix: "app"}}).
 * Throws ApiError with the server's {error: {code, message, details}}; a 401 also signs out.
 */
export async function api(method, path, options = {}) {
  const key = sessionStorage.getItem(KEY_ITEM);
  if (!key) {
    window.dispatchEvent(new CustomEvent("watchkeep:signed-out"));
    throw new ApiError(401, "MissingAuthenticationTokenException", "You are signed out.");
  }
  try {
    return await request(method, path, { ...options, key });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut();
      window.dispatchEvent(new CustomEvent("watchkeep:signed-out", { detail: error.message }));
    }
    throw error;
  }
}

async function request(method, path, { key, query, body, signal } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) {
      url.searchParams.append(name, String(item));
    }
  }
  const headers = { Accept: "application/json", Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "NetworkError", `The server did not answer: ${error.message}`);
  }
  const requestId = response.headers.get("x-amzn-requestid");
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code,
      error.message || text.slice(0, 300) || response.statusText,
      error.details,
      requestId,
      Number(response.headers.get("retry-after")) || null,
    );
  }
  return data;
}
