// Pieces several screens share: the secret shown once, the confirmation dialog, badges.

import { el, uid } from './dom.js';

/** secretOnce shows a signing secret that will never be shown again, with a copy button. */
export function secretOnce(secret, intro) {
  const id = uid('secret');
  const value = el('input', { id, type: 'text', readonly: true, class: 'secret', value: secret, spellcheck: 'false', autocomplete: 'off' });
  const status = el('span', { class: 'copy-status', role: 'status' });
  const copy = el('button', {
    type: 'button', class: 'secondary', text: 'Copy',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(secret);
        status.textContent = 'Copied.';
      } catch {
        // No clipboard permission (e.g. a frame without allow="clipboard-write"): select it.
        value.focus();
        value.select();
        status.textContent = 'Selected: press Ctrl+C (or ⌘+C) to copy.';
      }
    },
  });
  value.addEventListener('focus', () => value.select());
  return el('div', { class: 'secret-box' },
    el('p', { text: intro }),
    el('label', { for: id, text: 'Signing secret' }),
    el('div', { class: 'inline' }, value, copy, status),
    el('p', { class: 'warn', text: 'Store it now in your receiver\'s configuration: it is shown only this once and cannot be read again.' }));
}

/**
 * confirm asks a yes/no question in a modal dialog (keyboard: Tab between the buttons,
 * Escape cancels). Resolves true when confirmed.
 */
export function confirm({ title, body, confirmLabel, danger = false }) {
  return new Promise((resolve) => {
    const titleId = uid('dlg');
    const cancel = el('button', { type: 'button', class: 'secondary', text: 'Cancel' });
    const ok = el('button', { type: 'button', class: danger ? 'danger' : 'primary', text: confirmLabel });
    const dialog = el('dialog', { class: 'confirm', 'aria-labelledby': titleId },
      el('h3', { id: titleId, text: title }),
      ...[body].flat().map((b) => (b instanceof Node ? b : el('p', { text: b }))),
      el('div', { class: 'actions' }, cancel, ok));
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener('click', () => done(false));
    ok.addEventListener('click', () => done(true));
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** statusBadges shows an endpoint's status, why it is disabled (unless withReason is
 * false: the caller says it elsewhere), and whether it is failing. */
export function statusBadges(ep, withReason = true) {
  const out = [];
  if (ep.status === 'active') {
    out.push(el('span', { class: 'badge badge-ok', text: 'Active' }));
  } else {
    out.push(el('span', { class: 'badge badge-off', text: ep.disabled_reason === 'tenant' ? 'Paused' : 'Disabled' }));
    const why = disabledText(ep);
    // The service's own words (an operator's note, "410 Gone") follow, except for a pause,
    // which "Paused by you" already says.
    const detail = ep.disabled_detail && ep.disabled_reason !== 'tenant' ? ` ${ep.disabled_detail}` : '';
    if (withReason && (why || detail)) out.push(el('span', { class: 'reason', text: `${why}${detail}` }));
  }
  if (ep.failing) {
    out.push(el('span', { class: 'badge badge-warn', text: 'Failing' }));
  }
  return out;
}

const reasonWords = {
  tenant: 'Paused by you.',
  gone: 'The receiver answered 410 Gone, so deliveries stopped.',
  failing: 'Disabled after deliveries kept failing.',
  operator: 'Disabled by the platform\'s operator.',
};

/** disabledText explains a disabled_reason in plain words (a reason it does not know, as
 * the service wrote it). */
export function disabledText(ep) {
  if (!ep.disabled_reason) return '';
  return reasonWords[ep.disabled_reason] || String(ep.disabled_reason);
}
