/**
 * What a server's assignment shows, as a short string, so that the simulated session hub pushes a
 * server its assignment only when something in it may have changed: building an assignment grants
 * a lease and records the interval asked for, so the simulator must not build one for every server
 * after every change (the service's hub builds them only for the servers a change concerns,
 * api/session/change-watch.ts). The string covers every input of the assignment: the degraded level
 * (fidelity), the server's status, and per region it hosts the announced epoch, the primary and
 * whether it acknowledged (and the epoch, whether announced or not), the backups and how many still sync, the criticality, the buffered
 * actions, and the primary's status (a suspect primary makes its backups report sooner).
 */
import { Coordinator } from '../core/coordinator.ts';
import type { ServerId } from '../base/types.ts';

/** The fingerprint of `id`'s assignment now ('' for an unknown server). */
export function sessionFingerprint(core: Coordinator, id: ServerId): string {
  const { servers } = core.records();
  const server = servers.get(id);
  if (server === undefined) return '';
  let out = `${Coordinator.partsForTests(core).degraded.level}|${server.status}`;
  for (const r of core.hostedBy(id)) {
    const primaryStatus = r.primary === null ? '-' : servers.get(r.primary)?.status;
    out += `|${r.id}:${r.epoch}:${r.announcedEpoch}:${r.primary}:${r.primaryAcked}:${r.backups.join(',')}:${r.syncing.size}:` +
      `${r.critical}:${core.pendingActions(r.id)}:${primaryStatus}`;
  }
  return out;
}
