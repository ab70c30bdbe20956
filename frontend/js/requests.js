// Our edits, deletes and reactions on their way: each frame carries a client_id (an
// `error` it causes echoes it) and waits for its answer, the room's `message_updated`,
// `message_deleted` or `reactions` event for that message. No DOM, no socket: `send`,
// the timers and `onFailed(entry, code)` are injected.
//
// Unanswered frames are sent again after the gateway's throttle answer (throttled(), see
// slowdown.js) and over a new socket (connected()): an edit sent twice stores the same
// text twice, a delete sent twice is answered `not_found` (taken as done), a reaction
// sent twice changes nothing. A react that changes nothing gets no answer at all, so an
// entry is forgotten after ANSWER_TIMEOUT_MS; an edit or delete then counts as failed.

import { frames } from './protocol.js';

export const ANSWER_TIMEOUT_MS = 15000;

const ANSWERED_BY = {
  message_updated: ['edit'],
  message_deleted: ['edit', 'delete', 'react'], // a deleted message takes no more of them
  reactions: ['react'],
};

export class Requests {
  pending = new Map(); // client_id -> {clientId, kind, id, frame, timer}
  #io;
  #newId;
  #online = true;
  #resendTimer = 0;

  #me;

  constructor({ me, send, newId, onFailed = () => {}, timers = globalThis }) {
    this.#io = { send, onFailed, timers };
    this.#newId = newId;
    this.#me = me;
  }

  edit(id, text) {
    const clientId = this.#newId();
    return this.#start('edit', id, frames.editMessage(id, text, clientId), clientId);
  }

  remove(id) {
    const clientId = this.#newId();
    return this.#start('delete', id, frames.deleteMessage(id, clientId), clientId);
  }

  react(id, emoji, on) {
    // A newer toggle of the same emoji supersedes one still on its way.
    for (const e of this.pending.values()) {
      if (e.kind === 'react' && e.id === id && e.frame.emoji === emoji) this.#settle(e.clientId);
    }
    const clientId = this.#newId();
    return this.#start('react', id, frames.react(id, emoji, on, clientId), clientId);
  }

  #start(kind, id, frame, clientId) {
    const entry = { clientId, kind, id, frame, timer: 0 };
    this.pending.set(clientId, entry);
    entry.timer = this.#io.timers.setTimeout(() => this.#timedOut(clientId), ANSWER_TIMEOUT_MS);
    if (this.#online) this.#io.send(frame); // offline: connected() sends it
    return clientId;
  }

  /** A room event: the frames it answers are done. */
  event(data) {
    const kinds = ANSWERED_BY[data?.type];
    if (!kinds) return;
    for (const e of [...this.pending.values()]) {
      if (e.id === data.id && kinds.includes(e.kind) && this.#answers(e, data)) this.#settle(e.clientId);
    }
  }

  /** A `reactions` event answers our toggle only once the summary shows it (others react too). */
  #answers(entry, data) {
    if (data.type !== 'reactions' || entry.kind !== 'react') return true;
    const now = data.reactions?.[entry.frame.emoji];
    if (now?.clipped && entry.frame.on) return true; // our name may be among the ones cut
    return (now?.users ?? []).includes(this.#me) === entry.frame.on;
  }

  /** An `error` naming a client_id. False when it is not one of ours. */
  rejected(clientId, code) {
    const entry = this.pending.get(clientId);
    if (!entry) return false;
    this.#settle(clientId);
    // Deleting what is already gone (a delete sent twice) is what was asked.
    if (!(entry.kind === 'delete' && code === 'not_found')) this.#io.onFailed(entry, code);
    return true;
  }

  /** The gateway refused a frame without saying which: every unanswered one goes again. */
  throttled(delayMs) {
    if (this.#resendTimer || !this.pending.size) return;
    this.#resendTimer = this.#io.timers.setTimeout(() => {
      this.#resendTimer = 0;
      if (this.#online) for (const e of this.pending.values()) this.#io.send(e.frame);
    }, delayMs);
  }

  connected() {
    this.#online = true;
    for (const e of this.pending.values()) this.#io.send(e.frame);
  }

  disconnected() {
    this.#online = false;
    this.#io.timers.clearTimeout(this.#resendTimer);
    this.#resendTimer = 0;
  }

  stop() {
    this.disconnected();
    for (const clientId of [...this.pending.keys()]) this.#settle(clientId);
  }

  #settle(clientId) {
    const entry = this.pending.get(clientId);
    if (!entry) return;
    this.#io.timers.clearTimeout(entry.timer);
    this.pending.delete(clientId);
  }

  #timedOut(clientId) {
    const entry = this.pending.get(clientId);
    if (!entry) return;
    this.pending.delete(clientId);
    if (entry.kind !== 'react') this.#io.onFailed(entry, 'no_reply');
  }
}
