// Loading a room's past: the newest page on joining, older pages on request, and the
// catch-up after a reconnect. No DOM and no socket here: `send(frame)` is injected (it
// returns false when the socket is not open), and so are the timers, so the whole state
// machine runs under `node --test` with a fake clock.
//
// `history` replies carry no request id, so there is one request on the wire at a time
// and a reply belongs to the request in flight. The kinds:
//   latest   the newest page; it decides "load older" (its cursor) and "start of the room"
//   older    the page before `olderCursor`, when the reader asks for it
//   catchup  after a reconnect: pages back from the newest message until the last id we
//            had seen, at most CATCH_UP_MAX_PAGES pages

import { frames } from './protocol.js';

export const HISTORY_TIMEOUT_MS = 15000;
export const RETRY_AFTER_MS = 2000;
export const MAX_RETRIES = 3;
export const CATCH_UP_MAX_PAGES = 20; // beyond 1,000 missed messages, stop paging back

export class HistoryLoader {
  olderCursor = null; // `before` for "load older"; null until a page says, or at the start
  reachedStart = false; // a `latest` or `older` page came back with `before: null`
  inFlight = null; // the request on the wire, or null
  queue = [];
  #io; // what the loader may do: send a frame, set a timer, say it changed
  #pageSize;
  #retryTimers = new Set();
  #stopped = false;

  /**
   * `send(frame)` returns false when the socket is not open; `pageSize` is each request's
   * `limit`; `onChange()` runs whenever the request on the wire may have changed (the
   * "load older" button follows it); `timers` has setTimeout/clearTimeout.
   */
  constructor({ send, pageSize, onChange = () => {}, timers = globalThis }) {
    this.#io = { send, onChange, timers };
    this.#pageSize = pageSize;
  }

  /** What "load older" can do: there is a cursor, and the start is not reached. */
  get canLoadOlder() {
    return !this.reachedStart && Boolean(this.olderCursor);
  }

  get loadingOlder() {
    return this.inFlight?.kind === 'older';
  }

  /**
   * A socket opened: ask for the newest page, or catch up to `lastId` (the newest id we
   * hold). Only a `latest` page decides "load older" and "start of the room", so until
   * one has arrived (a live message or our own echo may have come first) ask for it
   * again; overlaps merge by id.
   */
  connected(lastId) {
    if (lastId && (this.olderCursor || this.reachedStart)) {
      this.#request({ kind: 'catchup', target: lastId, pages: 1 });
    } else {
      this.#request({ kind: 'latest' });
    }
  }

  /** The reader asked for older messages. False when there is nothing to ask or it is asked already. */
  loadOlder() {
    if (!this.olderCursor) return false;
    if (this.loadingOlder || this.queue.some((r) => r.kind === 'older')) return false;
    this.#request({ kind: 'older', before: this.olderCursor });
    return true;
  }

  /**
   * A `history` event arrived. Returns null when no request was in flight (a late reply
   * after a timeout, say: there is nobody to give it to), else `{kind, messages, before}`
   * for the caller to merge and render. The next catch-up page, if any, is already on
   * its way when this returns.
   */
  received(data) {
    const req = this.inFlight;
    if (!req) return null;
    this.#settle();
    const messages = Array.isArray(data?.messages) ? data.messages : [];
    const before = data?.before ?? null;
    if (req.kind === 'catchup') {
      // The older cursor still describes the far end of what we hold: keep it.
      const oldest = messages[0]?.id;
      if (before && oldest && oldest > req.target && req.pages < CATCH_UP_MAX_PAGES) {
        this.queue.unshift({ kind: 'catchup', target: req.target, before, pages: req.pages + 1 });
      }
    } else {
      this.olderCursor = before;
      this.reachedStart = before === null;
    }
    this.#pump();
    return { kind: req.kind, messages, before };
  }

  /**
   * The request in flight failed (an error event, or no reply in time). "Load older" has
   * a button to press again; the first page and the catch-up do not, so they retry by
   * themselves a few times, RETRY_AFTER_MS later (a new socket starts them over anyway).
   * Returns the kind that failed, or null when nothing was in flight.
   */
  failed({ retry = true } = {}) {
    const req = this.inFlight;
    if (!req) return null;
    this.#settle();
    const retries = req.retries ?? 0;
    if (retry && req.kind !== 'older' && retries < MAX_RETRIES) {
      const again = { ...req, retries: retries + 1 };
      const handle = this.#io.timers.setTimeout(() => {
        this.#retryTimers.delete(handle);
        this.#request(again);
      }, RETRY_AFTER_MS);
      this.#retryTimers.add(handle);
    }
    this.#pump();
    return req.kind;
  }

  /**
   * The gateway refused a frame without saying which (its throttle answer): the request
   * in flight, unless its page comes first, is asked again `delayMs` from now, first in
   * line. A page that does come after all is taken as the answer; the repeat's page then
   * finds no request in flight and is dropped (pages merge by id anyway).
   */
  throttled(delayMs) {
    const req = this.inFlight;
    if (!req || req.throttled) return;
    this.#io.timers.clearTimeout(req.timer);
    req.throttled = true;
    req.timer = this.#io.timers.setTimeout(() => {
      if (this.inFlight !== req) return;
      this.inFlight = null;
      const again = { ...req, throttled: false };
      delete again.timer;
      this.queue.unshift(again);
      this.#pump();
    }, delayMs);
  }

  /** The socket closed: whatever was asked on it will never be answered. */
  disconnected() {
    this.#settle();
    this.queue = [];
    for (const handle of this.#retryTimers) this.#io.timers.clearTimeout(handle);
    this.#retryTimers.clear();
    this.#io.onChange();
  }

  /** The room was left: nothing more is sent, no timer stays behind. */
  stop() {
    this.#stopped = true;
    this.disconnected();
  }

  #request(req) {
    if (this.#stopped) return;
    this.queue.push(req);
    this.#pump();
  }

  #settle() {
    if (this.inFlight) this.#io.timers.clearTimeout(this.inFlight.timer);
    this.inFlight = null;
  }

  #pump() {
    if (this.inFlight || !this.queue.length || this.#stopped) {
      this.#io.onChange();
      return;
    }
    const req = this.queue.shift();
    // Offline: the request is dropped; the next `connected()` asks again.
    if (this.#io.send(frames.history(req.before, this.#pageSize))) {
      req.timer = this.#io.timers.setTimeout(() => this.failed(), HISTORY_TIMEOUT_MS);
      this.inFlight = req;
    }
    this.#io.onChange();
  }
}
