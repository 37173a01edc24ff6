// One endpoint: its settings and the actions on it (edit, rotate the secret, pause, resume,
// delete, send a test event), its delivery log, and replays.

import { call, explain, offers, ApiError } from './api.js';
import * as session from './session.js';
import { el, replace, timeEl, field, showFieldError, clearFieldErrors, message } from './dom.js';
import { eventPicker } from './events.js';
import { showError } from './endpoints.js';
import { confirm, secretOnce, statusBadges, disabledText } from './widgets.js';
import { deliveryLog } from './deliveries.js';
import { replayPanel } from './replay.js';

/** getEndpoint reads one endpoint (GET /endpoints/{id}; where the service lacks that
 * route, it is looked up in the list). */
export async function getEndpoint(id) {
  if (offers('GET', '/endpoints/{endpoint_id}')) {
    try {
      return await call('GET', `endpoints/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!(err instanceof ApiError) || !err.routeMissing) throw err;
    }
  }
  let cursor = '';
  for (let pages = 0; pages < 100; pages += 1) {
    const page = await call('GET', 'endpoints', { query: { limit: 100, cursor } });
    const found = (page.items || []).find((ep) => ep.endpoint_id === id);
    if (found) return found;
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  throw new ApiError({ status: 404, message: 'no such endpoint' });
}

/** renderEndpoint shows the endpoint id. */
export function renderEndpoint(ctx, id) {
  const body = el('div', {}, el('p', { class: 'loading', text: 'Loading the endpoint…' }));
  const view = el('section', { class: 'view' },
    el('p', {}, el('button', { type: 'button', class: 'link', text: '← All endpoints', onclick: () => ctx.navigate({}) })),
    el('h2', { text: 'Endpoint' }),
    body);
  const state = { ep: null };

  const reload = async () => {
    try {
      state.ep = await getEndpoint(id);
      draw();
    } catch (err) {
      replace(body, message('error', explain(err)));
    }
  };

  const settings = el('div', {});
  // The buttons change with the endpoint's state; the status line and the panel (an edit
  // form, a new secret, a test result) outlive those redraws.
  const buttons = el('div', { class: 'actions wrap', role: 'group', 'aria-label': 'Endpoint actions' });
  const status = el('div', { class: 'action-status', 'aria-live': 'polite' });
  const panel = el('div', { class: 'panel-slot' });
  const actions = el('div', { class: 'action-area' }, buttons, status, panel);
  const log = deliveryLog(id);
  const replay = session.can('replay') && offers('POST', '/replay') ? replayPanel(() => state.ep) : null;

  function draw() {
    replace(settings, describe(state.ep));
    replace(buttons, actionButtons(ctx, state, { status, panel, redraw: draw, refreshFacts: () => replace(settings, describe(state.ep)), refreshLog: () => log.load() }));
    if (!body.contains(settings)) {
      replace(body, settings, actions, replay && replay.node, log.node);
      log.load();
    }
  }
  reload();
  return view;
}

function describe(ep) {
  const dl = el('dl', { class: 'facts' });
  const row = (k, ...v) => dl.append(el('dt', { text: k }), el('dd', {}, ...v));
  row('URL', el('span', { class: 'mono url', 'data-field': 'url', text: ep.url }));
  row('Status', el('span', { 'data-field': 'status' }, statusBadges(ep, false)));
  if (ep.status !== 'active') {
    row('Why', el('span', { 'data-field': 'disabled-reason', text: disabledText(ep) || 'Disabled.' }));
    if (ep.disabled_detail) row('Details', el('span', { 'data-field': 'disabled-detail', text: ep.disabled_detail }));
    if (ep.disabled_reason !== 'tenant' && session.can('write') && offers('POST', '/endpoints/{endpoint_id}/enable')) {
      row('What to do', el('span', { text: 'Fix your receiver, then Resume: a challenge is sent first, and deliveries continue once it is answered. Replay what was missed from the replay section.' }));
    }
  }
  if (ep.failing) {
    row('Failing', el('span', { text: 'Deliveries to this endpoint have been failing' }),
      ep.failing_since ? el('span', {}, ' since ', timeEl(ep.failing_since)) : null, '.');
  }
  row('Events', el('span', { 'data-field': 'events' }, (ep.events || []).map((p) => el('code', { class: 'chip', text: p }))));
  row('Delivered up to', ep.watermark ? timeEl(ep.watermark) : el('span', { class: 'muted', text: 'nothing delivered yet' }));
  if (ep.previous_secret_expires_at) {
    row('Previous secret', el('span', { text: 'still signs deliveries (next to the new one) until ' }), timeEl(ep.previous_secret_expires_at));
  }
  row('Endpoint id', el('code', { text: ep.endpoint_id }));
  row('Version', el('span', { text: String(ep.version) }));
  row('Created', timeEl(ep.created_at));
  row('Updated', timeEl(ep.updated_at));
  return dl;
}

function actionButtons(ctx, state, { status, panel, redraw, refreshFacts, refreshLog }) {
  // Handlers read the endpoint when clicked: a rotation or an edit since the buttons were
  // drawn changed its version.
  const ep = () => state.ep;
  const buttons = [];
  const button = (label, handler, cls = 'secondary') => {
    const b = el('button', { type: 'button', class: cls, text: label });
    b.addEventListener('click', async () => {
      // Busy, not disabled: a disabled button loses the keyboard focus.
      if (b.getAttribute('aria-disabled') === 'true') return;
      replace(status);
      b.setAttribute('aria-disabled', 'true');
      try {
        await handler(b);
      } catch (err) {
        if (err instanceof ApiError && err.routeMissing) {
          b.hidden = true; // not offered by this service: say so once, then hide it
        }
        replace(status, message('error', `${label}: ${explain(err)}`));
      } finally {
        b.removeAttribute('aria-disabled');
      }
    });
    buttons.push(b);
    return b;
  };
  const done = (text) => replace(status, message('ok', text));
  const update = (fresh, text) => {
    // The buttons are redrawn (Pause becomes Resume): keep keyboard focus where it was.
    const at = buttons.indexOf(document.activeElement);
    state.ep = fresh;
    redraw();
    done(text);
    const group = status.parentElement && status.parentElement.querySelector('.actions');
    const next = group && group.querySelectorAll('button')[at];
    if (at >= 0 && next) next.focus();
  };

  // An action is offered when the token's scopes allow it and the service serves its route.
  const canWrite = session.can('write');
  const canReplay = session.can('replay');
  if (canWrite && offers('POST', '/endpoints')) {
    button('Edit', () => replace(panel, editForm(ep(), panel, (fresh) => update(fresh, 'Saved.'))));
    button('Rotate secret', () => rotate(ep(), panel, (fresh) => {
      state.ep = fresh; // the facts change; the panel with the new secret stays open
      refreshFacts();
    }));
  }
  if (canWrite && ep().status === 'active' && offers('POST', '/endpoints/{endpoint_id}/disable')) {
    button('Pause', async () => {
      const fresh = await call('POST', `endpoints/${ep().endpoint_id}/disable`, { body: {} });
      update(fresh, 'Paused: new events are recorded as skipped until you resume; nothing stored is lost.');
    });
  }
  if (canWrite && ep().status !== 'active' && offers('POST', '/endpoints/{endpoint_id}/enable')) {
    button('Resume', async () => {
      replace(status, message('info', 'Checking your receiver: sending the challenge…'));
      try {
        const fresh = await call('POST', `endpoints/${ep().endpoint_id}/enable`, { body: {} });
        update(fresh, 'Resumed: the handshake succeeded and deliveries continue. Replay what was skipped from the replay section.');
      } catch (err) {
        if (!(err instanceof ApiError) || err.field !== 'url') throw err;
        replace(status, message('error', `Resume: the handshake failed: ${err.message}. Your receiver must answer the challenge with a 2xx echoing it; the endpoint stays paused.`));
      }
    });
  }
  if (canWrite && offers('DELETE', '/endpoints/{endpoint_id}')) {
    button('Delete', async () => {
      const ok = await confirm({
        title: 'Delete this endpoint?',
        body: [el('p', {}, 'Deliveries to ', el('span', { class: 'mono', text: ep().url }), ' stop at once and queued ones are skipped. This cannot be undone; you can register the URL again later as a new endpoint.')],
        confirmLabel: 'Delete endpoint',
        danger: true,
      });
      if (!ok) return;
      await call('DELETE', `endpoints/${ep().endpoint_id}`, { query: { version: ep().version } });
      ctx.navigate({});
    }, 'danger');
  }
  if (canReplay && offers('POST', '/endpoints/{endpoint_id}/test')) {
    button('Send test event', async () => {
      replace(status, message('info', 'Sending a test event…'));
      const attempt = await call('POST', `endpoints/${ep().endpoint_id}/test`, { body: {} });
      replace(status);
      replace(panel, testResult(attempt));
      refreshLog();
    });
  }
  return buttons;
}

function editForm(ep, slot, saved) {
  const url = el('input', { type: 'url', value: ep.url, spellcheck: 'false', autocomplete: 'off' });
  const picker = eventPicker(ep.events || []);
  const status = el('div', { 'aria-live': 'polite' });
  const save = el('button', { type: 'submit', class: 'primary', text: 'Save' });
  const form = el('form', { class: 'panel', novalidate: true, 'aria-label': 'Edit endpoint' },
    el('h3', { text: 'Edit endpoint' }),
    field({ label: 'URL', input: url, hint: 'Changing the URL sends a new challenge to it first.' }),
    picker.node,
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => replace(slot) }),
      save),
    status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    picker.clearError();
    const events = picker.values();
    if (events.length === 0) {
      picker.showError('Choose at least one event type or pattern.');
      picker.focus();
      return;
    }
    save.disabled = true;
    const urlChanged = url.value.trim() !== ep.url;
    replace(status, message('info', urlChanged ? 'Checking the new URL: sending the challenge…' : 'Saving…'));
    try {
      const fresh = await call('POST', 'endpoints', { body: { endpoint_id: ep.endpoint_id, url: url.value.trim(), events, version: ep.version } });
      replace(slot);
      saved(fresh);
    } catch (err) {
      replace(status);
      showError(err, { url, picker, status });
    } finally {
      save.disabled = false;
    }
  });
  setTimeout(() => url.focus(), 0);
  return form;
}

/** newSecret makes a Standard Webhooks secret (whsec_ + base64 of 32 random bytes). */
function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

async function rotate(ep, slot, rotated) {
  const ok = await confirm({
    title: 'Rotate the signing secret?',
    body: [
      'A new secret is generated in your browser and registered; your receiver must answer a challenge signed with it.',
      'For the next 24 hours every delivery is signed with both the old and the new secret, so you can switch your receiver to the new one without rejecting anything. After that only the new secret signs.',
    ],
    confirmLabel: 'Rotate secret',
  });
  if (!ok) return;
  const secret = newSecret();
  const fresh = await call('POST', 'endpoints', { body: { endpoint_id: ep.endpoint_id, url: ep.url, events: ep.events, secret, version: ep.version } });
  rotated(fresh);
  const at = (iso) => new Date(iso).toLocaleString();
  const steps = [];
  if (fresh.secret_effective_at) steps.push(`From ${at(fresh.secret_effective_at)} (about 30 seconds from now) every delivery is signed with the new secret; until then some may still carry the old signature only.`);
  if (fresh.previous_secret_expires_at) steps.push(`The old secret keeps signing too until ${at(fresh.previous_secret_expires_at)}: switch your receiver to the new one before then.`);
  replace(slot, el('div', { class: 'panel' },
    el('h3', { text: 'New signing secret' }),
    secretOnce(secret, 'The secret was rotated. Make your receiver accept both secrets now, and drop the old one only after the first time below.'),
    steps.map((t) => el('p', { class: 'rotation-step', text: t })),
    el('button', { type: 'button', class: 'secondary', text: 'Done', onclick: () => replace(slot) })));
  slot.querySelector('input.secret').focus();
}

function testResult(a) {
  const ok = a.status === 'succeeded';
  const dl = el('dl', { class: 'facts' });
  const row = (k, v) => dl.append(el('dt', { text: k }), el('dd', {}, v));
  row('Result', el('span', { class: `badge ${ok ? 'badge-ok' : 'badge-off'}`, 'data-field': 'test-status', text: ok ? 'Succeeded' : 'Failed' }));
  row('HTTP status', el('span', { 'data-field': 'test-http', text: a.http_status ? String(a.http_status) : '—' }));
  if (a.error_class) row('Error', el('span', { text: a.error_class }));
  row('Latency', el('span', { text: `${a.latency_ms} ms` }));
  row('Event', el('code', { text: `${a.event_type} ${a.event_id}` }));
  row('Sent', timeEl(a.attempted_at));
  return el('div', { class: 'panel', role: 'region', 'aria-label': 'Test result' },
    el('h3', { text: 'Test event' }),
    dl,
    el('p', { class: 'hint', text: a.response_truncated ? 'Your receiver answered (first 1 KiB, as text):' : 'Your receiver answered (as text):' }),
    el('pre', { class: 'excerpt', 'data-field': 'test-excerpt', text: a.response_excerpt || '(empty)' }));
}
