// An endpoint's delivery log: newest attempt first, filtered by status, a page at a time;
// one attempt in detail, and resending its event.

import { call, explain, offers, ApiError } from './api.js';
import * as session from './session.js';
import { el, replace, timeEl, uid, message } from './dom.js';

/** pageSize of the delivery log. */
export const pageSize = 10;

const filters = [
  ['', 'All attempts'],
  ['succeeded', 'Succeeded'],
  ['failed', 'Failed (retrying or given up)'],
  ['pending', 'Failed, retry scheduled'],
  ['dead', 'Failed for good'],
  ['skipped', 'Skipped (endpoint paused or disabled)'],
];

const statusWords = {
  succeeded: 'Succeeded',
  pending: 'Failed, will retry',
  dead: 'Failed for good',
  skipped: 'Skipped',
};

/** deliveryLog returns { node, load() } for endpoint id. */
export function deliveryLog(id) {
  const selectId = uid('filter');
  const select = el('select', { id: selectId }, filters.map(([v, t]) => el('option', { value: v, text: t })));
  const table = el('div', { class: 'log-body', 'aria-live': 'polite' });
  const pager = el('nav', { class: 'pager', 'aria-label': 'Delivery log pages' });
  const refresh = el('button', { type: 'button', class: 'secondary', text: 'Refresh' });
  const node = el('section', { class: 'log', 'aria-labelledby': `${selectId}-title` },
    el('h3', { id: `${selectId}-title`, text: 'Delivery log' }),
    el('div', { class: 'field inline' }, el('label', { for: selectId, text: 'Show' }), select, refresh),
    table, pager);
  let cursors = ['']; // cursor of each page seen so far; the last is the page shown

  async function show() {
    replace(table, el('p', { class: 'loading', text: 'Loading deliveries…' }));
    replace(pager);
    const cursor = cursors[cursors.length - 1];
    let page;
    try {
      page = await call('GET', `endpoints/${encodeURIComponent(id)}/deliveries`, { query: { status: select.value, limit: pageSize, cursor } });
    } catch (err) {
      replace(table, message('error', explain(err)));
      return;
    }
    const items = page.items || [];
    replace(table, items.length === 0
      ? el('p', { class: 'empty', text: select.value ? 'No attempts with this status.' : 'No deliveries yet.' })
      : attemptTable(id, items));
    if (cursors.length > 1) {
      pager.append(el('button', { type: 'button', class: 'secondary', text: 'Newer', onclick: () => { cursors.pop(); show(); } }));
    }
    if (page.next_cursor) {
      pager.append(el('button', { type: 'button', class: 'secondary', text: 'Older', onclick: () => { cursors.push(page.next_cursor); show(); } }));
    }
  }

  const load = () => {
    cursors = [''];
    return show();
  };
  select.addEventListener('change', load);
  refresh.addEventListener('click', load);
  return { node, load };
}

function attemptTable(id, items) {
  return el('table', { class: 'attempts' },
    el('caption', { class: 'visually-hidden', text: 'Delivery attempts, newest first' }),
    el('thead', {}, el('tr', {},
      ['When', 'Event', 'Attempt', 'Result', 'HTTP', 'Latency', ''].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, items.map((a) => el('tr', { 'data-event': a.event_id, 'data-status': a.status },
      el('td', { 'data-label': 'When' }, timeEl(a.attempted_at)),
      el('td', { 'data-label': 'Event' }, el('code', { text: a.event_type }),
        a.test ? el('span', { class: 'badge', text: 'test' }) : null,
        a.resend ? el('span', { class: 'badge', text: 'resent' }) : null),
      el('td', { 'data-label': 'Attempt', text: String(a.attempt) }),
      el('td', { 'data-label': 'Result' }, resultBadge(a)),
      el('td', { 'data-label': 'HTTP', text: a.http_status ? String(a.http_status) : '—' }),
      el('td', { 'data-label': 'Latency', text: `${a.latency_ms} ms` }),
      el('td', {}, el('button', {
        type: 'button', class: 'secondary', text: 'Details', 'aria-label': `Details of attempt ${a.attempt} of ${a.event_type} ${a.event_id}`,
        onclick: () => openAttempt(id, a),
      }))))));
}

function resultBadge(a) {
  const cls = a.status === 'succeeded' ? 'badge-ok' : a.status === 'skipped' ? 'badge' : 'badge-off';
  return el('span', { class: `badge ${cls}`, text: statusWords[a.status] || a.status });
}

const errorWords = {
  timeout: 'the receiver did not answer within 15 seconds',
  connect: 'the connection to the receiver failed',
  tls: 'the TLS handshake with the receiver failed',
  blocked: 'the address is not allowed (private or reserved)',
  redirect: 'the receiver answered with a redirect, which is not followed',
  http_4xx: 'the receiver answered with a 4xx status',
  http_5xx: 'the receiver answered with a 5xx status',
  gone: 'the receiver answered 410 Gone',
};

/** openAttempt shows one attempt in a dialog, with "Resend this event". */
function openAttempt(id, a) {
  const titleId = uid('attempt');
  const status = el('div', { 'aria-live': 'polite' });
  const dl = el('dl', { class: 'facts' });
  const row = (k, ...v) => dl.append(el('dt', { text: k }), el('dd', {}, ...v));
  row('Event', el('code', { text: a.event_type }), ' ', el('code', { 'data-field': 'event-id', text: a.event_id }));
  row('Occurred', timeEl(a.occurred_at));
  row('Attempt', el('span', { text: String(a.attempt) }));
  row('Result', resultBadge(a));
  if (a.http_status) row('HTTP status', el('span', { text: String(a.http_status) }));
  if (a.error_class) row('Error', el('span', { text: errorWords[a.error_class] ? `${errorWords[a.error_class]} (${a.error_class})` : a.error_class }));
  row('Latency', el('span', { text: `${a.latency_ms} ms` }));
  row('Attempted', timeEl(a.attempted_at));
  if (a.next_attempt_at) row('Next attempt', timeEl(a.next_attempt_at));
  if (a.replay_id) row('Replay', el('code', { text: a.replay_id }));
  if (a.test) row('Test', el('span', { text: 'sent with "Send test event"; a test event is not stored, so it cannot be resent (send another test instead)' }));
  if (a.resend) row('Resent', el('span', { text: 'an attempt of a resend of this event' }));

  const close = el('button', { type: 'button', class: 'secondary', text: 'Close' });
  const actions = el('div', { class: 'actions' }, close);
  if (session.can('replay') && !a.test && offers('POST', '/endpoints/{endpoint_id}/deliveries/{event_id}/resend')) {
    const resend = el('button', { type: 'button', class: 'primary', text: 'Resend this event' });
    resend.addEventListener('click', async () => {
      resend.disabled = true;
      replace(status, message('info', 'Queuing the event again…'));
      try {
        await call('POST', `endpoints/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(a.event_id)}/resend`, { body: {} });
        replace(status, message('ok', 'Queued: the event will be delivered again shortly, with the same webhook-id. Refresh the log to see the new attempt.'));
      } catch (err) {
        if (err instanceof ApiError && err.routeMissing) resend.hidden = true;
        replace(status, message('error', `Resend: ${explain(err)}`));
        resend.disabled = false;
      }
    });
    actions.prepend(resend);
  }
  const dialog = el('dialog', { class: 'attempt', 'aria-labelledby': titleId },
    el('h3', { id: titleId, text: 'Delivery attempt' }), dl, status, actions);
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
}
