/**
 * The Godot addon's README stays true to its code: every signal `mesh_client.gd` declares has a
 * row of the signals table (with its arguments), every exported setting a row of the settings
 * table (with its default), and every error code of `errors.gd` is named; every script of the
 * addon is of one concern and short (about 300 lines at most).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

const addon = new URL('../../clients/godot/addons/mesh_client/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, addon), 'utf8');
const readme = read('README.md');
const client = read('mesh_client.gd');

test('every signal of mesh_client.gd has a row in the README, with its arguments', () => {
  const signals = [...client.matchAll(/^signal (\w+\(.*?\))/gm)].map((m) => m[1]!);
  assert.ok(signals.length >= 14, `parsed ${signals.length} signals`);
  assert.deepEqual(signals.filter((s) => !readme.includes(`| \`${s}\` |`)), []);
});

test('every exported setting has a row in the README, with its default', () => {
  const settings = [...client.matchAll(/^export\(\w+\) var (\w+) = (.+?)(?:\s+#.*)?$/gm)].map((m) => ({ name: m[1]!, value: m[2]!.trim() }));
  assert.ok(settings.length >= 15, `parsed ${settings.length} settings`);
  const rows = readme.split('\n').filter((line) => line.startsWith('| `'));
  const missing = settings.filter(({ name, value }) => {
    const row = rows.find((r) => r.split('|')[1]!.includes(`\`${name}\``));
    const shown = value === '""' ? '`""`' : value.replace(/^"(.*)"$/, '$1');
    return row === undefined || !row.split('|')[2]!.includes(shown);
  });
  assert.deepEqual(missing, []);
});

test('every error code of errors.gd is named in the README', () => {
  const codes = [...read('errors.gd').matchAll(/^const \w+ = "(\w+)"/gm)].map((m) => m[1]!);
  assert.ok(codes.length >= 11, `parsed ${codes.length} codes`);
  assert.deepEqual(codes.filter((c) => !readme.includes(`\`${c}\``)), []);
});

test('every script of the addon is at most 300 lines', () => {
  const long = readdirSync(addon).filter((f) => f.endsWith('.gd'))
    .map((f) => ({ f, lines: read(f).split('\n').length })).filter(({ lines }) => lines > 300);
  assert.deepEqual(long, []);
});
