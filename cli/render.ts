/**
 * How meshctl shows answers to people: aligned tables and key/value lists, plain text without
 * colours (so that output pasted into an incident channel stays readable). `--json` bypasses all
 * of this and prints the service's own JSON.
 */
import type { MeshEvent, Schemas } from '../clients/ts/mesh-client.ts';

type Cell = string | number | boolean | null | undefined;

/** An aligned table with a header row; numbers are right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((row) => row.map(cellText));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((row) => (row[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number'));
  const line = (cells: readonly string[]) => cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...text.map(line)].join('\n') + '\n';
}

/** `key: value` lines, keys aligned. */
export function pairs(entries: readonly (readonly [string, Cell])[]): string {
  const width = Math.max(...entries.map(([key]) => key.length));
  return entries.map(([key, value]) => `${`${key}:`.padEnd(width + 1)} ${cellText(value)}`).join('\n') + '\n';
}

function cellText(value: Cell): string {
  if (value === null || value === undefined) return '-';
  return String(value);
}

/** The mesh's status from the leader (or a standalone coordinator); a follower's names the leader. */
export function statusText(s: Schemas['MeshStatus'] | Schemas['FollowerStatus']): string {
  const role = s.coordinator.role === 'standalone' ? 'standalone' : `${s.coordinator.role} (leader: ${s.coordinator.leader_url ?? 'none known'})`;
  if (!('status' in s)) return pairs([['coordinator', role]]);
  return pairs([
    ['status', s.status], ['degraded level', `${s.degraded_level} (fidelity ${s.fidelity})`], ['tilt', s.tilt],
    ['servers', `${s.servers.total} total, ${s.servers.alive} alive, ${s.servers.suspect} suspect, ${s.servers.failed} failed, ${s.servers.draining} draining`],
    ['regions', `${s.regions.total} total, ${s.regions.active} active, ${s.regions.failing_over} failing over, ` +
      `${s.regions.under_replicated} under-replicated, ${s.regions.unavailable} unavailable`],
    ['alerts open', s.alerts_open], ['clock', s.clock], ['coordinator', role],
  ]);
}

export function regionsText(regions: readonly Schemas['RegionView'][]): string {
  return table(['region', 'state', 'epoch', 'primary', 'backups', 'players', 'critical'], regions.map((r) => [
    r.region_id, r.state, r.epoch, r.primary?.server_id, r.backups.map((b) => b.server_id).join(',') || '-', r.players, r.critical ? 'yes' : '',
  ]));
}

export function replicationText(r: Schemas['RegionReplication']): string {
  const head = pairs([['region', r.region_id], ['state', r.state], ['epoch', r.epoch], ['critical', r.critical], ['players', r.players]]);
  const replicas = table(['role', 'server', 'status', 'applied_seq', 'lag', 'note'], [
    ...(r.primary ? [['primary', r.primary.server_id, r.primary.status, r.primary.applied_seq, 0, r.primary.acknowledged ? '' : 'not acknowledged'] as Cell[]] : []),
    ...r.backups.map((b) => ['backup', b.server_id, b.status, b.applied_seq, b.lag, b.syncing ? 'syncing' : ''] as Cell[]),
  ]);
  const last = r.last_failover;
  const tail = last ? `last failover: ${last.id} ${last.outcome}, detection ${last.detection_ms} ms, recovery ${last.recovery_ms ?? '-'} ms\n` : 'last failover: none\n';
  return `${head}\n${replicas}\n${tail}`;
}

export function metricsText(m: Schemas['FailoverMetrics']): string {
  const f = m.failovers;
  const stats = (name: string, s: Schemas['LatencyStats']) => [name, s.count, s.min, s.p50, s.p95, s.p99, s.max] as Cell[];
  return pairs([
    ['failovers', `${f.total} total, ${f.completed} completed, ${f.in_progress} in progress, ${f.failed} failed`],
    ['false failovers', m.false_failovers],
    ['actions', `${m.actions.buffered} buffered, ${m.actions.replayed} replayed, ${m.actions.expired} expired, ` +
      `${m.actions.rejected} rejected, ${m.actions.pending} pending`],
    ['replication coverage', m.replication_coverage],
  ]) + '\n' + table(['ms', 'count', 'min', 'p50', 'p95', 'p99', 'max'], [stats('detection', m.detection_ms), stats('recovery', m.recovery_ms)]);
}

export function alertsText(alerts: readonly Schemas['Alert'][]): string {
  if (alerts.length === 0) return 'no alert\n';
  return table(['id', 'severity', 'state', 'count', 'title'], alerts.map((a) => [
    a.id, a.severity, a.resolved_at !== null ? 'resolved' : a.acknowledged_at !== null ? `acked by ${a.acknowledged_by ?? '?'}` : 'open', a.count, a.title,
  ]));
}

export function serversText(servers: readonly Schemas['ServerView'][]): string {
  return table(['server', 'zone', 'status', 'primaries', 'backups', 'players', 'address'], servers.map((s) => [
    s.server_id, s.zone, s.status, s.primaries, s.backups, s.players, s.address,
  ]));
}

/** One line per event: time, type and what it is about. */
export function eventLine(event: MeshEvent): string {
  const { type, seq, at, ...rest } = event as MeshEvent & { seq: number; at: number };
  const about = Object.entries(rest).filter(([key]) => key !== 'type')
    .map(([key, value]) => `${key}=${typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)}`).join(' ');
  return `${new Date(at).toISOString()} #${seq} ${type} ${about}\n`;
}
