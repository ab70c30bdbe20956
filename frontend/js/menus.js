// One small popup menu at a time (a message's actions, the reaction picker), reachable
// and usable from the keyboard: the trigger is a button with aria-haspopup/expanded;
// opening focuses the first item; arrows, Home and End move; Enter or Space picks;
// Escape closes and gives the focus back to the trigger; Tab or a click elsewhere closes.

import { el } from './dom.js';

let current = null; // {popup, trigger}

/**
 * Open a menu under `trigger`. `items`: [{text, label?, onSelect}]. `label` names the
 * menu for screen readers; `horizontal` lays it out in a row (the picker).
 */
export function openMenu(trigger, items, { label, horizontal = false, className = '' }) {
  closeMenu({ focus: false });
  const popup = el('div', `menu ${className}`.trim());
  popup.setAttribute('role', 'menu');
  popup.setAttribute('aria-label', label);
  if (horizontal) popup.setAttribute('aria-orientation', 'horizontal');
  const buttons = items.map((item) => {
    const b = el('button', 'menuitem', item.text);
    b.type = 'button';
    b.setAttribute('role', 'menuitem');
    b.tabIndex = -1;
    if (item.label) {
      b.setAttribute('aria-label', item.label);
      b.title = item.label;
    }
    b.addEventListener('click', (ev) => {
      ev.stopPropagation();
      closeMenu();
      item.onSelect();
    });
    return b;
  });
  popup.append(...buttons);
  popup.addEventListener('keydown', (ev) => {
    const i = buttons.indexOf(document.activeElement);
    const next = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[ev.key];
    if (next) buttons[(i + next + buttons.length) % buttons.length].focus();
    else if (ev.key === 'Home') buttons[0].focus();
    else if (ev.key === 'End') buttons[buttons.length - 1].focus();
    else if (ev.key === 'Escape') closeMenu();
    else if (ev.key === 'Tab') closeMenu({ focus: false });
    else return;
    ev.preventDefault();
    ev.stopPropagation();
  });
  trigger.after(popup);
  trigger.setAttribute('aria-expanded', 'true');
  current = { popup, trigger };
  buttons[0]?.focus();
}

export function closeMenu({ focus = true } = {}) {
  if (!current) return;
  const { popup, trigger } = current;
  current = null;
  popup.remove();
  trigger.setAttribute('aria-expanded', 'false');
  if (focus && trigger.isConnected) trigger.focus();
}

/** Make `button` open a menu built by `items()` (called at opening time). */
export function menuButton(button, items, options) {
  button.setAttribute('aria-haspopup', 'menu');
  button.setAttribute('aria-expanded', 'false');
  button.addEventListener('click', (ev) => {
    ev.stopPropagation();
    if (current?.trigger === button) closeMenu();
    else openMenu(button, items(), options());
  });
  button.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      openMenu(button, items(), options());
    }
  });
}

export function wireMenus() {
  document.addEventListener('click', (ev) => {
    if (current && !current.popup.contains(ev.target)) closeMenu({ focus: false });
  });
}
