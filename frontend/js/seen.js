// What the reader has actually seen: an IntersectionObserver on the messages, counted
// only while the tab is visible. The newest message on screen is handed to the read
// marker (readmarker.js), which sends `mark_read`.

import { ui } from './dom.js';

export class SeenWatcher {
  #observer;
  #onScreen = new Set(); // ids of the messages on screen now
  #onSeen;

  /** `onSeen(id)`: the newest message on screen while the tab is visible. */
  constructor(onSeen) {
    this.#onSeen = onSeen;
    this.#observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const id = e.target.dataset.id;
        if (!id) continue;
        // Half of it in view, or a message taller than half the view filling it.
        const enough = e.intersectionRatio >= 0.5 ||
          (e.isIntersecting && e.intersectionRect.height >= (e.rootBounds?.height ?? Infinity) / 2);
        if (enough) this.#onScreen.add(id);
        else this.#onScreen.delete(id);
      }
      this.report();
    }, { root: ui.scroller, threshold: [0, 0.5, 1] });
  }

  /** Watch the confirmed messages now in the log (watching one twice is a no-op). */
  watch() {
    for (const node of ui.log.querySelectorAll('.msg[data-id]')) this.#observer.observe(node);
  }

  /** Tell the marker about the newest message on screen, if the reader can see the tab. */
  report() {
    if (document.visibilityState !== 'visible' || !this.#onScreen.size) return;
    let newest = '';
    for (const id of this.#onScreen) if (id > newest) newest = id;
    this.#onSeen(newest);
  }

  stop() {
    this.#observer.disconnect();
    this.#onScreen.clear();
  }
}
