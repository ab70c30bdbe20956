// What the page knows about one room: confirmed messages keyed by id (so history pages,
// live events and catch-up after a reconnect can overlap without duplicates), who is
// online and who is typing. Our own messages still on their way live in the Outbox
// (outbox.js); the timeline shows both. No DOM here: the view renders from `timeline()`.

export class RoomStore {
  constructor(room, me) {
    this.room = room;
    this.me = me;
    this.messages = new Map(); // id -> message
    this.online = new Set();
    this.typing = new Map(); // username -> hide-at timestamp
    this.lastId = ''; // newest id seen: the catch-up target after a reconnect
  }

  /** Merge messages from a `message` or `history` event. Returns the ids actually added. */
  merge(list) {
    const added = [];
    for (const m of list) {
      if (!m || typeof m.id !== 'string' || m.room !== undefined && m.room !== this.room) continue;
      if (this.messages.has(m.id)) continue;
      this.messages.set(m.id, {
        id: m.id,
        username: String(m.username ?? ''),
        text: String(m.text ?? ''),
        createdAt: String(m.created_at ?? ''),
        clientId: m.client_id ?? null,
      });
      if (m.id > this.lastId) this.lastId = m.id;
      added.push(m.id);
    }
    return added;
  }

  /**
   * Messages in display order: confirmed ones by id (ids sort by time, whatever order
   * they arrived in), then `pending`, our outbox entries, in the order they were written.
   */
  timeline(pending = []) {
    const confirmed = [...this.messages.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const ours = [...pending].map((p) => ({
      id: null,
      clientId: p.clientId,
      username: this.me,
      text: p.text,
      createdAt: p.createdAt,
      state: p.state,
      error: p.error,
    }));
    return confirmed.concat(ours);
  }

  setOnline(users) {
    this.online = new Set(users);
  }

  /** Remember that `username` is typing; the indicator goes 5 s after the last event. */
  markTyping(username, now = Date.now()) {
    if (username === this.me) return;
    this.typing.set(username, now + 5000);
  }

  stopTyping(username) {
    this.typing.delete(username);
  }

  typingNow(now = Date.now()) {
    for (const [name, until] of this.typing) if (until <= now) this.typing.delete(name);
    return [...this.typing.keys()].sort();
  }
}
