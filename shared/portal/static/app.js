// The portal's entry point: session, banner, and the two screens (the endpoint list and one
// endpoint), addressed by the query string so the browser's back button and reload work.

import * as session from './session.js';
import { loadRoutes } from './api.js';
import { el, replace, when } from './dom.js';
import { renderList, renderNew } from './endpoints.js';
import { renderEndpoint } from './endpoint.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const access = document.getElementById('access');

/** navigate shows the screen for params ({} is the list) and records it in the history. */
export function navigate(params) {
  const q = new URLSearchParams(params).toString();
  history.pushState(null, '', q ? `?${q}` : location.pathname);
  show(true);
}

function show(focus = false) {
  renderBanner();
  renderAccess();
  if (!session.hasToken()) {
    replace(main,
      el('h2', { text: 'No access' }),
      el('p', { text: 'This page needs an access token. Open it from your platform, which adds the token to the link.' }));
    return;
  }
  const params = new URLSearchParams(location.search);
  const id = params.get('endpoint');
  const ctx = { navigate };
  let view;
  if (id) view = renderEndpoint(ctx, id);
  else if (params.get('view') === 'new') view = renderNew(ctx);
  else view = renderList(ctx, params.get('cursor') || '');
  replace(main, view);
  // After a screen change, keyboard and screen-reader users start at its heading.
  const heading = main.querySelector('h2');
  if (heading && focus) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

function renderBanner() {
  if (session.isEnding()) {
    // Still usable: say when it ends, so nobody loses what they are typing.
    const at = session.expiresAt();
    replace(banner,
      el('strong', { text: `Your session ends at ${at ? at.toLocaleTimeString() : 'any moment'}.` }),
      ' Finish what you are doing; then open the portal again from your platform to continue.');
    banner.className = 'banner banner-warn';
    banner.hidden = false;
    main.inert = false;
    document.body.classList.remove('expired');
    return;
  }
  banner.className = 'banner';
  if (!session.isExpired()) {
    banner.hidden = true;
    replace(banner);
    main.inert = false;
    document.body.classList.remove('expired');
    return;
  }
  replace(banner,
    el('strong', { text: session.expiredMessage() }),
    ' Open the portal again from your platform to continue; nothing you saved is lost.');
  banner.hidden = false;
  // Nothing on the page works without a session: take it out of reach (keyboard too).
  main.inert = true;
  document.body.classList.add('expired');
}

function renderAccess() {
  if (!session.hasToken()) return;
  const parts = [];
  if (!session.can('write') && !session.can('replay')) parts.push('Read-only access');
  else if (!session.can('write')) parts.push('Read and replay access');
  else if (!session.can('replay')) parts.push('Read and change access (no replays or tests)');
  const exp = session.expiresAt();
  if (exp) parts.push(`session until ${when(exp.toISOString())}`);
  access.textContent = parts.join(' · ');
  access.hidden = parts.length === 0;
}

session.init();
session.onChange((kind) => {
  if (kind !== 'token') {
    renderBanner(); // expiring soon, or expired: the screen stays as it is
    return;
  }
  show(); // a fresh token: start over with it
});
window.addEventListener('popstate', () => show(true));
await loadRoutes();
show();
