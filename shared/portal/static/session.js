// The tenant's access token. It arrives in the URL fragment (#token=...), which browsers
// never send to a server or put in a Referer; the page takes it out of the address bar at
// once and keeps it in this tab's sessionStorage (so a reload keeps working) or, where
// storage is refused, in memory. There are no cookies. A platform can hand over a fresh
// token at any time by changing the fragment again (an iframe's src with a new #token=).
//
// The claims are read only to adapt the page (which actions the scopes allow, when the
// token expires); the API verifies the token on every call.

const storageKey = 'datajetty-webhooks-token';

let token = null;
let claims = {};
let skewMs = 0; // server clock minus browser clock, from the API's Date headers
let expired = false;
let expiredReason = '';
let ending = false; // the token expires within warnBeforeMs
let timer = null;
let warnTimer = null;

/** warnBeforeMs: how long before the token expires the page warns that it will. */
export const warnBeforeMs = 60 * 1000;
const listeners = new Set();

/** init reads the token from the fragment (or this tab's storage) and watches for new ones. */
export function init() {
  const fromFragment = takeFragmentToken();
  if (fromFragment) store(fromFragment);
  use(fromFragment || load());
  window.addEventListener('hashchange', () => {
    const fresh = takeFragmentToken();
    if (fresh) {
      store(fresh);
      use(fresh);
      notify('token');
    }
  });
}

/**
 * onChange calls fn(kind) whenever the token is replaced (kind "token"), is about to expire
 * ("ending") or has expired ("expired").
 */
export function onChange(fn) {
  listeners.add(fn);
}

function notify(kind) {
  for (const fn of listeners) fn(kind);
}

function takeFragmentToken() {
  const raw = location.hash.replace(/^#/, '');
  if (!raw.includes('token=')) return null;
  const params = new URLSearchParams(raw);
  const value = params.get('token');
  params.delete('token');
  const rest = params.toString();
  // Remove it from the address bar and from this history entry.
  history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  return value ? value.trim() : null;
}

function store(value) {
  try {
    sessionStorage.setItem(storageKey, value);
  } catch {
    // Storage refused (sandboxed frame, privacy mode): memory only.
  }
}

function load() {
  try {
    return sessionStorage.getItem(storageKey);
  } catch {
    return null;
  }
}

function use(value) {
  token = value || null;
  claims = decodeClaims(token);
  expired = false;
  expiredReason = '';
  ending = false;
  schedule();
}

function decodeClaims(jwt) {
  if (!jwt) return {};
  const parts = jwt.split('.');
  if (parts.length !== 3) return {};
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const value = JSON.parse(json);
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

/** hasToken says whether the page was given a token at all. */
export function hasToken() {
  return token !== null;
}

/** bearer is the Authorization header value. */
export function bearer() {
  return `Bearer ${token}`;
}

/** scopes of the token, read like the API reads them (scope, or scp; a string or a list). */
export function scopes() {
  const raw = claims.scope ?? claims.scp ?? '';
  const list = Array.isArray(raw) ? raw : String(raw).split(' ');
  return new Set(list.map(String).filter(Boolean));
}

/** can says whether the token carries webhooks:<what> (read, write, replay). */
export function can(what) {
  return scopes().has(`webhooks:${what}`);
}

/** expiresAt is when the token expires, in the browser's clock (null: unknown). */
export function expiresAt() {
  return typeof claims.exp === 'number' ? new Date(claims.exp * 1000 - skewMs) : null;
}

/** isExpired says whether the token has expired (by its exp or by the API's answer). */
export function isExpired() {
  return expired;
}

/** isEnding says whether the token expires within warnBeforeMs (and has not yet). */
export function isEnding() {
  return ending && !expired;
}

/** expiredMessage says why the session ended. */
export function expiredMessage() {
  return expiredReason;
}

/** markExpired ends the session (the API answered 401). */
export function markExpired(reason) {
  if (expired) return;
  expired = true;
  expiredReason = reason;
  clearTimeout(warnTimer);
  notify('expired');
}

/** observeServerDate corrects the expiry timer for the difference between the clocks. */
export function observeServerDate(header) {
  const server = Date.parse(header || '');
  if (Number.isNaN(server)) return;
  const skew = server - Date.now();
  // The Date header has one-second resolution: ignore differences below that.
  if (Math.abs(skew - skewMs) > 1500) {
    skewMs = skew;
    schedule();
  }
}

function schedule() {
  clearTimeout(timer);
  clearTimeout(warnTimer);
  const at = expiresAt();
  if (!at || expired) return;
  const wait = at.getTime() - Date.now();
  const end = () => markExpired('Your session has expired.');
  if (wait <= 0) {
    expired = true;
    expiredReason = 'Your session has expired.';
    return;
  }
  // setTimeout cannot wait longer than about 24.8 days.
  timer = setTimeout(end, Math.min(wait, 2 ** 31 - 1));
  const warn = () => {
    if (ending || expired) return;
    ending = true;
    notify('ending');
  };
  if (wait <= warnBeforeMs) ending = true;
  else warnTimer = setTimeout(warn, Math.min(wait - warnBeforeMs, 2 ** 31 - 1));
}
