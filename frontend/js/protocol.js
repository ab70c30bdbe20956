// The wire contract (docs/PROTOCOL.md) as the page sees it: the join rules, the text
// limit and the frames it sends. The numbers and patterns are not written here: both
// hosts serve them in config.json (`protocol`, built by functions/chat/protocol.py's
// client_rules()), so the join form refuses exactly what $connect would refuse with a
// 400 (a browser cannot read a handshake's status code, so we check before connecting)
// and a limit changed on the server is a limit changed on the page. Its words are the
// catalog's (i18n.js), in the language the reader chose.

import { t } from './i18n.js';

/**
 * The rules of one server, from config.json's `protocol` object:
 *
 *     {usernameMaxLength, usernamePattern, roomMaxLength, roomPattern, defaultRoom,
 *      textMaxLength, clientIdMaxLength, historyDefaultLimit, historyMaxLimit}
 *
 * Patterns are compiled with the `u` flag, so `\p{L}` works and lengths count code
 * points, like the Python side's len() after NFC. Throws when a field is missing, so
 * a bad config.json stops the page at the join form rather than halfway through a chat.
 */
export function rules(protocolConfig) {
  const c = protocolConfig;
  if (!c || typeof c !== 'object') throw new Error('config.json has no protocol rules');
  const need = (key, type) => {
    if (typeof c[key] !== type) throw new Error(`config.json protocol.${key} is missing`);
    return c[key];
  };
  const usernameMax = need('usernameMaxLength', 'number');
  const usernameRe = new RegExp(need('usernamePattern', 'string'), 'u');
  const roomMax = need('roomMaxLength', 'number');
  const roomRe = new RegExp(need('roomPattern', 'string'), 'u');
  const defaultRoom = need('defaultRoom', 'string');
  const textMax = need('textMaxLength', 'number');
  const historyLimit = need('historyDefaultLimit', 'number');
  // Newer rules: a server that does not send them yet gets PROTOCOL.md's numbers.
  const unreadMax = typeof c.unreadMax === 'number' ? c.unreadMax : 100;

  return {
    defaultRoom,
    textMaxLength: textMax,
    historyLimit,
    unreadMax,
    // The join form's standing hints, from the same numbers (in the current language).
    get usernameHint() {
      return t('join.nameHint', { max: usernameMax });
    },
    get roomHint() {
      return t('join.roomHint', { room: defaultRoom });
    },

    /** Rooms are lowercase on the wire; accepting "General" as "general" is friendlier. */
    normalizeRoom(raw) {
      const room = String(raw ?? '').trim().toLowerCase();
      return room || defaultRoom;
    },

    /** A hint explaining why $connect would refuse this name, or '' when it is fine. */
    usernameProblem(name) {
      if (!name) return t('join.nameEmpty');
      if (codePoints(name) > usernameMax) return t('join.tooLong', { max: usernameMax });
      if (!usernameRe.test(name)) return t('join.nameChars');
      return '';
    },

    roomProblem(room) {
      if (codePoints(room) > roomMax) return t('join.tooLong', { max: roomMax });
      if (!roomRe.test(room)) return t('join.roomChars');
      return '';
    },

    /** The text the server would store, and a hint when it would refuse it. */
    checkText(raw) {
      const text = String(raw ?? '').trim();
      const length = codePoints(text);
      if (!length) return { text, problem: 'empty' };
      if (length > textMax) return { text, problem: t('composer.tooLong', { length, max: textMax }) };
      return { text, problem: '' };
    },
  };
}

/** The name as the server will store it: trimmed (spaces are never valid) and NFC. */
export function normalizeUsername(raw) {
  return String(raw ?? '').trim().normalize('NFC');
}

export function codePoints(s) {
  let n = 0;
  for (const _ of s) n += 1; // iterating a string yields code points, not UTF-16 units
  return n;
}

/** The URL to connect to. Signed in, the name comes from the token: `username` is null. */
export function socketUrl(base, username, room) {
  const url = new URL(base);
  if (username !== null) url.searchParams.set('username', username);
  url.searchParams.set('room', room);
  return url.toString();
}

// Signed in (config.json's auth is cognito), a socket offers these two subprotocols and
// the server selects the first; the token never goes in the URL (PROTOCOL.md).
export const SUBPROTOCOL = 'chat.v1';
export const bearerProtocols = (idToken) => [SUBPROTOCOL, `bearer.${idToken}`];

/** A client_id (well inside the 64-char limit) that makes retries idempotent, also across reconnects. */
export function newClientId() {
  if (globalThis.crypto?.randomUUID) return `c-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `c-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

// Client -> server frames. Route selection is on `action`. Without a limit, `history`
// leaves the page size to the server's default.
export const frames = {
  newMessage: (text, clientId) => ({ action: 'new_message', text, client_id: clientId }),
  history: (before, limit) => {
    const frame = { action: 'history' };
    if (before) frame.before = before;
    if (limit !== undefined) frame.limit = limit;
    return frame;
  },
  who: () => ({ action: 'who' }),
  typing: () => ({ action: 'typing' }),
  ping: () => ({ action: 'ping' }),
  // A message's life. Every frame may carry a client_id: an error it causes echoes it.
  editMessage: (id, text, clientId) => ({ action: 'edit_message', id, text, client_id: clientId }),
  deleteMessage: (id, clientId) => ({ action: 'delete_message', id, client_id: clientId }),
  react: (id, emoji, on, clientId) => ({ action: 'react', id, emoji, on, client_id: clientId }),
  markRead: (id) => ({ action: 'mark_read', id }),
  rooms: () => ({ action: 'rooms' }),
};
