/**
 * The tree shows the architecture (ARCHITECTURE.md, "Layers"): mesh/ imports neither api/, src/ nor
 * any node: module, and its folders import one way only, each from itself and the folders before it
 * in `groups`. The imports are read from the sources, so a new file or import is checked as is.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const mesh = join(root, 'mesh');

/** mesh/'s folders, lowest first: a folder may import from itself and from those before it. */
const groups = ['base', 'health', 'actions', 'effects', 'detection', 'failover', 'core', 'faults', 'runtime', 'simulation'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module a file imports or re-exports (static and dynamic), as written. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s*['"]([^'"]+)['"]/g), ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)];
  return found.map((m) => m[1] as string);
}

const groupOf = (file: string) => relative(mesh, file).split('/')[0] as string;

describe('layering of mesh/', () => {
  const files = sources(mesh);

  test('every file of mesh/ is in a known folder', () => {
    assert.deepEqual(files.filter((f) => !groups.includes(groupOf(f))).map((f) => relative(root, f)), []);
  });

  test('mesh/ imports neither api/, src/ nor node: modules, nor any package', () => {
    const bad = files.flatMap((file) => importsOf(file)
      .filter((spec) => !spec.startsWith('.') || !resolve(dirname(file), spec).startsWith(mesh + '/'))
      .map((spec) => `${relative(root, file)} imports ${spec}`));
    assert.deepEqual(bad, []);
  });

  test('imports between the folders of mesh/ run one way only', () => {
    const bad = files.flatMap((file) => importsOf(file).filter((spec) => spec.startsWith('.')).flatMap((spec) => {
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(mesh + '/')) return [];
      const from = groups.indexOf(groupOf(file));
      const to = groups.indexOf(groupOf(target));
      return to > from ? [`${relative(root, file)} (${groupOf(file)}) imports ${relative(root, target)} (${groupOf(target)})`] : [];
    }));
    assert.deepEqual(bad, []);
  });

  test('the checker sees imports (it would catch an upward one)', () => {
    const heartbeat = importsOf(join(mesh, 'core', 'heartbeat.ts'));
    assert.ok(heartbeat.includes('../failover/recovery.ts'), JSON.stringify(heartbeat));
  });
});
