// The gateway's own throttle answer, {"message": "Too Many Requests", "connectionId",
// "requestId"} (PROTOCOL.md): no `type`, no `client_id`, so it cannot say which frame it
// refused. The page treats it as "slow down": each state machine with a frame sent and
// not answered yet (outbox.js, history.js, requests.js) sends it again after the delay
// this gives, a new_message under the same client_id, so it can never post twice.
//
// The delay: 0.5 s doubling up to 8 s, "equal jitter" (half fixed, half random) so the
// tabs of a busy room do not all come back at the same instant. Several throttle answers
// within one wait (a burst of refused frames) are one slow-down, not one doubling each.
// An answer to any frame means the gateway is serving us again: the next wait is short.

export const SLOW_DOWN_BASE_MS = 500;
export const SLOW_DOWN_MAX_MS = 8000;

export class SlowDown {
  #attempt = 0;
  #until = 0;
  #now;
  #random;

  constructor({ now = () => Date.now(), random = Math.random } = {}) {
    this.#now = now;
    this.#random = random;
  }

  /** A throttle answer arrived: how long to wait before sending the unanswered frames again. */
  hit() {
    const now = this.#now();
    if (now < this.#until) return this.#until - now; // the same burst: the same wait
    const ceiling = Math.min(SLOW_DOWN_MAX_MS, SLOW_DOWN_BASE_MS * 2 ** this.#attempt);
    const delay = ceiling / 2 + this.#random() * (ceiling / 2);
    this.#attempt += 1;
    this.#until = now + delay;
    return delay;
  }

  /** A frame was answered: the gateway serves us again. */
  served() {
    this.#attempt = 0;
  }

  /** Only a throttle answer's own message is this answer (API Gateway's 500 frame is not). */
  static isThrottle(data) {
    return data?.type === undefined && data?.message === 'Too Many Requests';
  }
}
