// The JSON API client: same origin (the portal is served under the API's base path), the
// token as the bearer, a fresh X-Request-Id per action (idempotency key and support
// reference). Every failure becomes an ApiError whose text() says in plain words what
// happened and what to do.

import * as session from './session.js';

/** base is the API's base path: the portal lives at {base}/portal/. */
const base = new URL('../', document.baseURI);

// offered is the set of the API's routes ("METHOD /path", as the router writes them) this
// service serves, read from routes.json next to the page; null when it could not be read.
let offered = null;

/** loadRoutes reads which API routes this service offers (once, before the first screen). */
export async function loadRoutes() {
  try {
    const resp = await fetch(new URL('routes.json', document.baseURI), { credentials: 'omit', cache: 'no-store', redirect: 'error' });
    const body = resp.ok ? await resp.json() : null;
    offered = body && Array.isArray(body.routes) ? new Set(body.routes) : null;
  } catch {
    offered = null; // unknown: offer every action, and hide one when the API says it lacks it
  }
}

/**
 * offers says whether the service serves the route (method and path as the router writes
 * it, e.g. offers('POST', '/endpoints/{endpoint_id}/disable')). The page draws no control
 * for a route the service does not serve.
 */
export function offers(method, path) {
  return offered === null || offered.has(`${method} ${path}`);
}

/** ApiError is a failed call, with the contract's error body. */
export class ApiError extends Error {
  constructor({ status, code, message, field, reason, requestId, retryAfter, routeMissing }) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
    this.field = field || '';
    this.reason = reason || '';
    this.requestId = requestId || '';
    this.retryAfter = retryAfter || '';
    // routeMissing: this service does not offer the route at all (not deployed yet).
    this.routeMissing = Boolean(routeMissing);
  }

  /** text explains the error to a person. */
  text() {
    const detail = this.message ? ` ${sentence(this.message)}` : '';
    const ref = this.requestId ? ` (Reference: ${this.requestId}.)` : '';
    if (this.routeMissing) return 'This service does not offer this action yet.';
    switch (this.status) {
      case 0:
        return `The service could not be reached. Check your connection and try again.${detail}`;
      case 400:
        return `That was not accepted:${detail}`;
      case 401:
        return 'Your session has expired or your access was not accepted. Open the portal again from your platform to continue.';
      case 403:
        return `Your access does not allow this action.${detail}`;
      case 404:
        return `Not found: it may have been deleted, or it belongs to another account.${detail}`;
      case 409:
        return conflictText(this.reason, detail);
      case 429:
        return `Too many requests. Wait ${this.retryAfter ? `${this.retryAfter} seconds` : 'a moment'} and try again.`;
      case 503:
        return `The service is temporarily unavailable. Try again in a few seconds.${ref}`;
      default:
        return `Something went wrong on our side. Try again; if it persists, contact support.${ref}`;
    }
  }
}

function conflictText(reason, detail) {
  switch (reason) {
    case 'version_mismatch':
      return 'This endpoint was changed elsewhere since you opened it. Reload it to see the latest version, then try again.';
    case 'url_already_registered':
      return 'This URL is already registered as another endpoint.';
    case 'replay_in_progress':
      return 'A replay is already running for this endpoint. Wait for it to finish.';
    case 'endpoint_disabled':
      return 'The endpoint is disabled. Resume it first.';
    case 'request_in_progress':
      return 'The same request is still being processed. Wait a moment.';
    default:
      return `That conflicts with the current state:${detail}`;
  }
}

function sentence(s) {
  const t = String(s).trim();
  if (!t) return '';
  return /[.!?)]$/.test(t) ? t : `${t}.`;
}

function requestId() {
  if (crypto.randomUUID) return `portal-${crypto.randomUUID()}`;
  const b = crypto.getRandomValues(new Uint8Array(16));
  return `portal-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * call sends one request. path is relative to the base path ("endpoints", ...); query is
 * an object of parameters (empty values left out); body is JSON (POST).
 */
export async function call(method, path, { query, body } = {}) {
  if (session.isExpired()) {
    throw new ApiError({ status: 401, message: session.expiredMessage() });
  }
  const url = new URL(path, base);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  const headers = { Authorization: session.bearer(), Accept: 'application/json' };
  if (method !== 'GET') headers['X-Request-Id'] = requestId();
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url, {
      method, headers, body: payload, credentials: 'omit', cache: 'no-store', redirect: 'error', referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError({ status: 0 });
  }
  session.observeServerDate(resp.headers.get('Date'));
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (resp.ok) return data;
  const err = data && typeof data === 'object' ? data : {};
  const routeMissing = (resp.status === 404 || resp.status === 405) && (typeof err.error !== 'string' || /^(no route for|method \S+ is not allowed)/.test(err.message || ''));
  const failure = new ApiError({
    status: resp.status,
    code: err.error,
    message: typeof err.message === 'string' ? err.message : '',
    field: err.field,
    reason: err.reason,
    requestId: err.request_id || resp.headers.get('X-Request-Id'),
    retryAfter: resp.headers.get('Retry-After'),
    routeMissing,
  });
  if (resp.status === 401) {
    session.markExpired(/expired/i.test(failure.message) ? 'Your session has expired.' : 'Your access token was not accepted.');
  }
  throw failure;
}

/** explain turns any thrown value into text for a person. */
export function explain(err) {
  if (err instanceof ApiError) return err.text();
  return 'Something unexpected happened in this page. Reload it and try again.';
}
