// The page's catalogs as the tests load them (the page fetches them; here they are files).

import { readFileSync } from 'node:fs';

import { setLanguage } from '../../frontend/js/i18n.js';

export const FRONTEND = new URL('../../frontend/', import.meta.url);

export function catalog(lang) {
  return JSON.parse(readFileSync(new URL(`i18n/${lang}.json`, FRONTEND), 'utf8'));
}

/** Make `lang` the current language, as the page does after fetching its catalog. */
export function useCatalog(lang = 'en') {
  setLanguage(lang, catalog(lang));
}
