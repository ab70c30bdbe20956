// The wire contract (shared/PROTOCOL.md) as the page sees it: the join rules, the text
// limit and the frames it sends. Keeping them in one module means a protocol change is
// one edit here, and the join form can refuse exactly what $connect would refuse with
// a 400 (a browser cannot read a handshake's status code, so we check before connecting).

export const DEFAULT_ROOM = 'general';
export const MAX_TEXT = 4000; // Unicode code points, after trimming
export const HISTORY_PAGE = 50;

// Letters are any Unicode L* category and digits only Nd, as functions/chat/protocol.py
// checks (so `josé` passes, `²` and `Ⅻ` do not). `u` makes {1,32} count code points,
// like the Python side's len() after NFC.
const USERNAME_RE = /^[\p{L}\p{Nd}_.-]{1,32}$/u;
const ROOM_RE = /^[a-z0-9-]{1,48}$/;

/** The name as the server will store it: trimmed (spaces are never valid) and NFC. */
export function normalizeUsername(raw) {
  return String(raw ?? '').trim().normalize('NFC');
}

/** Rooms are lowercase on the wire; accepting "General" as "general" is friendlier. */
export function normalizeRoom(raw) {
  const room = String(raw ?? '').trim().toLowerCase();
  return room || DEFAULT_ROOM;
}

/** A hint explaining why $connect would refuse this name, or '' when it is fine. */
export function usernameProblem(name) {
  if (!name) return 'Enter a display name.';
  if (codePoints(name) > 32) return 'Use at most 32 characters.';
  if (!USERNAME_RE.test(name)) return 'Use only letters, digits, _ . and - (no spaces).';
  return '';
}

export function roomProblem(room) {
  if (codePoints(room) > 48) return 'Use at most 48 characters.';
  if (!ROOM_RE.test(room)) return 'Use only lowercase letters a–z, digits and -.';
  return '';
}

/** The text the server would store, and a hint when it would refuse it. */
export function checkText(raw) {
  const text = String(raw ?? '').trim();
  const length = codePoints(text);
  if (!length) return { text, problem: 'empty' };
  if (length > MAX_TEXT) return { text, problem: `Too long: ${length}/${MAX_TEXT} characters.` };
  return { text, problem: '' };
}

export function codePoints(s) {
  let n = 0;
  for (const _ of s) n += 1; // iterating a string yields code points, not UTF-16 units
  return n;
}

export function socketUrl(base, username, room) {
  const url = new URL(base);
  url.searchParams.set('username', username);
  url.searchParams.set('room', room);
  return url.toString();
}

/** A client_id (1–64 chars) that makes retries idempotent, also across reconnects. */
export function newClientId() {
  if (globalThis.crypto?.randomUUID) return `c-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `c-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

// Client -> server frames. Route selection is on `action`.
export const frames = {
  newMessage: (text, clientId) => ({ action: 'new_message', text, client_id: clientId }),
  history: (before, limit = HISTORY_PAGE) =>
    before ? { action: 'history', before, limit } : { action: 'history', limit },
  who: () => ({ action: 'who' }),
  typing: () => ({ action: 'typing' }),
  ping: () => ({ action: 'ping' }),
};
