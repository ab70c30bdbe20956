import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
  errorText, formatList, formatNumber, LANGUAGES, pickLanguage, t,
} from '../../frontend/js/i18n.js';
import { PICKER } from '../../frontend/js/reactions.js';
import { catalog, FRONTEND, useCatalog } from './catalogs.mjs';

const read = (rel) => readFileSync(new URL(rel, FRONTEND), 'utf8');
const JS = readdirSync(new URL('js/', FRONTEND)).filter((f) => f.endsWith('.js'));
const HTML = read('index.html');
const PROTOCOL_MD = readFileSync(new URL('../docs/PROTOCOL.md', FRONTEND), 'utf8');

// Keys built at run time rather than written out: the values they are built from.
const STATES = ['connecting', 'online', 'reconnecting', 'offline']; // connection.js
const ERROR_CODES = ['invalid_json', 'unknown_action', 'invalid_message', 'rate_limited', 'internal',
  'not_found', 'forbidden'];

function keysInCode() {
  const keys = new Map(); // key -> where
  for (const file of JS) {
    for (const m of read(`js/${file}`).matchAll(/\bt\(\s*'([\w.]+)'/g)) keys.set(m[1], `js/${file}`);
  }
  for (const m of HTML.matchAll(/data-i18n(?:-[\w-]+)?="([\w.]+)"/g)) keys.set(m[1], 'index.html');
  return keys;
}

describe('the catalogs', () => {
  const en = catalog('en');
  const es = catalog('es');

  test('every language has exactly the same keys, and plural forms alike', () => {
    assert.deepEqual(LANGUAGES, ['en', 'es']);
    assert.deepEqual(Object.keys(es).sort(), Object.keys(en).sort());
    for (const key of Object.keys(en)) {
      assert.equal(typeof es[key], typeof en[key], key);
      assert.ok(en[key] && es[key], `${key} is empty`);
      // The same placeholders on both sides: a translation cannot drop the number.
      const holes = (s) => JSON.stringify(s).match(/\{\w+\}/g)?.sort() ?? [];
      assert.deepEqual([...new Set(holes(es[key]))], [...new Set(holes(en[key]))], key);
    }
  });

  test('every key the code and index.html use exists (and nothing in the catalogs is unused)', () => {
    const used = keysInCode();
    assert.ok(used.size > 50, `only ${used.size} keys found: is the pattern still right?`);
    for (const [key, where] of used) assert.ok(key in en, `${where} uses ${key}, not in en.json`);
    for (const state of STATES) assert.ok(`status.${state}` in en, state);
    for (const code of ERROR_CODES) {
      assert.ok(`error.${code}` in en, code);
      assert.ok(PROTOCOL_MD.includes(`\`${code}\``), `${code} is not a code of PROTOCOL.md`);
    }
    const dynamic = new Set([...STATES.map((s) => `status.${s}`), ...ERROR_CODES.map((c) => `error.${c}`),
      'error.no_reply', 'lang.en', 'lang.es', ...PICKER.map(([, key]) => key)]);
    const unused = Object.keys(en).filter((k) => !used.has(k) && !dynamic.has(k));
    assert.deepEqual(unused, []);
  });

  test('index.html has no words of its own: each is a data-i18n key', () => {
    const body = HTML.replace(/<!--[\s\S]*?-->/g, '');
    const words = [...body.matchAll(/>([^<]*)</g)].map((m) => m[1].trim()).filter((s) => /\p{L}/u.test(s));
    assert.deepEqual(words, []);
    for (const attr of ['placeholder', 'aria-label', 'title', 'alt']) {
      const literal = [...body.matchAll(new RegExp(`\\s${attr}="([^"]*)"`, 'g'))].filter((m) => /\p{L}/u.test(m[1]));
      assert.deepEqual(literal.map((m) => m[0]), [], attr);
    }
  });

  test('no words written in the code: text set in the DOM comes from t()', () => {
    for (const file of JS) {
      const src = read(`js/${file}`);
      // A literal (its `${…}` holes aside) with a letter in it, set as text: `#${room}` is fine.
      const literal = [...src.matchAll(/(?:textContent|placeholder|title)\s*=\s*(['"`])(.*?)\1/g)]
        .filter((m) => /\p{L}/u.test(m[2].replace(/\$\{[^}]*\}/g, '')));
      assert.deepEqual(literal.map((m) => m[0]), [], file);
    }
  });
});

describe('choosing and using a language', () => {
  test('the remembered choice, else the browser’s first language we have, else English', () => {
    assert.equal(pickLanguage('es', ['en-US']), 'es');
    assert.equal(pickLanguage(null, ['fr-FR', 'es-MX', 'en']), 'es');
    assert.equal(pickLanguage('de', ['EN-gb']), 'en');
    assert.equal(pickLanguage(null, ['fr', 'de']), 'en');
    assert.equal(pickLanguage(null, []), 'en');
  });

  test('placeholders, plurals and numbers follow the language', () => {
    useCatalog('es');
    assert.equal(t('typing.many', { count: 1234 }), '1234 personas están escribiendo…'.replace('1234', formatNumber(1234)));
    assert.equal(formatNumber(1234567), '1.234.567');
    assert.equal(formatList(['ana', 'bea']), 'ana y bea');
    assert.equal(t('join.tooLong', { max: 8 }), 'Usa como máximo 8 caracteres.');
    assert.equal(t('no.such.key'), 'no.such.key');
    useCatalog('en');
    assert.equal(formatNumber(1234567), '1,234,567');
    assert.equal(formatList(['ana', 'bea']), 'ana and bea');
  });

  test('server error codes are words in the language; an unknown code says what the server said', () => {
    useCatalog('es');
    assert.equal(errorText('rate_limited'), 'envías demasiado rápido, espera un momento');
    assert.equal(errorText('brand_new', 'odd thing'), 'el servidor dijo: odd thing');
    useCatalog('en');
    assert.equal(errorText('forbidden'), 'only its author can do that');
  });
});
