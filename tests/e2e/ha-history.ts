/**
 * The history of a Jepsen-style run of coordinator replicas (tests/e2e/ha-jepsen.test.ts): every
 * request a client made and the answer it got, with times; every heartbeat reply's roles, epochs
 * and lease per server; every leader seen; the faults injected; the events streamed; etcd's own
 * history of the coordinators' keys; and the final state. Plain data, so that the checker
 * (tests/e2e/ha-history-checker.ts) is a pure function of it, tested on hand-made bad histories.
 *
 * Times are the test process's `Date.now()`; etcd revisions are decimal strings (int64).
 */

/** One player action submitted to the coordinators, and what came back (null: no answer). */
export interface ActionOp {
  readonly region: string;
  readonly player: string;
  readonly seq: number;
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly status: number | null;
  /** The coordinator that answered (after redirects). */
  readonly by: string | undefined;
}

/** Actions a primary collected from the buffer (they stay buffered until acknowledged). */
export interface CollectOp {
  readonly server: string;
  readonly region: string;
  readonly epoch: number;
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly by: string | undefined;
  readonly actions: readonly { readonly player: string; readonly seq: number }[];
}

/** One region of a heartbeat reply. */
export interface Assignment {
  readonly region: string;
  readonly role: 'primary' | 'backup';
  readonly epoch: number;
}

/** A heartbeat answered 200. */
export interface HeartbeatReply {
  readonly server: string;
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly by: string | undefined;
  /** The server's status as the coordinator judged it. */
  readonly status: string;
  readonly regions: readonly Assignment[];
  /** Regions the reply demoted this server from (it claimed primary under an old epoch). */
  readonly demoted: readonly string[];
  readonly leaseMs: number;
}

/** A replica seen leading (GET /mesh/status said `leader`) in a term. */
export interface LeaderSeen {
  readonly at: number;
  readonly url: string;
  readonly term: string;
}

/** A fault the test injected. */
export type Fault =
  | { readonly kind: 'kill-server' | 'inject-server'; readonly at: number; readonly server: string }
  | { readonly kind: 'kill-leader'; readonly at: number; readonly url: string; readonly term: string }
  | { readonly kind: 'pause-leader'; readonly at: number; readonly url: string; readonly term: string }
  /**
   * `revision`: etcd's revision read just before the SIGCONT; `followedAt`: when the test then saw
   * the replica answer as a follower.
   */
  | { readonly kind: 'resume-leader'; readonly at: number; readonly url: string; readonly term: string; readonly revision: string; readonly followedAt: number };

/** An event read from `GET /mesh/events` (`id` is `<boot>.<seq>`; `data` its JSON text). */
export interface SeenEvent {
  readonly id: string;
  readonly data: string;
}

/** One change of a key under the coordinators' etcd prefix, from etcd's history. */
export interface EtcdChange {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly modRevision: string;
  readonly createRevision: string;
  readonly value: string;
}

/** What the last leader held at the end. */
export interface FinalState {
  /** Actions still buffered, by region (a collect without acknowledgement). */
  readonly buffered: readonly { readonly region: string; readonly player: string; readonly seq: number }[];
  /** Every failover in the leader's history. */
  readonly failovers: readonly { readonly region: string; readonly failedServer: string | null }[];
  readonly servers: readonly { readonly id: string; readonly status: string }[];
}

/** A whole run. */
export interface History {
  /** The etcd prefix of the run (`--etcd-prefix`). */
  readonly prefix: string;
  readonly actions: readonly ActionOp[];
  readonly collects: readonly CollectOp[];
  readonly heartbeats: readonly HeartbeatReply[];
  readonly leaders: readonly LeaderSeen[];
  readonly faults: readonly Fault[];
  readonly events: readonly SeenEvent[];
  readonly etcd: readonly EtcdChange[];
  readonly final: FinalState;
}

/** A history being recorded. */
export interface HistoryLog {
  prefix: string;
  actions: ActionOp[];
  collects: CollectOp[];
  heartbeats: HeartbeatReply[];
  leaders: LeaderSeen[];
  faults: Fault[];
  events: SeenEvent[];
  etcd: EtcdChange[];
  final: FinalState;
}

/** An empty history for `prefix`. */
export function emptyHistory(prefix: string): HistoryLog {
  return {
    prefix, actions: [], collects: [], heartbeats: [], leaders: [], faults: [], events: [], etcd: [],
    final: { buffered: [], failovers: [], servers: [] },
  };
}
