// What the page knows about one room: confirmed messages keyed by id (so history pages,
// live events and catch-up after a reconnect can overlap without duplicates), who is
// online and who is typing. Our own messages still on their way live in the Outbox
// (outbox.js); the timeline shows both. No DOM here: the view renders from `timeline()`.
//
// Versions (PROTOCOL.md, "A message's life"): for each id the highest `version` seen
// wins, whatever order events arrive in. An event with a lower or equal version changes
// nothing; an update for a message not loaded yet (`message_updated`,
// `message_deleted`, `reactions`) is held and applied when the message arrives.

function versionOf(m) {
  const v = Number(m?.version);
  return Number.isInteger(v) && v > 0 ? v : 1;
}

function summary(reactions) {
  return reactions && typeof reactions === 'object' && !Array.isArray(reactions) ? reactions : {};
}

/** A wire message (message, message_updated or history entry) as the page keeps it. */
function fromWire(m) {
  const deleted = m.deleted === true;
  return {
    id: m.id,
    username: String(m.username ?? ''),
    text: deleted ? '' : String(m.text ?? ''),
    createdAt: String(m.created_at ?? ''),
    clientId: m.client_id ?? null,
    version: versionOf(m),
    editedAt: m.edited_at ? String(m.edited_at) : null,
    deleted,
    deletedAt: m.deleted_at ? String(m.deleted_at) : null,
    reactions: deleted ? {} : summary(m.reactions),
  };
}

/** The tombstone of `kept` at `version` (the author and times stay; text and reactions go). */
function tombstone(kept, version, deletedAt) {
  return { ...kept, text: '', reactions: {}, deleted: true, version, deletedAt: deletedAt ?? kept.deletedAt };
}

export class RoomStore {
  constructor(room, me) {
    this.room = room;
    this.me = me;
    this.messages = new Map(); // id -> message
    this.held = new Map(); // id -> {update, deleted, reactions}: news about a message not loaded yet
    this.online = new Set();
    this.typing = new Map(); // username -> hide-at timestamp
    this.lastId = ''; // newest id seen: the catch-up target after a reconnect
  }

  #ours(m) {
    return m && typeof m.id === 'string' && (m.room === undefined || m.room === this.room);
  }

  /**
   * Merge messages from a `message` or `history` event (each in its latest version, maybe
   * a tombstone). Returns the ids actually added (not the ones only brought up to date).
   */
  merge(list) {
    const added = [];
    for (const m of list) {
      if (!this.#ours(m)) continue;
      const kept = this.messages.get(m.id);
      if (kept) {
        if (versionOf(m) > kept.version) this.messages.set(m.id, { ...fromWire(m), clientId: kept.clientId ?? m.client_id ?? null });
        continue;
      }
      this.messages.set(m.id, this.#withHeld(fromWire(m)));
      if (m.id > this.lastId) this.lastId = m.id;
      added.push(m.id);
    }
    return added;
  }

  /** A `message_updated` event. Returns 'applied', 'held' (message not loaded yet) or 'stale'. */
  updated(ev) {
    if (!this.#ours(ev)) return 'stale';
    const kept = this.messages.get(ev.id);
    if (!kept) return this.#hold(ev.id, { update: ev });
    if (versionOf(ev) <= kept.version) return 'stale';
    this.messages.set(ev.id, { ...fromWire(ev), clientId: kept.clientId });
    return 'applied';
  }

  /** A `message_deleted` event: the message becomes a tombstone (author and time kept). */
  deleted(ev) {
    if (!this.#ours(ev)) return 'stale';
    const kept = this.messages.get(ev.id);
    if (!kept) return this.#hold(ev.id, { deleted: ev });
    if (versionOf(ev) <= kept.version) return 'stale';
    this.messages.set(ev.id, tombstone(kept, versionOf(ev), ev.deleted_at));
    return 'applied';
  }

  /** A `reactions` event: the latest summary replaces ours (reactions do not change `version`). */
  reacted(ev) {
    if (!this.#ours(ev)) return 'stale';
    const kept = this.messages.get(ev.id);
    if (!kept) return this.#hold(ev.id, { reactions: summary(ev.reactions) });
    if (kept.deleted) return 'stale';
    this.messages.set(ev.id, { ...kept, reactions: summary(ev.reactions) });
    return 'applied';
  }

  #hold(id, news) {
    const held = this.held.get(id) ?? {};
    if (news.update && versionOf(news.update) <= versionOf(held.update ?? { version: 0 })) delete news.update;
    if (news.deleted && versionOf(news.deleted) <= versionOf(held.deleted ?? { version: 0 })) delete news.deleted;
    this.held.set(id, { ...held, ...news });
    return 'held';
  }

  /** A message arriving for the first time, with whatever was held for it applied. */
  #withHeld(msg) {
    const held = this.held.get(msg.id);
    if (!held) return msg;
    this.held.delete(msg.id);
    let m = msg;
    if (held.reactions && !m.deleted) m = { ...m, reactions: held.reactions };
    if (held.update && versionOf(held.update) > m.version) m = { ...fromWire(held.update), clientId: m.clientId };
    if (held.deleted && versionOf(held.deleted) > m.version) {
      m = tombstone(m, versionOf(held.deleted), held.deleted.deleted_at);
    }
    return m;
  }

  /** Our newest message that can still be edited (Up in an empty composer edits it). */
  lastOwn() {
    let last = null;
    for (const m of this.messages.values()) {
      if (m.username === this.me && !m.deleted && (!last || m.id > last.id)) last = m;
    }
    return last;
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
      version: 0,
      editedAt: null,
      deleted: false,
      reactions: {},
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
