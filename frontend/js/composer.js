// The composer: Enter sends, Shift+Enter is a new line, the length counter near the
// limit, and `typing` at most every few seconds. It also edits our own messages: the
// message's menu, or Up in an empty composer (our last message), puts its text here;
// Enter saves it (edit_message), Escape cancels.

import { $, ui } from './dom.js';
import { t } from './i18n.js';
import { codePoints, frames, newClientId } from './protocol.js';
import { renderAll } from './screen.js';
import { app } from './state.js';

const TYPING_EVERY_MS = 3000; // PROTOCOL: send `typing` at most every 3 s

const banner = $('editing');
const sendButton = ui.composer.querySelector('button[type=submit]');

/** Edit message `m` (ours) in the composer. */
export function startEdit(m) {
  const s = app.session;
  if (!s) return;
  s.editing = { id: m.id, draft: s.editing ? s.editing.draft : ui.text.value };
  ui.text.value = m.text;
  showMode(s);
  ui.text.focus();
  ui.text.setSelectionRange(ui.text.value.length, ui.text.value.length);
}

/** Leave edit mode; what was being typed before it comes back. */
export function stopEdit() {
  const s = app.session;
  if (!s?.editing) return;
  ui.text.value = s.editing.draft;
  s.editing = null;
  showMode(s);
  ui.text.focus();
}

/** The composer's words for its mode (also after a language change). */
export function showMode(s) {
  const editing = Boolean(s?.editing);
  banner.hidden = !editing;
  ui.composer.classList.toggle('is-editing', editing);
  sendButton.textContent = editing ? t('composer.save') : t('composer.send');
  autoGrow();
  updateTextHint();
}

function submitComposer() {
  const s = app.session;
  if (!s) return;
  const { text, problem } = s.rules.checkText(ui.text.value);
  if (problem === 'empty') return;
  if (problem) {
    ui.textHint.textContent = problem;
    return;
  }
  if (s.editing) {
    const m = s.store.messages.get(s.editing.id);
    if (m && !m.deleted && m.text !== text) s.requests.edit(m.id, text);
    stopEdit();
    return;
  }
  ui.text.value = '';
  autoGrow();
  updateTextHint();
  s.lastTypingSent = 0;
  s.outbox.add(newClientId(), text); // shown at once, sent when its turn comes
  renderAll(s, { stick: true });
}

function autoGrow() {
  // Empty: back to the stylesheet's one line (a long placeholder must not grow it).
  ui.text.style.height = 'auto';
  ui.text.style.height = ui.text.value ? `${Math.min(ui.text.scrollHeight + 2, 160)}px` : '';
}

function updateTextHint() {
  const max = app.session?.rules.textMaxLength;
  if (!max) return;
  const n = codePoints(ui.text.value.trim());
  ui.textHint.textContent = n > max - 200 ? t('composer.counter', { length: n, max }) : '';
  ui.textHint.classList.toggle('invalid', n > max);
}

export function wireComposer() {
  ui.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitComposer();
  });

  ui.text.addEventListener('keydown', (ev) => {
    if (ev.isComposing) return; // never interrupt an IME composition
    const s = app.session;
    // Enter sends (or saves an edit), Shift+Enter is a new line.
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      submitComposer();
    } else if (ev.key === 'Escape' && s?.editing) {
      ev.preventDefault();
      stopEdit();
    } else if (ev.key === 'ArrowUp' && s && !s.editing && !ui.text.value) {
      const last = s.store.lastOwn();
      if (last) {
        ev.preventDefault();
        startEdit(last);
      }
    }
  });

  $('cancel-edit').addEventListener('click', stopEdit);

  ui.text.addEventListener('input', () => {
    autoGrow();
    updateTextHint();
    const s = app.session;
    if (!s || s.editing || !ui.text.value.trim()) return;
    const now = Date.now();
    if (now - s.lastTypingSent >= TYPING_EVERY_MS && s.conn.send(frames.typing())) s.lastTypingSent = now;
  });
}
