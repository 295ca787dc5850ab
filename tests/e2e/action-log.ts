/**
 * The demo servers' action logs ("<region> <player> <seq> <epoch> <direct|replay> <server_id> <unix ms>" per
 * applied action) and the exactly-once check the Godot suites and the failover bench share.
 */
import { existsSync, readFileSync } from 'node:fs';

export interface Applied {
  readonly region: string;
  readonly player: string;
  readonly seq: number;
  readonly epoch: number;
  readonly source: 'direct' | 'replay';
  readonly server: string;
  /** When it was applied (the server's wall clock, ms). */
  readonly atMs: number;
  /** Position in its server's log. */
  readonly line: number;
}

/** Every applied action of `region` in the given log files. */
export function readLogs(paths: readonly string[], region: string): Applied[] {
  const out: Applied[] = [];
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const lines = readFileSync(path, 'utf8').split('\n');
    lines.forEach((text, line) => {
      const [r, player, seq, epoch, source, server, at] = text.trim().split(' ');
      if (r !== region || player === undefined || server === undefined) return;
      out.push({ region: r, player, seq: Number(seq), epoch: Number(epoch), source: source as Applied['source'], server, atMs: Number(at), line });
    });
  }
  return out;
}

/**
 * Problems with the applied actions of `player`, whose actions 1..`lastSeq` were all confirmed:
 * each must be applied exactly once, in seq order. One primary applies per epoch, so ordering by
 * (epoch, position in its log) is the order in which they took effect.
 */
export function exactlyOnceProblems(applied: readonly Applied[], player: string, lastSeq: number): string[] {
  return exactlyOnce(applied, player, lastSeq).problems;
}

/** The same check with counts: extra applications (duplicates) and actions never applied. */
export function exactlyOnce(applied: readonly Applied[], player: string, lastSeq: number): { duplicates: number; missing: number; problems: string[] } {
  const mine = applied.filter((a) => a.player === player)
    .sort((a, b) => a.epoch - b.epoch || (a.server === b.server ? a.line - b.line : a.server.localeCompare(b.server)));
  const problems: string[] = [];
  const count = new Map<number, number>();
  for (const a of mine) count.set(a.seq, (count.get(a.seq) ?? 0) + 1);
  const duplicated = [...count].filter(([, n]) => n > 1).map(([seq]) => seq);
  if (duplicated.length > 0) problems.push(`${player}: applied more than once: ${duplicated.slice(0, 20).join(', ')}`);
  const missing: number[] = [];
  for (let seq = 1; seq <= lastSeq; seq++) if (!count.has(seq)) missing.push(seq);
  if (missing.length > 0) problems.push(`${player}: never applied: ${missing.slice(0, 20).join(', ')} (${missing.length} in all)`);
  const disorder = mine.findIndex((a, i) => i > 0 && a.seq <= mine[i - 1]!.seq);
  if (disorder > 0) {
    const [before, at] = [mine[disorder - 1]!, mine[disorder]!];
    problems.push(`${player}: out of order: seq ${at.seq} (epoch ${at.epoch}, ${at.server}) after ${before.seq} (epoch ${before.epoch}, ${before.server})`);
  }
  const duplicates = [...count.values()].reduce((sum, n) => sum + n - 1, 0);
  return { duplicates, missing: missing.length, problems };
}
