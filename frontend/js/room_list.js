// The room list in the side panel (from rooms.js), and the small form that opens any
// other room. Choosing a room switches to it without reloading the page.

import { $, el } from './dom.js';
import { formatNumber, t } from './i18n.js';

/** Draw `items` (RoomList.view()); `go(room)` opens one. */
export function renderRooms(items, go) {
  const list = $('rooms');
  list.replaceChildren(...items.map((r) => {
    const li = el('li');
    const button = el('button', 'room-link');
    button.type = 'button';
    button.dataset.room = r.room;
    if (r.current) button.setAttribute('aria-current', 'page');
    button.append(el('span', 'room-name', `#${r.room}`));
    if (r.unread > 0) {
      const badge = el('span', 'badge', r.capped
        ? t('rooms.badgeMany', { count: r.unread })
        : formatNumber(r.unread));
      badge.setAttribute('aria-hidden', 'true');
      // What a screen reader hears instead of the bare number.
      const said = el('span', 'visually-hidden', r.capped
        ? t('rooms.unreadMany', { count: r.unread })
        : t('rooms.unread', { count: r.unread }));
      button.append(badge, said);
    }
    button.addEventListener('click', () => { if (!r.current) go(r.room); });
    li.append(button);
    return li;
  }));
}

/** The "another room" form: `go(rawName)` returns a problem to show, or '' when it went. */
export function wireRoomForm(go) {
  const form = $('room-go');
  const input = $('room-go-name');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const problem = go(input.value);
    input.setAttribute('aria-invalid', problem ? 'true' : 'false');
    input.title = problem;
    if (!problem) input.value = '';
  });
}
