/**
 * Output helpers shared by the bench scripts: markdown tables, number formatting, command-line
 * flags, memory readings and a high-resolution stopwatch.
 */

/** A markdown table with a header row; every cell is already formatted text. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** A number with a fixed count of decimals and thousands separators. */
export function num(value: number, decimals = 0): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** Milliseconds with one decimal. */
export const ms = (value: number): string => `${num(value, 1)} ms`;

/** Bytes as MiB with one decimal. */
export const mib = (bytes: number): string => `${num(bytes / 1048576, 1)} MiB`;

/** Verdict of a measured value against a target. */
export const verdict = (met: boolean): string => (met ? 'met' : 'MISSED');

/** Reads `--name value` (or `--name=value`) from argv as a number, with a default. */
export function numberFlag(name: string, fallback: number): number {
  const raw = stringFlag(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${name} needs a number, got ${raw}`);
  return value;
}

/** Reads `--name value` (or `--name=value`) from argv. */
export function stringFlag(name: string): string | undefined {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === `--${name}`) return args[i + 1];
    if (arg.startsWith(`--${name}=`)) return arg.slice(name.length + 3);
  }
  return undefined;
}

/** True when `--name` is on the command line. */
export const booleanFlag = (name: string): boolean => process.argv.slice(2).includes(`--${name}`);

/** True when the bench runs in its quick (smoke) mode, with much smaller parameters. */
export const quick = (): boolean => booleanFlag('quick');

/** Runs a full garbage collection when the process was started with --expose-gc. */
export function collectGarbage(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return false;
  gc();
  gc();
  return true;
}

/** Memory after a full collection (when available). */
export function memoryAfterGc(): { rss: number; heapUsed: number; heapTotal: number; gcRun: boolean } {
  const gcRun = collectGarbage();
  const { rss, heapUsed, heapTotal } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, gcRun };
}

/** Where a process's memory is, after a full collection: V8's heap by space, memory outside it, and the rest of RSS. */
export interface MemoryBreakdown {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** Memory of C++ objects bound to JavaScript ones (Buffers and ArrayBuffers among them). */
  readonly external: number;
  /** Committed size of each V8 heap space (new_space, old_space, code_space, large_object_space...). */
  readonly spaces: Readonly<Record<string, number>>;
}

/** {@link MemoryBreakdown} after a full collection (when available). */
export async function memoryBreakdown(): Promise<MemoryBreakdown> {
  const { getHeapSpaceStatistics } = await import('node:v8');
  collectGarbage();
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
  return { rss, heapUsed, heapTotal, external, spaces };
}

/** Milliseconds elapsed since `start` (a `process.hrtime.bigint()` reading). */
export const elapsedMs = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

/** Prints a section title. */
export function heading(text: string): void {
  console.log(`\n### ${text}\n`);
}
