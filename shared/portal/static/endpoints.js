// The endpoint list (paginated) and the form that adds an endpoint.

import { call, explain } from './api.js';
import * as session from './session.js';
import { el, replace, timeEl, field, showFieldError, clearFieldErrors, message } from './dom.js';
import { eventPicker } from './events.js';
import { secretOnce, statusBadges } from './widgets.js';

/** pageSize of the endpoint list. */
export const pageSize = 10;

/** renderList shows one page of endpoints, starting after cursor ("" = first page). */
export function renderList(ctx, cursor) {
  const body = el('div', { class: 'list-body' }, el('p', { class: 'loading', text: 'Loading endpoints…' }));
  const view = el('section', { class: 'view', 'aria-labelledby': 'list-title' },
    el('div', { class: 'view-head' },
      el('h2', { id: 'list-title', text: 'Endpoints' }),
      session.can('write') ? el('button', { type: 'button', class: 'primary', text: 'Add endpoint', onclick: () => ctx.navigate({ view: 'new' }) }) : null),
    body);

  call('GET', 'endpoints', { query: { limit: pageSize, cursor } }).then((page) => {
    const items = page.items || [];
    if (items.length === 0) {
      replace(body, el('p', { class: 'empty', text: cursor ? 'No more endpoints.' : 'No endpoints yet.' }));
    } else {
      replace(body, endpointTable(ctx, items));
    }
    const nav = el('nav', { class: 'pager', 'aria-label': 'Endpoint pages' },
      cursor ? el('button', { type: 'button', class: 'secondary', text: 'First page', onclick: () => ctx.navigate({}) }) : null,
      page.next_cursor ? el('button', { type: 'button', class: 'secondary', text: 'Next page', onclick: () => ctx.navigate({ cursor: page.next_cursor }) }) : null);
    if (nav.childElementCount) body.append(nav);
  }, (err) => replace(body, message('error', explain(err))));
  return view;
}

function endpointTable(ctx, items) {
  return el('table', { class: 'endpoints' },
    el('caption', { class: 'visually-hidden', text: 'Your webhook endpoints' }),
    el('thead', {}, el('tr', {},
      ['URL', 'Events', 'Status', 'Delivered up to', ''].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, items.map((ep) => el('tr', { 'data-endpoint': ep.endpoint_id },
      el('td', { 'data-label': 'URL', class: 'url' }, el('span', { class: 'mono', text: ep.url })),
      el('td', { 'data-label': 'Events' }, (ep.events || []).map((p) => el('code', { class: 'chip', text: p }))),
      el('td', { 'data-label': 'Status', class: 'status' }, statusBadges(ep),
        ep.failing && ep.failing_since ? el('span', { class: 'reason' }, 'since ', timeEl(ep.failing_since)) : null),
      el('td', { 'data-label': 'Delivered up to' }, ep.watermark ? timeEl(ep.watermark) : el('span', { class: 'muted', text: 'nothing yet' })),
      el('td', {}, el('button', {
        type: 'button', class: 'secondary', text: 'Manage', 'aria-label': `Manage ${ep.url}`,
        onclick: () => ctx.navigate({ endpoint: ep.endpoint_id }),
      }))))));
}

/** renderNew is the form that adds an endpoint and shows its handshake and secret. */
export function renderNew(ctx) {
  const url = el('input', { type: 'url', name: 'url', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'https://example.com/webhooks' });
  const picker = eventPicker([]);
  const status = el('div', { class: 'form-status', 'aria-live': 'polite' });
  const submit = el('button', { type: 'submit', class: 'primary', text: 'Add endpoint' });
  const form = el('form', { novalidate: true },
    field({ label: 'URL', input: url, hint: 'Where deliveries are POSTed. We first send it a challenge that it must echo back, to prove you own it.' }),
    picker.node,
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => ctx.navigate({}) }),
      submit),
    status);
  const view = el('section', { class: 'view' }, el('h2', { text: 'Add an endpoint' }), form);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    picker.clearError();
    const events = picker.values();
    if (!url.value.trim()) {
      showFieldError(url, 'Enter the URL that should receive the webhooks.');
      url.focus();
      return;
    }
    if (events.length === 0) {
      picker.showError('Choose at least one event type or pattern.');
      picker.focus();
      return;
    }
    submit.disabled = true;
    replace(status, message('info', 'Checking your receiver: sending the challenge…'));
    try {
      const ep = await call('POST', 'endpoints', { body: { url: url.value.trim(), events } });
      replace(view,
        el('h2', { text: 'Endpoint added' }),
        message('ok', 'Handshake succeeded: your receiver answered the challenge, and deliveries to it have started.'),
        el('p', {}, el('span', { class: 'mono', text: ep.url })),
        ep.secret ? secretOnce(ep.secret, 'Deliveries are signed with this secret (Standard Webhooks). Verify each one with it.') : null,
        el('div', { class: 'actions' },
          el('button', { type: 'button', class: 'primary', text: 'Go to the endpoint', onclick: () => ctx.navigate({ endpoint: ep.endpoint_id }) }),
          el('button', { type: 'button', class: 'secondary', text: 'Back to the list', onclick: () => ctx.navigate({}) })));
      view.querySelector('h2').tabIndex = -1;
      view.querySelector('h2').focus();
    } catch (err) {
      replace(status);
      submit.disabled = false;
      showError(err, { url, picker, status });
    }
  });
  return view;
}

/**
 * showError puts an API error next to the field it names (url, events), or in status.
 * Handshake failures are explained as such.
 */
export function showError(err, { url, picker, status }) {
  const text = explain(err);
  if (err.field === 'url' && url) {
    const handshake = err.reason === 'handshake_failed' || /handshake|challenge/i.test(err.message);
    showFieldError(url, handshake ? `Handshake failed: ${err.message}. Your receiver must answer the challenge with a 2xx echoing it.` : text);
    url.focus();
    return;
  }
  if (err.field === 'events' && picker) {
    picker.showError(text);
    picker.focus();
    return;
  }
  replace(status, message('error', text));
}
