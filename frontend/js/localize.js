// The page in the reader's language: index.html's words (data-i18n* attributes), the
// language switch in the header, and the choice remembered (localStorage holds the
// language code only). The words themselves are in frontend/i18n/<lang>.json.

import { $ } from './dom.js';
import {
  language, LANGUAGES, loadCatalog, pickLanguage, setLanguage, STORAGE_KEY, t,
} from './i18n.js';

const ATTRIBUTES = ['placeholder', 'aria-label', 'title'];
const listeners = new Set();

/** Run `fn` after every language change (whatever shows words made in code re-renders). */
export function onLanguageChange(fn) {
  listeners.add(fn);
}

/** index.html's own words, in the current language. */
export function localizeDocument(root = document) {
  document.documentElement.lang = language();
  for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const attr of ATTRIBUTES) {
    for (const node of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      node.setAttribute(attr, t(node.getAttribute(`data-i18n-${attr}`)));
    }
  }
}

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage refused (privacy settings): the browser's language then
  }
}

/** Switch to `code`: fetch its catalog, re-render, remember it. */
export async function useLanguage(code, { remember = true } = {}) {
  setLanguage(code, await loadCatalog(code));
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, code);
    } catch { /* not remembered, still switched */ }
  }
  localizeDocument();
  $('lang').value = code;
  for (const fn of listeners) fn();
}

/** At start: the remembered language, else the browser's; and the switch wired. */
export async function startLanguage() {
  const select = $('lang');
  select.addEventListener('change', () => {
    if (LANGUAGES.includes(select.value)) useLanguage(select.value);
  });
  const code = pickLanguage(stored(), navigator.languages ?? [navigator.language]);
  try {
    await useLanguage(code, { remember: false });
  } catch {
    if (code !== 'en') await useLanguage('en', { remember: false });
  }
}
