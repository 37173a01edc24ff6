// Replays: re-deliver an endpoint's stored events from its watermark or from a chosen
// time, all of them or only those whose delivery did not succeed; then watch the replay
// until it ends.

import { call, explain } from './api.js';
import { el, replace, uid, message, showFieldError, clearFieldErrors, when } from './dom.js';

/** pollMs is how often a running replay is read. */
const pollMs = 1000;

/** parseLocal reads "YYYY-MM-DD HH:MM" (or with a T, optional seconds) as local time. */
export function parseLocal(text) {
  const m = /^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*$/.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => Number(x || 0));
  const date = new Date(y, mo - 1, d, h, mi, s);
  if (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d || date.getHours() !== h || date.getMinutes() !== mi) return null;
  return date;
}

function formatLocal(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** replayPanel returns { node } for the endpoint current() returns. */
export function replayPanel(current) {
  const name = uid('mode');
  const radio = (value, label, checked) => {
    const input = el('input', { type: 'radio', name, id: `${name}-${value}`, value, checked });
    return { input, node: el('div', { class: 'check' }, input, el('label', { for: input.id, text: label })) };
  };
  const modes = [
    radio('watermark', 'Everything since the last successful delivery (the watermark)', true),
    radio('time', 'Everything since a time', false),
  ];
  const onlyFailed = el('input', { type: 'checkbox', id: uid('only-failed'), name: 'only_failed' });
  const onlyFailedField = el('div', { class: 'check' }, onlyFailed,
    el('label', { for: onlyFailed.id, text: 'Only the events whose delivery did not succeed (failed for good, still failing, or skipped while paused or disabled)' }));
  const from = el('input', { type: 'text', id: uid('from'), value: formatLocal(new Date(Date.now() - 24 * 3600 * 1000)), inputmode: 'numeric', autocomplete: 'off', spellcheck: 'false' });
  const fromError = el('p', { class: 'field-error', id: `${from.id}-error`, hidden: true });
  const fromHint = el('p', { class: 'hint', id: `${from.id}-hint`, text: 'Your local time, as YYYY-MM-DD HH:MM. Events are kept for 30 days.' });
  from.setAttribute('aria-describedby', `${fromHint.id} ${fromError.id}`);
  const fromField = el('div', { class: 'field' }, el('label', { for: from.id, text: 'Since' }), from, fromHint, fromError);
  const start = el('button', { type: 'submit', class: 'primary', text: 'Start replay' });
  const status = el('div', { class: 'replay-status', 'aria-live': 'polite' });
  const form = el('form', { novalidate: true, 'aria-labelledby': `${name}-title` },
    el('fieldset', {}, el('legend', { text: 'Which events' }), modes.map((m) => m.node)),
    fromField,
    onlyFailedField,
    el('div', { class: 'actions' }, start),
    status);
  const node = el('section', { class: 'replay' },
    el('h3', { id: `${name}-title`, text: 'Replay' }),
    el('p', { class: 'hint', text: 'Deliver stored events to this endpoint again, in order, with their original webhook-id (receivers can de-duplicate).' }),
    form);

  const mode = () => modes.find((m) => m.input.checked).input.value;
  const syncFrom = () => { fromField.hidden = mode() === 'watermark'; };
  for (const m of modes) m.input.addEventListener('change', syncFrom);
  syncFrom();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    const ep = current();
    const body = { endpoint_id: ep.endpoint_id };
    if (mode() === 'watermark') {
      if (!ep.watermark) {
        replace(status, message('error', 'Nothing has been delivered to this endpoint yet, so it has no watermark: replay since a time instead.'));
        return;
      }
      // No from: the service starts right after the endpoint's watermark as it is now
      // (this page's copy may be older), so exactly what came after it is sent again.
    } else {
      const d = parseLocal(from.value);
      if (!d) {
        showFieldError(from, 'Enter a date and time as YYYY-MM-DD HH:MM, for example 2025-10-05 06:00.');
        from.focus();
        return;
      }
      body.from = d.toISOString();
    }
    if (onlyFailed.checked) body.only_failed = true;
    start.disabled = true;
    replace(status, message('info', 'Starting the replay…'));
    try {
      const replay = await call('POST', 'replay', { body });
      await watch(replay, status);
    } catch (err) {
      if (err.field === 'from') {
        replace(status);
        if (mode() === 'watermark') {
          replace(status, message('error', explain(err)));
        } else {
          showFieldError(from, explain(err));
          from.focus();
        }
      } else {
        replace(status, message('error', explain(err)));
      }
    } finally {
      start.disabled = false;
    }
  });
  return { node };
}

async function watch(replay, status) {
  let r = replay;
  for (;;) {
    replace(status, progress(r));
    if (r.status === 'completed' || r.status === 'failed') return;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    r = await call('GET', `replays/${encodeURIComponent(r.replay_id)}`);
  }
}

const words = {
  started: 'Queued: waiting for the replay worker',
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
};

function progress(r) {
  const n = r.events_enqueued || 0;
  const line = `${words[r.status] || r.status}: ${n} ${n === 1 ? 'event' : 'events'} queued for delivery${r.only_failed ? ' (failed ones only)' : ''}.`;
  return el('div', { class: `progress progress-${r.status}`, 'data-replay': r.replay_id, 'data-status': r.status },
    message(r.status === 'failed' ? 'error' : r.status === 'completed' ? 'ok' : 'info', line),
    el('p', { class: 'hint', text: `From ${when(r.from)} up to ${when(r.until)}. Replay ${r.replay_id}.` }),
    r.error ? el('p', { class: 'hint', text: `Why: ${r.error}` }) : null);
}
