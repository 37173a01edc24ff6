// DOM helpers. Every string ends up as a text node or an attribute value, never as markup:
// URLs, event data, receiver responses and error messages are attacker-controlled text.
// (The Content-Security-Policy also makes the browser refuse HTML strings in DOM sinks.)

let ids = 0;

/** uid returns a fresh element id with the given prefix. */
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

/**
 * el builds an element. props: class, text, on<event> handlers (functions), boolean
 * attributes (disabled, checked, hidden, novalidate...) and plain attributes (strings).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key.startsWith('on')) throw new Error(`el: ${key} must be a function`);
    else if (typeof value === 'boolean') node.toggleAttribute(key, value); // disabled, hidden, novalidate...
    else node.setAttribute(key, String(value));
  }
  add(node, children);
  return node;
}

/** add appends children (nodes, strings, arrays of them; null and false are skipped). */
export function add(node, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** replace empties node and appends children. */
export function replace(node, ...children) {
  node.replaceChildren();
  return add(node, children);
}

/** when formats an RFC 3339 time for people (local time, with the zone), or a dash. */
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
  });
}

/** timeEl is a <time> element for an RFC 3339 value. */
export function timeEl(iso) {
  return iso ? el('time', { datetime: iso, text: when(iso) }) : el('span', { text: '—' });
}

/** field is a labelled input row with a slot for its error message. */
export function field({ label, input, hint, error }) {
  const id = input.id || uid('f');
  input.id = id;
  const hintEl = hint ? el('p', { class: 'hint', id: `${id}-hint`, text: hint }) : null;
  const errEl = error || el('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  errEl.id = errEl.id || `${id}-error`;
  input.setAttribute('aria-describedby', [hintEl && hintEl.id, errEl.id].filter(Boolean).join(' '));
  return el('div', { class: 'field' }, el('label', { for: id, text: label }), input, hintEl, errEl);
}

/** showFieldError puts message next to input (its error slot) and marks it invalid. */
export function showFieldError(input, message) {
  const slot = document.getElementById(`${input.id}-error`);
  input.setAttribute('aria-invalid', 'true');
  if (slot) {
    slot.textContent = message;
    slot.hidden = false;
  }
}

/** clearFieldErrors resets every field error inside root. */
export function clearFieldErrors(root) {
  for (const n of root.querySelectorAll('[aria-invalid="true"]')) n.removeAttribute('aria-invalid');
  for (const n of root.querySelectorAll('.field-error')) {
    n.textContent = '';
    n.hidden = true;
  }
}

/** message is a status line: kind is "error", "ok" or "info". */
export function message(kind, ...children) {
  return el('p', { class: `msg msg-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
}
