/**
 * A coordinator that is one of several replicas on etcd. It always answers HTTP: as a follower
 * through the follower app (probes, status, 307 to the leader), as the leader through the full app
 * over a mesh restored from the store when it was elected. Each term gets a fresh store and core,
 * so that nothing a deposed term held in memory (unwritten records, pending promotions) can reach
 * etcd or a client under the next term; the store's fence makes the old term's writes fail anyway.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createFollowerApp, refuseUpgrade, type Leadership, type LeadershipView } from '../../api/leadership.ts';
import { SessionCloseCode } from '../../api/session/session-hub.ts';
import { writeProblem } from '../../api/session/session-upgrade.ts';
import type { Logger } from '../logger.ts';
import type { MeshParts, MeshServing } from '../serve-mesh.ts';
import type { Store } from '../store/store.ts';
import { LeaderElection, type ElectionOptions, type TakeOver, type Term } from './leader-election.ts';

/** How a replica is built. */
export interface ReplicaOptions {
  /** Everything a term's mesh is made of but its store and the election. */
  readonly parts: Omit<MeshParts, 'store' | 'leadership'>;
  /** The election's client, key, own URL and TTL. */
  readonly election: Pick<ElectionOptions, 'client' | 'key' | 'selfUrl' | 'ttlSeconds' | 'now'>;
  /** A store for one term, whose writes are fenced by `fence()` (undefined: refuse to write). */
  readonly openStore: (fence: () => Term | undefined) => Store & { readonly loadedFromCopy?: boolean | undefined };
  /** Keeps a copy of the durable records while this replica follows (src/ha/followed-records.ts). */
  readonly follower?: { start(): void; stop(): Promise<void> };
  /** Builds and starts a term's mesh (src/serve-mesh.ts). */
  readonly serve: (parts: MeshParts) => Promise<MeshServing>;
  readonly log: Logger;
}

/** One replica: the election, the term it serves (if it leads) and the follower's answers. */
export class ReplicatedCoordinator implements Leadership {
  readonly selfUrl: string;
  private readonly election: LeaderElection;
  private serving: { term: Term; mesh: MeshServing } | undefined;
  private readonly follower;
  private readonly followerHandler;
  private readonly followerUpgrade;
  private readonly leaderHandlers = new WeakMap<MeshServing, (req: IncomingMessage, res: ServerResponse) => void>();
  private stopping = false;

  constructor(private readonly options: ReplicaOptions) {
    this.selfUrl = options.election.selfUrl;
    this.election = new LeaderElection({
      ...options.election, log: options.log,
      onElected: (term, before) => void this.takeOver(term, before),
      onDeposed: (reason) => this.stepDown(reason),
    });
    this.follower = createFollowerApp({ leadership: this, http: options.parts.http, logError: (error, context) => options.log.error('request failed', { error, ...context }) });
    this.followerHandler = this.follower.callback();
    this.followerUpgrade = refuseUpgrade(this, writeProblem);
  }

  /** Joins the election (and follows the records until it leads). */
  start(): Promise<void> {
    this.options.follower?.start();
    return this.election.start();
  }

  /** The role now: leader only while the election says so and the term's mesh is serving. */
  view(): LeadershipView {
    const view = this.election.view();
    if (view.role === 'leader' && this.serving?.term.createRevision !== view.term) {
      // Elected, still restoring the state: not serving yet, and no other leader to send anyone to.
      return { role: 'follower', leaderUrl: undefined, term: view.term };
    }
    return view;
  }

  /** The mesh this replica serves now, if it leads (tests and shutdown). */
  current(): MeshServing | undefined {
    return this.serving?.mesh;
  }

