// Our messages on their way to the server, keyed by client_id, shown until their echo
// confirms them. No DOM and no socket here: `send(frame)` is injected (false when the
// socket is not open), and so are the timers.
//
// One new_message in flight at a time. The server may handle frames of one connection
// concurrently (one Lambda invocation each), so a burst sent at once can be stored, and
// ordered by id, out of the order it was typed; waiting for each answer keeps our own
// messages in the order we wrote them. The one in flight is settled by its echo, by an
// error naming its client_id, or by CONFIRM_TIMEOUT_MS of silence; then the next goes.
// Resending with the same client_id is always safe: the server stores each client_id
// once and echoes the original, also over a new connection. So is resending the one in
// flight after the gateway's throttle answer (throttled(), see slowdown.js).

import { frames } from './protocol.js';

export const CONFIRM_TIMEOUT_MS = 15000; // no echo by then: mark failed, offer a retry

export class Outbox {
  /** client_id -> {clientId, text, state: 'queued'|'sending'|'failed', error, createdAt} */
  entries = new Map();
  inFlight = null; // the client_id awaiting its answer
  #me; // our username: only our own echoes confirm an entry
  #io; // send(frame) (false when the socket is not open), timers, onChange() after any change
  #online = false;
  #stopped = false;
  #confirmTimer = 0;
  #resendTimer = 0; // the one in flight goes again when this fires (after a throttle answer)

  constructor({ me, send, onChange = () => {}, timers = globalThis }) {
    this.#me = me;
    this.#io = { send, onChange, timers };
  }

  get size() {
    return this.entries.size;
  }

  /** A message the user just wrote: shown at once, sent when its turn comes. */
  add(clientId, text, now = new Date()) {
    this.entries.set(clientId, { clientId, text, state: 'queued', error: '', createdAt: now.toISOString() });
    this.#pump();
  }

  /** A socket opened: messages typed while offline, or cut off by the drop, go now. */
  connected() {
    this.#online = true;
    this.#pump();
  }

  /** The socket closed: the message in flight will never be answered there, so it waits for the next. */
  disconnected() {
    this.#online = false;
    const clientId = this.inFlight;
    if (!clientId) return;
    this.#release();
    this.#setState(clientId, 'queued');
    this.#io.onChange();
  }

  /**
   * Messages that arrived (a `message` event, or a history page: a page may confirm the
   * one in flight before its echo does). Our own, by client_id, leave the outbox.
   */
  confirm(messages) {
    let changed = false;
    for (const m of messages) {
      if (!m || typeof m.id !== 'string' || m.username !== this.#me || !m.client_id) continue;
      if (!this.entries.delete(m.client_id)) continue;
      changed = true;
      if (m.client_id === this.inFlight) this.#release();
    }
    if (changed) this.#pump();
  }

  /**
   * An `error` event naming a client_id; `reason` is its code (the view says it in words).
   * False when it is not one of ours (not an outbox error).
   */
  rejected(clientId, reason) {
    if (!this.entries.has(clientId)) return false;
    if (clientId === this.inFlight) this.#release();
    this.#setState(clientId, 'failed', reason);
    this.#pump();
    return true;
  }

  /** The user pressed Retry: the same client_id goes again, so the server stores it at most once. */
  retry(clientId) {
    if (this.entries.get(clientId)?.state !== 'failed') return false;
    this.#setState(clientId, 'queued');
    this.#pump();
    return true;
  }

  /**
   * The gateway refused a frame without saying which: the one in flight, unless its
   * answer comes first, is sent again (same client_id) `delayMs` from now. Its confirm
   * timeout starts over then. Nothing else goes meanwhile: one in flight at a time.
   */
  throttled(delayMs) {
    const clientId = this.inFlight;
    if (!clientId || this.#resendTimer) return;
    this.#io.timers.clearTimeout(this.#confirmTimer);
    this.#confirmTimer = 0;
    this.#resendTimer = this.#io.timers.setTimeout(() => {
      this.#resendTimer = 0;
      const entry = this.entries.get(clientId);
      if (this.inFlight !== clientId || !entry) return;
      if (this.#online && this.#io.send(frames.newMessage(entry.text, clientId))) {
        this.#confirmTimer = this.#io.timers.setTimeout(() => this.#timedOut(), CONFIRM_TIMEOUT_MS);
      } else {
        this.#release(); // the socket is gone: connected() sends it again
        this.#setState(clientId, 'queued');
        this.#io.onChange();
      }
    }, delayMs);
  }

  /** The room was left. */
  stop() {
    this.#stopped = true;
    this.#online = false;
    this.#release();
  }

  #pump() {
    if (!this.inFlight && this.#online && !this.#stopped) {
      const next = [...this.entries.values()].find((e) => e.state === 'queued');
      if (next && this.#io.send(frames.newMessage(next.text, next.clientId))) {
        this.inFlight = next.clientId;
        next.state = 'sending';
        this.#confirmTimer = this.#io.timers.setTimeout(() => this.#timedOut(), CONFIRM_TIMEOUT_MS);
      }
    }
    this.#io.onChange();
  }

  #timedOut() {
    const clientId = this.inFlight;
    this.#confirmTimer = 0;
    this.inFlight = null;
    this.#setState(clientId, 'failed', 'no_reply');
    this.#pump();
  }

  #release() {
    if (this.#confirmTimer) this.#io.timers.clearTimeout(this.#confirmTimer);
    if (this.#resendTimer) this.#io.timers.clearTimeout(this.#resendTimer);
    this.#confirmTimer = 0;
    this.#resendTimer = 0;
    this.inFlight = null;
  }

  #setState(clientId, state, error = '') {
    const entry = this.entries.get(clientId);
    if (!entry) return false;
    entry.state = state;
    entry.error = error;
    return true;
  }
}
