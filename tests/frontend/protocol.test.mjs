import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { codePoints, frames, normalizeUsername, rules, socketUrl } from '../../frontend/js/protocol.js';
import { useCatalog } from './catalogs.mjs';

useCatalog('en');

// The shape of config.json's `protocol` (functions/chat/protocol.py, client_rules()).
// Deliberately not the server's numbers: the page must follow whatever it is given.
const CONFIG = {
  usernameMaxLength: 8,
  usernamePattern: '^[\\p{L}\\p{Nd}_.-]+$',
  roomMaxLength: 6,
  roomPattern: '^[a-z0-9-]+$',
  defaultRoom: 'lobby',
  textMaxLength: 10,
  clientIdMaxLength: 64,
  historyDefaultLimit: 25,
  historyMaxLimit: 100,
};
const r = rules(CONFIG);

describe('rules from config.json', () => {
  test('username: letters and Nd digits of any script, _ . -, up to the configured length', () => {
    for (const ok of ['ana_1', 'josé', 'Ωmega', 'a.b-c', '١٢٣']) assert.equal(r.usernameProblem(ok), '', ok);
    assert.match(r.usernameProblem(''), /Enter a display name/);
    assert.match(r.usernameProblem('<b>'), /only letters, digits/);
    assert.match(r.usernameProblem('a b'), /only letters, digits/);
    assert.match(r.usernameProblem('²'), /only letters, digits/); // No, not Nd
    assert.match(r.usernameProblem('Ⅻ'), /only letters, digits/); // Nl, not Nd
    assert.equal(r.usernameProblem('a'.repeat(8)), '');
    assert.match(r.usernameProblem('a'.repeat(9)), /at most 8 characters/);
  });

  test('lengths count code points, as the server does (the pattern has the u flag)', () => {
    // 𝒜 is one code point and two UTF-16 units.
    assert.equal(r.usernameProblem('𝒜'.repeat(8)), '');
    assert.match(r.usernameProblem('𝒜'.repeat(9)), /at most 8/);
    assert.equal(codePoints('𝒜😀'), 2);
  });

  test('room: the configured pattern, length and default', () => {
    assert.equal(r.normalizeRoom(''), 'lobby');
    assert.equal(r.normalizeRoom('  General '), 'general');
    assert.equal(r.roomProblem('a-1'), '');
    assert.match(r.roomProblem('a_1'), /lowercase letters/);
    assert.match(r.roomProblem('abcdefg'), /at most 6 characters/);
  });

  test('text: trimmed, not empty, at most textMaxLength code points', () => {
    assert.deepEqual(r.checkText('  hola \n'), { text: 'hola', problem: '' });
    assert.equal(r.checkText('   ').problem, 'empty');
    assert.equal(r.checkText('😀'.repeat(10)).problem, '');
    assert.equal(r.checkText('😀'.repeat(11)).problem, 'Too long: 11/10 characters.');
  });

  test('the form hints are written from the same numbers, in the current language', () => {
    assert.equal(r.usernameHint, '1–8 letters or digits; _ . - allowed, no spaces.');
    assert.equal(r.roomHint, 'Lowercase letters, digits and -; empty means lobby.');
    useCatalog('es');
    assert.equal(r.usernameHint, 'De 1 a 8 letras o dígitos; se admiten _ . -, sin espacios.');
    assert.equal(r.usernameProblem('a b'), 'Usa solo letras, dígitos, _ . y - (sin espacios).');
    assert.equal(r.checkText('😀'.repeat(11)).problem, 'Demasiado largo: 11/10 caracteres.');
    useCatalog('en');
    assert.equal(r.textMaxLength, 10);
    assert.equal(r.historyLimit, 25);
  });

  test('a config without the rules is refused, saying what is missing', () => {
    assert.throws(() => rules(undefined), /no protocol rules/);
    const partial = { ...CONFIG };
    delete partial.roomPattern;
    assert.throws(() => rules(partial), /protocol\.roomPattern is missing/);
  });
});

test('usernames are trimmed and NFC-normalized', () => {
  assert.equal(normalizeUsername(' jose\u0301 '), 'jos\u00e9');
});

test('frames', () => {
  assert.deepEqual(frames.history(null, 25), { action: 'history', limit: 25 });
  assert.deepEqual(frames.history('01ABC', 25), { action: 'history', before: '01ABC', limit: 25 });
  assert.deepEqual(frames.newMessage('hi', 'c1'), { action: 'new_message', text: 'hi', client_id: 'c1' });
  assert.equal(socketUrl('ws://h:1/local', 'josé', 'a-b'), 'ws://h:1/local?username=jos%C3%A9&room=a-b');
});