  /** The HTTP server's request listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const mesh = this.serving?.mesh;
    if (mesh === undefined) return void this.followerHandler(req, res);
    let handler = this.leaderHandlers.get(mesh);
    if (handler === undefined) {
      handler = mesh.app.callback();
      this.leaderHandlers.set(mesh, handler);
    }
    handler(req, res);
  };

  /** The HTTP server's upgrade listener. */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const mesh = this.serving?.mesh;
    if (mesh === undefined) return this.followerUpgrade(req, socket);
    mesh.app.sessions.handleUpgrade(req, socket, head);
  };

  /** Shutdown: stops serving, flushes what the term owes (still fenced), then leaves the election. */
  async stop(): Promise<void> {
    this.stopping = true;
    const serving = this.serving;
    this.serving = undefined;
    if (serving) {
      this.halt(serving.mesh, { code: SessionCloseCode.goingAway, reason: 'the coordinator is shutting down' });
      await serving.mesh.host.close().catch((error: unknown) => this.options.log.error('flushing the state at shutdown failed', { error }));
    }
    await this.election.stop();
    await this.options.follower?.stop();
  }

  /** Elected: restore the state under a fresh store fenced by this term, then serve it. */
  private async takeOver(term: Term, before: TakeOver): Promise<void> {
    const started = this.options.parts.clock.now();
    const store = this.options.openStore(() => this.election.fence());
    let mesh: MeshServing;
    try {
      mesh = await this.options.serve({ ...this.options.parts, store, leadership: this });
    } catch (error) {
      this.options.log.error('taking over as leader failed; stepping down', { error, term: term.createRevision });
      await store.close().catch(() => {});
      return this.election.resign();
    }
    if (this.stopping || this.election.fence()?.createRevision !== term.createRevision) {
      // Deposed (or stopping) while restoring: this term never served.
      this.halt(mesh, { code: SessionCloseCode.goingAway, reason: 'the coordinator is shutting down' });
      return;
    }
    this.serving = { term, mesh };
    this.announceTakeOver(mesh, before);
    void this.options.follower?.stop();
    this.options.log.info('leading: serving the mesh', {
      term: term.createRevision, takeOverMs: Math.round(this.options.parts.clock.now() - started), fromFollowedCopy: store.loadedFromCopy === true,
      servers: mesh.host.coordinator.records().servers.size, regions: mesh.host.coordinator.records().regions.size,
    });
  }

  /**
   * Raises the take-over alert in the new term and resolves it after one detection window. It is
   * critical after an etcd outage: when nobody could lead for longer than a crashed leader's lease
   * takes to expire and be replaced, or when etcd failed this process recently (a stale leader key
   * that etcd kept alive across its lost quorum can hide the gap from the followers).
   */
  private announceTakeOver(mesh: MeshServing, before: TakeOver): void {
    const records = mesh.host.coordinator.records();
    if (records.servers.size === 0 && records.regions.size === 0) return;
    const ttlMs = this.options.election.ttlSeconds * 1000;
    const critical = (before.leaderlessMs !== null && before.leaderlessMs > 2 * ttlMs) ||
      (before.etcdFailedMsAgo !== null && before.etcdFailedMsAgo < 5 * ttlMs);
    mesh.host.run((core, now) => core.leaderTookOver({ leaderlessMs: before.leaderlessMs, critical, by: this.selfUrl }, now));
    setTimeout(() => {
      if (this.serving?.mesh === mesh) mesh.host.run((core, now) => core.leaderTakeOverSettled(now));
    }, this.options.parts.settings.mesh.failureTimeoutMs).unref();
  }

  /** Deposed: stop deciding at once; sessions are told where the new leader is, if known. */
  private stepDown(reason: string): void {
    const serving = this.serving;
    this.serving = undefined;
    if (serving === undefined) return;
    this.options.follower?.start();
    const leader = this.election.view().leaderUrl;
    this.halt(serving.mesh, {
      code: SessionCloseCode.notLeader,
      reason: leader === undefined ? 'not the leader any more; no leader is known yet' : `not the leader; leader: ${leader}`,
    });
    this.options.log.warn('stopped serving the mesh', { term: serving.term.createRevision, reason });
  }

  /** Stops a term's ticker, streams, sessions and observers; its store is left to its fence. */
  private halt(mesh: MeshServing, closing: { code: number; reason: string }): void {
    mesh.ticker?.stop();
    mesh.app.closeStreams(closing);
    mesh.observed.close();
  }
}
