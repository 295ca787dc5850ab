/**
 * Core bugs the properties found and that are not fixed yet. A test that depends on one is marked
 * `todo` with the text below: it still runs and prints its failure, without failing the suite.
 * Set an entry to `false` once the bug is fixed, so that the test guards the fix from then on.
 */
export const knownBugs: { readonly [K in 'revivedWithoutState' | 'stalePhaseAfterReadopt' | 'overCapacityReadopt' | 'regionIdReuse' | 'leaseAcrossRestore' |
  'sessionLeaseOutlastsDetection' | 'retransmissionsAtP99']: string | false } = {
  /**
   * Replacement backups are assigned while a promotion is still unacknowledged and are confirmed on
   * role and epoch alone (no evidence they copied the state). When the promoted backup turns out to
   * be dead as well, such a backup is promoted, and a region that lost every replica comes back
   * empty instead of unavailable. Replay: regression-seeds.test.ts, "mass failure revives".
   */
  revivedWithoutState: false,
  /**
   * A heartbeat that re-adopts an unavailable region (a former replica came back) promotes the
   * server but does not refresh the region's phase: the region stays `unavailable` (and counted so)
   * while it has a pending primary (`failing_over`) until a tick refreshes it, which during TILT
   * (deadlines are not expired then) is up to `tiltRecoveryMs` later; no region_phase_changed
   * event is emitted meanwhile. Replay: regression-seeds.test.ts, "stale phase".
   */
  stalePhaseAfterReadopt: false,
  /**
   * Re-adopting an unavailable region (a former replica heartbeats claiming it) adds it to that
   * server without looking at its capacity: a server that filled the freed slot meanwhile ends up
   * above its declared capacity. Replay: regression-seeds.test.ts, "above capacity".
   */
  overCapacityReadopt: false,
  /**
   * A region created but not yet persisted is announced at once (epoch 1 in heartbeat replies); a
   * coordinator restart from the last persisted state forgets it and reuses its generated id for
   * the next region, placed elsewhere at epoch 1: two servers are told they lead the same region id
   * at the same epoch. Replay: regression-seeds.test.ts, "a region created but not persisted".
   */
  regionIdReuse: false,
  /**
   * After an operator restores an older data file, the restarted coordinator granted a lease to the
   * primary its restored records name as soon as that server heartbeated: a newer primary that the
   * restored file does not know (promoted after the backup was taken) could still hold the lease the
   * previous process granted it, and both served until the newer one's heartbeat ratcheted the
   * epoch. Fixed: no lease is granted during the restart grace, until every lease the previous
   * process may have granted is over (primaryLeaseMs plus the drift margin). Replay:
   * regression-seeds.test.ts, "lease across a restore".
   */
  leaseAcrossRestore: false,
  /**
   * Not a wrong decision but a target the configuration cannot meet (issue 17: recovery p99 <=
   * detection p99 + 100 ms in the simulator). With sessions a crash is declared about 110-250 ms
   * after it (the close, then a peer's report once its silence reaches `sessionPeerSilenceMs`), but
   * no backup is promoted before the crashed primary's last session lease plus the drift margin is
   * over: its last renewal (up to `sessionLeaseRenewalIntervalMs` and a round trip before the crash)
   * plus `sessionLeaseMs` plus its drift margin (the same share of the lease as
   * `leaseDriftMarginMs` is of `primaryLeaseMs`), then the next tick. So recovery follows detection
   * by the rest of the lease. Silent failures meet the target (their detection outlasts the lease).
   * Measured over 80 crashes before the margin was scaled: recovery p99 - detection p99 = 313 ms
   * with a 100 ms margin, 228 ms with the scaled one, 72 ms with a 200 ms session lease renewed
   * every 66 ms and a 10 ms margin (which costs half as many renewals again). Replay:
   * session-failure.test.ts, crash, "recovery p99 <= detection p99 + 100 ms".
   */
  sessionLeaseOutlastsDetection: 'a crashed primary\'s session lease (and its drift margin) outlasts its detection over the session',
  /**
   * Also not a wrong decision: for silent failures (detection outlasts the lease) recovery follows
   * detection by the push and the acknowledgement, about 25 ms at the median. But the standard
   * network model loses 1% of messages, which a session (TCP) retransmits about 200 ms later, and a
   * promotion takes two messages (the push, the acknowledging heartbeat), each of which may also
   * wait behind a retransmitted renewal or heartbeat on the same session (head of line): per
   * failover, recovery - promotion is 25 ms at the median but 115-210 ms at p95 and 230-250 ms at
   * p99. Compared at p99, recovery p99 - detection p99 came out at +20 to +101 ms over ~270
   * failovers per run (one of six runs above 100 ms). Replay: session-failure.test.ts, silent
   * failure, "recovery p99 <= detection p99 + 100 ms".
   */
  retransmissionsAtP99: 'one message in a hundred is retransmitted 200 ms late, holding up its session, and some promotions wait for one',
};
