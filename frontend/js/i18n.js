// The page's words and formats, in the reader's language. No DOM: localize.js applies
// them to the page. Every string the page shows is a key in a catalog per language
// (frontend/i18n/<lang>.json); `{name}` in a string is filled from `params`, and a
// string that depends on a number is an object of Intl.PluralRules categories
// ({"one": "…", "other": "…"}) picked by `params.count`. Numbers in params are
// formatted for the language. Dates, times, lists and numbers go through Intl.

export const LANGUAGES = ['en', 'es'];
export const DEFAULT_LANGUAGE = 'en';
export const STORAGE_KEY = 'chat.lang'; // localStorage holds the chosen language, nothing else

let lang = DEFAULT_LANGUAGE;
let catalog = {};
let fmt = formatters(lang);

/**
 * The language to use: the one the reader chose before (if still offered), else the first
 * of the browser's languages we have ("es-MX" → "es"), else English.
 */
export function pickLanguage(stored, browserLanguages = []) {
  if (LANGUAGES.includes(stored)) return stored;
  for (const tag of browserLanguages) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return DEFAULT_LANGUAGE;
}

/** Make `code`'s catalog the current one. */
export function setLanguage(code, strings) {
  if (!LANGUAGES.includes(code)) throw new Error(`no catalog for language ${code}`);
  lang = code;
  catalog = strings;
  fmt = formatters(code);
}

export function language() {
  return lang;
}

/** Fetch a language's catalog (relative to the page, as config.json is). */
export async function loadCatalog(code, fetchImpl = globalThis.fetch) {
  const r = await fetchImpl(`i18n/${code}.json`);
  if (!r.ok) throw new Error(`i18n/${code}.json: HTTP ${r.status}`);
  return r.json();
}

/** The string for `key`, its `{placeholders}` filled from `params`. An unknown key shows as itself. */
export function t(key, params = {}) {
  let s = catalog[key];
  if (s === undefined) return key;
  if (typeof s === 'object') s = s[fmt.plural.select(params.count ?? 0)] ?? s.other;
  return s.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!(name in params)) return whole;
    const v = params[name];
    return typeof v === 'number' ? fmt.number.format(v) : String(v);
  });
}

/** Whether the current catalog has `key` (for codes the server may add later). */
export function has(key) {
  return key in catalog;
}

function formatters(code) {
  return {
    plural: new Intl.PluralRules(code),
    number: new Intl.NumberFormat(code),
    time: new Intl.DateTimeFormat(code, { hour: '2-digit', minute: '2-digit' }),
    full: new Intl.DateTimeFormat(code, { dateStyle: 'full', timeStyle: 'medium' }),
    day: new Intl.DateTimeFormat(code, { weekday: 'long', month: 'long', day: 'numeric' }),
    list: new Intl.ListFormat(code, { style: 'long', type: 'conjunction' }),
  };
}

export const formatTime = (date) => fmt.time.format(date);
export const formatFull = (date) => fmt.full.format(date);
export const formatDay = (date) => fmt.day.format(date);
export const formatNumber = (n) => fmt.number.format(n);
export const formatList = (items) => fmt.list.format(items);

/** An error code from the server as words: `error.<code>`, or the generic one. */
export function errorText(code, serverMessage = '') {
  const key = `error.${code}`;
  if (has(key)) return t(key);
  return t('error.other', { message: serverMessage || String(code ?? '') });
}
