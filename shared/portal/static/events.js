// The event picker: the platform's catalog (GET /event-types) as checkboxes, plus patterns
// typed by hand (wildcards such as "export.*" or "*").

import { call, explain, offers, ApiError } from './api.js';
import { el, uid, replace } from './dom.js';

let catalog = null;

/** loadCatalog fetches the catalog once per page. */
export function loadCatalog() {
  if (!catalog && !offers('GET', '/event-types')) {
    return Promise.resolve({ items: [], error: new ApiError({ status: 404, routeMissing: true }) });
  }
  if (!catalog) {
    catalog = call('GET', 'event-types').then(
      (body) => ({ items: Array.isArray(body && body.items) ? body.items : [] }),
      (err) => {
        catalog = null; // try again next time
        return { items: [], error: err };
      },
    );
  }
  return catalog;
}

/** eventPicker returns { node, values(), focus() } with initial patterns selected. */
export function eventPicker(initial = []) {
  const id = uid('events');
  const chosen = new Set(initial);
  const boxes = new Map(); // type -> checkbox
  const list = el('div', { class: 'catalog', role: 'group', 'aria-label': 'Event types' }, el('p', { class: 'loading', text: 'Loading the event types…' }));
  const custom = el('ul', { class: 'patterns', 'aria-label': 'Patterns you added' });
  const input = el('input', { id: `${id}-pattern`, type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'export.* or export.done' });
  const addButton = el('button', { type: 'button', class: 'secondary', text: 'Add pattern' });
  const error = el('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const node = el('fieldset', { class: 'events', id, 'aria-describedby': `${id}-hint ${id}-error` },
    el('legend', { text: 'Events' }),
    el('p', { class: 'hint', id: `${id}-hint`, text: 'Choose the events this endpoint receives. A pattern may end in ".*" for a whole family of events, and "*" means every event.' }),
    list,
    el('div', { class: 'field inline' },
      el('label', { for: input.id, text: 'Add a pattern' }), input, addButton),
    custom,
    error);

  function renderCustom() {
    replace(custom, [...chosen].filter((p) => !boxes.has(p)).map((p) => el('li', {},
      el('code', { text: p }), ' ',
      el('button', {
        type: 'button', class: 'link', 'aria-label': `Remove pattern ${p}`, text: 'Remove',
        onclick: () => { chosen.delete(p); renderCustom(); input.focus(); },
      }))));
  }

  function addPattern() {
    const p = input.value.trim();
    if (!p) return;
    if (boxes.has(p)) boxes.get(p).checked = true;
    chosen.add(p);
    input.value = '';
    renderCustom();
  }
  addButton.addEventListener('click', addPattern);
  // Enter adds the pattern; it must not also submit the form (keypress is where browsers
  // submit implicitly).
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      addPattern();
    }
  });
  input.addEventListener('keypress', (e) => {
    if (e.key === 'Enter') e.preventDefault();
  });

  loadCatalog().then(({ items, error: err }) => {
    if (err) {
      replace(list, el('p', { class: 'hint', text: err.routeMissing
        ? 'The event catalog is not available on this service: type the event types or patterns below.'
        : `The event catalog could not be loaded (${explain(err)}). You can still type event types or patterns below.` }));
      renderCustom();
      return;
    }
    const all = { type: '*', description: 'Every event, including types added later.' };
    replace(list, [all, ...items].map((t) => {
      const box = el('input', { type: 'checkbox', id: uid('type'), value: t.type, checked: chosen.has(t.type) });
      box.addEventListener('change', () => {
        if (box.checked) chosen.add(t.type); else chosen.delete(t.type);
      });
      boxes.set(t.type, box);
      return el('div', { class: 'check' }, box,
        el('label', { for: box.id },
          el('code', { text: t.type }),
          t.deprecated ? el('span', { class: 'badge badge-warn', text: 'deprecated' }) : null,
          t.description ? el('span', { class: 'desc', text: ` ${t.description}` }) : null));
    }));
    renderCustom();
  });
  renderCustom();

  return {
    node,
    values: () => {
      if (input.value.trim()) addPattern(); // a pattern typed but not added still counts
      return [...chosen];
    },
    focus: () => input.focus(),
    showError(message) {
      error.textContent = message;
      error.hidden = false;
      node.setAttribute('aria-invalid', 'true');
    },
    clearError() {
      error.textContent = '';
      error.hidden = true;
      node.removeAttribute('aria-invalid');
    },
  };
}

