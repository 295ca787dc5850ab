/**
 * A core state as replayed change records must reproduce it: in a canonical order, without what
 * heartbeats refresh without a write (a server's last heartbeat seq and players, replicas' applied
 * seqs, alive <-> suspect and its time) and what a restart recomputes (the announced epoch).
 */
import type { CoreState } from '../../mesh/core/state.ts';

export function comparableState(state: CoreState): unknown {
  return {
    ...state,
    servers: [...state.servers].sort((a, b) => a.id.localeCompare(b.id)).map(({ lastSeq: _s, players: _p, ...s }) => {
      const live = s.status === 'alive' || s.status === 'suspect';
      return { ...s, status: live ? 'alive' : s.status, statusSinceMs: live ? 0 : s.statusSinceMs };
    }),
    regions: [...state.regions].sort((a, b) => a.id.localeCompare(b.id))
      .map(({ appliedSeq: _a, announcedEpoch: _e, ...r }) => r),
  };
}
