// The reader's place in a room: the read marker (the last message marked read, by this
// tab or another of the same user), where the "New messages" divider goes when the room
// is opened, and `mark_read` sent as messages are actually seen. No DOM: the page says
// what it has seen (an IntersectionObserver, while the tab is visible); `send` and the
// timers are injected.
//
// The marker only moves forward (ids sort by time). Seeing many messages in a row costs
// one `mark_read`, for the newest, DEBOUNCE_MS after the first.

import { frames } from './protocol.js';

export const DEBOUNCE_MS = 400;

export class ReadMarker {
  marker = null; // the newest id read, or null (never read anything here)
  dividerAfter = null; // the marker when the room was opened: "New messages" goes after it
  #opened = false;
  #sent = null; // the newest id we sent mark_read for
  #want = null; // the newest id seen and not sent yet
  #timer = 0;
  #io;

  constructor({ send, timers = globalThis, onChange = () => {} }) {
    this.#io = { send, timers, onChange };
  }

  /**
   * A history page's `read_marker`, with its messages (wire shape). The first page, on
   * opening the room, places the divider: after the marker, if someone else wrote since.
   */
  fromHistory(id, messages = [], me = null) {
    if (!this.#opened) {
      this.#opened = true;
      const marker = typeof id === 'string' ? id : null;
      const news = marker && messages.some((m) => m?.id > marker && m.username !== me && m.deleted !== true);
      this.dividerAfter = news ? marker : null;
    }
    this.#forward(id);
  }

  /** Another tab of ours moved the marker (a `read_marker` event). */
  fromOtherTab(id) {
    this.#forward(id);
  }

  /** The reader has seen the message `id` (on screen, tab visible). */
  seen(id) {
    if (typeof id !== 'string' || (this.marker && id <= this.marker)) return;
    this.#forward(id);
    if (this.#sent && id <= this.#sent) return;
    this.#want = id;
    if (!this.#timer) this.#timer = this.#io.timers.setTimeout(() => this.flush(), DEBOUNCE_MS);
  }

  /** Send what is waiting now (also when the socket comes back). True when a mark_read went. */
  flush() {
    this.#io.timers.clearTimeout(this.#timer);
    this.#timer = 0;
    const id = this.#want;
    if (!id) return false;
    if (!this.#io.send(frames.markRead(id))) return false; // offline: kept for the next flush
    this.#sent = id;
    this.#want = null;
    return true;
  }

  /** After the gateway's throttle answer: the last mark_read may have been dropped; repeating it is harmless. */
  throttled(delayMs) {
    if (!this.#sent || this.#timer) return;
    if (!this.#want) this.#want = this.#sent;
    this.#sent = null;
    this.#timer = this.#io.timers.setTimeout(() => this.flush(), delayMs);
  }

  /** How many of `messages` (in the store's shape) are after the marker and not ours. */
  unread(messages, me) {
    let n = 0;
    for (const m of messages) if (m.id && (!this.marker || m.id > this.marker) && m.username !== me && !m.deleted) n += 1;
    return n;
  }

  stop() {
    this.#io.timers.clearTimeout(this.#timer);
    this.#timer = 0;
  }

  #forward(id) {
    if (typeof id !== 'string' || (this.marker && id <= this.marker)) return;
    this.marker = id;
    this.#io.onChange();
  }
}
