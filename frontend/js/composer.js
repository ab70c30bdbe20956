// The composer: Enter sends, Shift+Enter is a new line, the length counter near the
// limit, and `typing` at most every few seconds.

import { ui } from './dom.js';
import { t } from './i18n.js';
import { codePoints, frames, newClientId } from './protocol.js';
import { renderAll } from './screen.js';
import { app } from './state.js';

const TYPING_EVERY_MS = 3000; // PROTOCOL: send `typing` at most every 3 s

function submitComposer() {
  const s = app.session;
  if (!s) return;
  const { text, problem } = s.rules.checkText(ui.text.value);
  if (problem === 'empty') return;
  if (problem) {
    ui.textHint.textContent = problem;
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
    // Enter sends, Shift+Enter is a new line; never interrupt an IME composition.
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submitComposer();
    }
  });

  ui.text.addEventListener('input', () => {
    autoGrow();
    updateTextHint();
    const s = app.session;
    if (!s || !ui.text.value.trim()) return;
    const now = Date.now();
    if (now - s.lastTypingSent >= TYPING_EVERY_MS && s.conn.send(frames.typing())) s.lastTypingSent = now;
  });
}
