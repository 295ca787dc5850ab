/**
 * The docs must stay true to the code: every setting `--help` prints appears in the configuration
 * reference of FAULT_TOLERANCE_DEPLOYMENT.md with the same flag, variable and default, and the
 * README shows the two commands and the walkthrough's endpoints.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { helpText } from '../../src/settings.ts';

const root = new URL('../../', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, root), 'utf8');

/** Flag, variable and default of every setting line of `--help`. */
function settingsFromHelp(): { flag: string; env: string; fallback: string }[] {
  const settings: { flag: string; env: string; fallback: string }[] = [];
  for (const line of helpText().split('\n')) {
    const match = /^ {2}(--[a-z-]+) <[^>]+> {2}(MESH_[A-Z_]+) {2}default: (\S+)/.exec(line);
    if (match) settings.push({ flag: match[1] as string, env: match[2] as string, fallback: match[3] as string });
  }
  return settings;
}

describe('FAULT_TOLERANCE_DEPLOYMENT.md', () => {
  const guide = read('FAULT_TOLERANCE_DEPLOYMENT.md');

  test('lists every setting with its flag, variable and default', () => {
    const settings = settingsFromHelp();
    assert.ok(settings.length >= 30, `expected every setting in --help, parsed ${settings.length}`);
    const missing = settings.filter(({ flag, env, fallback }) => !guide.includes(`| \`${flag}\` | \`${env}\` | \`${fallback}\` |`));
    assert.deepEqual(missing, [], 'settings missing from the configuration reference (or with another default)');
  });

  test('documents the admin token and protected mode', () => {
    assert.match(guide, /MESH_ADMIN_TOKEN/);
    assert.match(guide, /protected mode/i);
  });
});

describe('README.md', () => {
  const readme = read('README.md');

  test('shows the two commands: install and start, and run every test', () => {
    assert.match(readme, /npm ci && npm start/);
    assert.match(readme, /npm test/);
  });

  test('walks through setup_test, simulate_failure and failover_metrics with curl', () => {
    for (const path of ['/mesh/setup_test', '/mesh/simulate_failure', '/mesh/failover_metrics']) {
      assert.match(readme, new RegExp(`curl[^\\n]*${path.replace('/', '\\/')}`), `README walkthrough lacks ${path}`);
    }
  });
});

describe('FAULT_TOLERANCE_DEPLOYMENT.md §1.7: every claim names a test that exists', () => {
  const guide = read('FAULT_TOLERANCE_DEPLOYMENT.md');
  const section = guide.split(/^### /m).find((s) => s.startsWith('1.7 '));

  test('the table lists claims with a test file and a test name', () => {
    assert.ok(section, 'the guide has a section 1.7');
    const rows = section.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| claim') && !line.startsWith('| ---'));
    assert.ok(rows.length >= 20, `expected a row per claim of §1, found ${rows.length}`);
    const missing: string[] = [];
    for (const row of rows) {
      const [claim, file, name] = row.slice(2, -2).split(' | ').map((cell) => cell.trim());
      const path = /^`(tests\/[^`]+\.test\.ts)`$/.exec(file ?? '')?.[1];
      if (!claim || !path || !name) {
        missing.push(`malformed row: ${row}`);
        continue;
      }
      let source: string;
      try {
        source = read(path);
      } catch {
        missing.push(`${path} does not exist (claim: ${claim})`);
        continue;
      }
      // The name as the test file spells it, in a test(...) call; quotes escaped as in the source.
      const spelled = [name, name.replace(/'/g, "\\'")];
      if (!spelled.some((n) => source.includes(`test('${n}'`) || source.includes(`test(\`${n}\``))) {
        missing.push(`${path} has no test named "${name}" (claim: ${claim})`);
      }
    }
    assert.deepEqual(missing, []);
  });
});

describe('the docs say only what holds (issue 16 point 8)', () => {
  const docs = ['README.md', 'FAULT_TOLERANCE_DEPLOYMENT.md', 'ARCHITECTURE.md'].map((name) => ({ name, text: read(name) }));

  test('no guarantee is called proven, and heartbeats are not said never to touch the disk', () => {
    for (const { name, text } of docs) {
      assert.doesNotMatch(text, /\b(are|is|been) proven\b|\bproven by\b/i, `${name} calls a guarantee proven; it is checked by seeded runs`);
      assert.doesNotMatch(text, /heartbeats never (touch|write)/i, `${name} says heartbeats never touch the disk; some write`);
    }
  });

  test('the guide says how many seeded runs check the guarantees, and which heartbeats write', () => {
    const guide = read('FAULT_TOLERANCE_DEPLOYMENT.md');
    assert.match(guide, /checked by property-based tests over about [\d,]+ seeded/);
    assert.match(guide, /A heartbeat that changes nothing writes nothing/);
    assert.match(guide, /A heartbeat that changes the topology does queue a\s+write: one that acknowledges a promotion, confirms a new backup/);
  });
});
