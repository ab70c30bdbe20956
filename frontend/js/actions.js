// What a reader can do to a message: edit our own (in the composer, composer.js), delete
// our own after a confirmation (a modal <dialog>, focus trapped and given back), react
// to any. The frames go through the session's Requests (requests.js).

import { $ } from './dom.js';

const dialog = $('confirm-delete');

/** Ask before deleting; resolves true when the reader confirmed. */
export function confirmDelete() {
  return new Promise((resolve) => {
    const back = document.activeElement;
    dialog.returnValue = '';
    dialog.addEventListener('close', () => {
      if (back?.isConnected) back.focus();
      resolve(dialog.returnValue === 'delete');
    }, { once: true });
    dialog.showModal();
    dialog.querySelector('button[value=cancel]').focus(); // the safe choice first
  });
}

/** The handlers a session's messages call (message_view.js). */
export function messageActions(s, { startEdit }) {
  return {
    me: s.me,
    retry: (clientId) => s.outbox.retry(clientId),
    edit: (id) => {
      const m = s.store.messages.get(id);
      if (m && !m.deleted) startEdit(m);
    },
    remove: async (id) => {
      if (await confirmDelete()) s.requests.remove(id);
    },
    react: (id, emoji, on) => s.requests.react(id, emoji, on),
  };
}
