/**
 * `npm run bench`: runs every bench script (`bench/*.bench.ts`), each in its own child process so
 * that memory readings and JIT state are isolated, and prints their markdown tables to stdout with
 * the machine they ran on. Each bench is first bundled to `dist/<name>.bench.mjs` as `npm run
 * build` bundles the service, and runs as `node --expose-gc --v8-pool-size=0 dist/<name>.bench.mjs`:
 * plain JavaScript with no TypeScript loader in the process (the loader alone adds about 40 MiB of
 * RSS), and V8's background threads sized to the machine, like the service after `npm start`.
 *
 *   npm run bench                      every bench, in name order
 *   npm run bench -- detection         only benches whose name contains "detection" (a whole name: that one)
 *   npm run bench -- --list            the benches found
 *   npm run bench -- mass --reps 7     flags (--x) are passed on to every selected bench
 *   npm run bench -- --quick           small parameters, a smoke test of the scripts
 *
 * A new bench is picked up by being a `bench/<name>.bench.ts` file that prints its own tables
 * and exits non-zero on error. Exit status: 0 when every selected bench exited 0, 1 otherwise.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from './lib/bundle.ts';
import { table } from './lib/report.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const suffix = '.bench.ts';

/** Bench names (file names without `.bench.ts`), sorted. */
function discover(): string[] {
  return readdirSync(benchDir).filter((f) => f.endsWith(suffix)).map((f) => basename(f, suffix)).sort();
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line !== undefined) return line.split(':').slice(1).join(':').trim();
  } catch {
    // Not Linux: fall back to what Node reports.
  }
  return cpus()[0]?.model ?? 'unknown';
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

/** The commit measured and whether the core or the benches differ from it. */
function source(): string {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: benchDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const commit = git('log', '-1', '--format=%h %s').trim();
    // Not trimmed: each porcelain line starts with two status columns and a space.
    const dirty = git('status', '--porcelain', '--', '../mesh', '.').split('\n').filter((l) => l.trim() !== '');
    return `${commit.length > 90 ? `${commit.slice(0, 90)}...` : commit}; ` +
      (dirty.length === 0 ? 'mesh/ and bench/ as committed' : `uncommitted: ${dirty.map((l) => l.slice(3)).join(', ')}`);
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function machine(): string {
  return table(['machine', ''], [
    ['date', new Date().toISOString()],
    ['cpu', `${cpuModel()}, ${cpus().length} logical cores`],
    ['memory', `${gib(totalmem())} total, ${gib(freemem())} free at start`],
    ['node', `${process.version} (${process.platform}/${process.arch})`],
    ['load average (1/5/15 min) at start', load()],
    ['source', source()],
  ]);
}

/**
 * The node options of `npm start` (package.json's start script, `node [options] dist/main.mjs`):
 * the benches measure the service's code as the service runs it.
 */
function serviceNodeOptions(): string[] {
  const { scripts } = JSON.parse(readFileSync(join(benchDir, '..', 'package.json'), 'utf8')) as { scripts: { start: string } };
  const words = scripts.start.split(/\s+/);
  if (words[0] !== 'node') throw new Error(`the start script does not run node: ${scripts.start}`);
  return words.slice(1).filter((word) => word.startsWith('--'));
}

function runBench(name: string, flags: readonly string[]): Promise<{ code: number; wallMs: number }> {
  const source = join(benchDir, `${name}${suffix}`);
  const file = bundle(source);
  const args = ['--expose-gc', ...serviceNodeOptions(), file, ...flags];
  console.log(`\n## ${name}\n\nCommand: \`node ${args.map((a) => (a === file ? relative(process.cwd(), file) : a)).join(' ')}\` ` +
    `(bundled from ${relative(process.cwd(), source)})  `);
  console.log(`Load average before: ${load()}`);
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit' });
    child.on('error', (error) => {
      console.error(`could not start ${name}: ${error.message}`);
      resolve({ code: 1, wallMs: Number(process.hrtime.bigint() - started) / 1e6 });
    });
    child.on('exit', (code, signal) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      console.log(`\n_${name}: ${signal === null ? `exit ${code}` : `killed by ${signal}`}, ${(wallMs / 1000).toFixed(1)} s wall-clock; ` +
        `load average after: ${load()}._`);
      resolve({ code: code ?? 1, wallMs });
    });
  });
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const available = discover();
  if (argv.includes('--list')) {
    console.log(available.join('\n'));
    return 0;
  }
  const names = argv.filter((a, i) => !a.startsWith('-') && !(argv[i - 1]?.startsWith('--') && !isSwitch(argv[i - 1] ?? '')));
  const flags = argv.filter((a) => !names.includes(a));
  // A name that is a bench's whole name selects that bench only (`session`, not `session-crash`).
  const matches = (b: string, n: string) => b === n || (!available.includes(n) && b.includes(n));
  const selected = names.length === 0 ? available : available.filter((b) => names.some((n) => matches(b, n)));
  const unknown = names.filter((n) => !available.some((b) => b === n || b.includes(n)));
  if (unknown.length > 0 || selected.length === 0) {
    console.error(`no bench matches ${unknown.join(', ') || names.join(', ')}; available: ${available.join(', ')}`);
    return 2;
  }
  console.log('# Benchmarks\n');
  console.log(machine());
  const results: { name: string; code: number; wallMs: number }[] = [];
  for (const name of selected) results.push({ name, ...(await runBench(name, flags)) });
  console.log('\n## Summary\n');
  console.log(table(['bench', 'exit', 'wall-clock'], results.map((r) => [r.name, String(r.code), `${(r.wallMs / 1000).toFixed(1)} s`])));
  console.log(`\nTotal: ${(results.reduce((a, r) => a + r.wallMs, 0) / 1000).toFixed(1)} s`);
  return results.every((r) => r.code === 0) ? 0 : 1;
}

/** Flags that take no value, so the word after them is a bench name. */
function isSwitch(flag: string): boolean {
  return ['--quick', '--list', '--memory-only', '--fixed-interval'].includes(flag);
}

process.exitCode = await main();
