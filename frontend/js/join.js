// The join form: a display name (or the signed-in name) and a room, checked exactly as
// $connect would check them, since a browser cannot read a refused handshake's status.

import { ui } from './dom.js';
import { t } from './i18n.js';
import { normalizeUsername } from './protocol.js';
import { app } from './state.js';

const NAME_KEY = 'chat.username';

let roomAwaitsDefault = false; // the room field is to show the default room once it is known

export function prefill() {
  const params = new URLSearchParams(location.search);
  ui.username.value = app.auth?.username ?? params.get('username') ?? localStorage.getItem(NAME_KEY) ?? '';
  ui.room.value = params.get('room') ?? app.config?.rules.defaultRoom ?? '';
  roomAwaitsDefault = !params.has('room') && !app.config;
  // With a name already known, Enter (or one click) is all it takes to rejoin.
  (ui.username.value ? ui.joinForm.querySelector('button[type=submit]') : ui.username).focus();
}

/** The rules have arrived: the form's hints and default room come from them. */
export function showRules({ rules: r }) {
  if (ui.username.getAttribute('aria-invalid') !== 'true') ui.usernameHint.textContent = r.usernameHint;
  if (ui.room.getAttribute('aria-invalid') !== 'true') ui.roomHint.textContent = r.roomHint;
  ui.room.placeholder = r.defaultRoom;
  if (roomAwaitsDefault && !ui.room.value) ui.room.value = r.defaultRoom;
  roomAwaitsDefault = false;
}

function showFieldProblem(input, hint, problem, defaultHint) {
  input.setAttribute('aria-invalid', problem ? 'true' : 'false');
  hint.textContent = problem || defaultHint;
  hint.classList.toggle('invalid', Boolean(problem));
}

function validateJoin(r) {
  const name = normalizeUsername(ui.username.value);
  const room = r.normalizeRoom(ui.room.value);
  const nameProblem = r.usernameProblem(name);
  const badRoom = r.roomProblem(room);
  showFieldProblem(ui.username, ui.usernameHint, nameProblem, r.usernameHint);
  showFieldProblem(ui.room, ui.roomHint, badRoom, r.roomHint);
  return { name, room, ok: !nameProblem && !badRoom, first: nameProblem ? ui.username : ui.room };
}

/** `enter(config, name, room)` starts the chat once the form is valid. */
export function wireJoinForm(enter) {
  // Hints appear while typing, but only once a field has content, to avoid scolding early.
  for (const input of [ui.username, ui.room]) {
    input.addEventListener('input', () => {
      if (input === ui.room) roomAwaitsDefault = false;
      if (!app.config) return; // the rules are not here yet; submitting waits for them
      if (input.value || input.getAttribute('aria-invalid') === 'true') validateJoin(app.config.rules);
    });
  }

  ui.joinForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    ui.joinError.textContent = '';
    let c;
    try {
      c = await app.configPromise;
    } catch (err) {
      ui.joinError.textContent = t('app.cannotStart', { reason: err.message });
      return;
    }
    const { name, room, ok, first } = validateJoin(c.rules);
    if (!ok) {
      first.focus();
      return;
    }
    if (!app.auth) localStorage.setItem(NAME_KEY, name);
    // Keep the room in the address bar so a reload or a shared link lands in the same room.
    const params = new URLSearchParams(location.search);
    params.set('room', room);
    if (params.has('username')) params.set('username', name);
    history.replaceState(null, '', `${location.pathname}?${params}`);
    enter(c, name, room);
  });
}
