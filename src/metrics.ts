/**
 * Prometheus metrics (prom-client) over the running mesh. Three sources, each where it is cheapest:
 *
 * - State (servers, regions, degraded level, alerts, failover and action counts) is read from the
 *   core's views when Prometheus scrapes, so nothing is counted twice and a hot path pays nothing.
 *   Counts the core keeps since the last test-mesh reset are exposed as counters; a reset shows as
 *   a counter reset, which `rate()` handles.
 * - Durations of failovers are observed from the core's events as they are published.
 * - HTTP requests, store writes and webhook deliveries are observed by `src/` as they finish.
 *
 * One registry per service (no global default registry), with the default Node.js process metrics.
 */
import {
  Counter, Gauge, Histogram, Registry, collectDefaultMetrics,
} from 'prom-client';
import type { MetricsSource } from '../api/deps.ts';
import type { RequestRecord } from '../api/request-observer.ts';
import type { Coordinator } from '../mesh/core/coordinator.ts';
import type { MeshEvent } from '../mesh/effects/events.ts';
import type { DegradedLevel, RegionId } from '../mesh/base/types.ts';
import type { MeshStatus, MetricsView } from '../mesh/core/views.ts';

/** What the metrics read: the core's views, its clock, and its event stream. */
export interface MetricsHost {
  readonly coordinator: Coordinator;
  now(): number;
  subscribe(listener: (event: MeshEvent) => void): () => void;
}

/** Numeric value of each degraded level, as `mesh_degraded_level` exposes it. */
export const degradedLevelValue: Readonly<Record<DegradedLevel, number>> = Object.freeze({ NORMAL: 0, LIGHT: 1, MODERATE: 2, SEVERE: 3 });

/** Buckets of the failover histograms, in seconds: the target is well under the seed's 5 s. */
const failoverBuckets = [0.25, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 30, 60];

const heartbeatRoute = '/mesh/servers/{server_id}/heartbeat';

/** The service's metrics. */
export class MeshMetrics implements MetricsSource {
  readonly registry = new Registry();
  readonly contentType: string;
  private readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  private readonly heartbeats: Counter<'transport' | 'status_code'>;
  private readonly storeWrite: Histogram;
  private readonly storeFailures: Counter;
  private readonly detection: Histogram;
  private readonly recovery: Histogram;
  readonly webhookDeliveries: Counter<'outcome'>;
  readonly webhookQueue: Gauge;
  /** Failover id seen last per region, so a re-promotion does not sample detection twice. */
  private readonly failoverOfRegion = new Map<RegionId, string>();
  private host: MetricsHost | null = null;
  private unsubscribe: () => void = () => {};
  /** The core's views, read once per scrape however many metrics use them. */
  private scrape: { status?: MeshStatus; metrics?: MetricsView } = {};

  /** Builds the registry; the mesh's own metrics exist once {@link attach} is called. */
  constructor() {
    const registers = [this.registry];
    this.contentType = this.registry.contentType;
    collectDefaultMetrics({ register: this.registry });
    // prom-client's totals of these are gauges named `_total`, which Prometheus's naming rules
    // (and `promtool check metrics`) reserve for counters; the per-type series stay.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds', help: 'HTTP requests answered, by method, route template and status.',
      labelNames: ['method', 'route', 'status_code'], registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    this.heartbeats = new Counter({
      name: 'mesh_heartbeats_received_total', help: 'Heartbeats received from game servers, by transport (http, session) and answer status.',
      labelNames: ['transport', 'status_code'], registers,
    });
    this.storeWrite = new Histogram({
      name: 'mesh_store_write_duration_seconds', help: 'Duration of each durable write of the mesh state (one group commit).',
      registers, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    this.storeFailures = new Counter({ name: 'mesh_store_write_failures_total', help: 'Durable writes of the mesh state that failed.', registers });
    this.detection = new Histogram({
      name: 'mesh_failover_detection_seconds', help: 'Per failover: failure declared minus the failed primary\'s last heartbeat.',
      registers, buckets: failoverBuckets,
    });
    this.recovery = new Histogram({
      name: 'mesh_failover_recovery_seconds', help: 'Per completed failover: new primary acknowledged minus the failed primary\'s last heartbeat.',
      registers, buckets: failoverBuckets,
    });
    this.webhookDeliveries = new Counter({
      name: 'mesh_alert_webhook_deliveries_total', help: 'Alert webhook delivery attempts, by outcome (delivered, retried, dropped).',
      labelNames: ['outcome'], registers,
    });
    this.webhookQueue = new Gauge({ name: 'mesh_alert_webhook_queue_length', help: 'Alert notifications waiting for delivery.', registers });
  }

  /** Reads the mesh's state at every scrape and its failover durations from its events. */
  attach(host: MetricsHost): void {
    this.host = host;
    this.registerViews([this.registry], host.coordinator);
    this.unsubscribe = host.subscribe((event) => this.onEvent(event, host));
  }

  /** Prometheus text of every metric. */
  render(): Promise<string> {
    this.scrape = {};
    return this.registry.metrics();
  }

  private status(): MeshStatus {
    const host = this.host as MetricsHost;
    return (this.scrape.status ??= host.coordinator.status(host.now()));
  }

  private failoverView(): MetricsView {
    return (this.scrape.metrics ??= (this.host as MetricsHost).coordinator.metrics());
  }

  /** One answered HTTP request (see api/request-observer.ts). */
  observeRequest(record: RequestRecord): void {
    const status = String(record.status);
    this.httpDuration.observe({ method: record.method, route: record.route, status_code: status }, record.seconds);
    if (record.route === heartbeatRoute && record.method === 'POST') this.heartbeats.inc({ transport: 'http', status_code: status });
  }

  /** One heartbeat answered over a session. */
  sessionHeartbeat(): void {
    this.heartbeats.inc({ transport: 'session', status_code: '200' });
  }

  /** Exposes `mesh_sessions_open`, read at every scrape from `count` (the session hub's size). */
  countSessions(count: () => number): void {
    new Gauge({
      name: 'mesh_sessions_open', help: 'WebSocket sessions of game servers open now (at most one per server).',
      registers: [this.registry], collect() { this.set(count()); },
    });
  }

  /** One durable write that succeeded, with its duration. */
  storeWritten(ms: number): void {
    this.storeWrite.observe(ms / 1000);
  }

  /** One durable write that failed. */
  storeFailed(): void {
    this.storeFailures.inc();
  }

  /** Stops listening to the core (shutdown, tests). */
  close(): void {
    this.unsubscribe();
  }

  private onEvent(event: MeshEvent, host: MetricsHost): void {
    if (event.type === 'failover_initiated') {
      const record = host.coordinator.replication(event.regionId)?.lastFailover;
      if (!record || this.failoverOfRegion.get(event.regionId) === record.id) return;
      this.failoverOfRegion.set(event.regionId, record.id);
      this.detection.observe(record.detectionMs / 1000);
    } else if (event.type === 'failover_completed' && event.recoveryMs !== null) {
      this.recovery.observe(event.recoveryMs / 1000);
    }
  }

  /** Gauges and counters read from the core's views at scrape time. */
  private registerViews(registers: Registry[], coordinator: Coordinator): void {
    const status = () => this.status();
    new Gauge({
      name: 'mesh_servers', help: 'Game servers by zone and status (servers that left are not counted).',
      labelNames: ['zone', 'status'], registers,
      collect() {
        this.reset();
        for (const server of coordinator.servers()) if (server.status !== 'left') this.inc({ zone: server.zone, status: server.status });
      },
    });
    new Gauge({
      name: 'mesh_regions', help: 'Regions by failover state.', labelNames: ['state'], registers,
      collect() {
        const { regions } = status();
        for (const state of ['active', 'failing_over', 'under_replicated', 'unavailable'] as const) this.set({ state }, regions[state]);
      },
    });
    new Gauge({
      name: 'mesh_degraded_level', help: 'Degraded level: 0 NORMAL, 1 LIGHT, 2 MODERATE, 3 SEVERE.', registers,
      collect() { this.set(degradedLevelValue[status().degradedLevel]); },
    });
    new Gauge({
      name: 'mesh_fidelity_ratio', help: 'Simulation fidelity asked of every server (1 at NORMAL, 0.25 at SEVERE).', registers,
      collect() { this.set(status().fidelity); },
    });
    new Gauge({
      name: 'mesh_expedited_heartbeat_servers',
      help: 'Servers whose latest reply wanted a sooner heartbeat; past the budget (--expedited-heartbeat-budget) their interval is stretched.',
      registers, collect() { this.set(coordinator.heartbeatCadence.wantingCount); },
    });
    new Gauge({
      name: 'mesh_tilt', help: '1 while the coordinator is in TILT after a stall (no failure is declared), else 0.', registers,
      collect() { this.set(status().tilt ? 1 : 0); },
    });
    new Gauge({
      name: 'mesh_alerts_open', help: 'Open administrator alerts by severity.', labelNames: ['severity'], registers,
      collect() {
        this.reset();
        for (const severity of ['info', 'warning', 'critical'] as const) this.set({ severity }, 0);
        for (const alert of coordinator.listAlerts({ state: 'open' })) this.inc({ severity: alert.severity });
      },
    });
    this.registerFailoverViews(registers);
  }

  private registerFailoverViews(registers: Registry[]): void {
    const view = () => this.failoverView();
    new Counter({
      name: 'mesh_failovers_total', help: 'Finished failovers by outcome (completed, failed) since the last reset.',
      labelNames: ['outcome'], registers,
      collect() {
        const { failovers } = view();
        this.reset();
        this.inc({ outcome: 'completed' }, failovers.completed);
        this.inc({ outcome: 'failed' }, failovers.failed);
      },
    });
    new Gauge({
      name: 'mesh_failovers_in_progress', help: 'Failovers started and not yet finished.', registers,
      collect() { this.set(view().failovers.in_progress); },
    });
    new Counter({
      name: 'mesh_false_failovers_total', help: 'Failovers of servers that turned out to be alive.', registers,
      collect() { this.reset(); this.inc(view().falseFailovers); },
    });
    new Counter({
      name: 'mesh_actions_total', help: 'Player actions by outcome (buffered, replayed, expired, rejected) since the last reset.',
      labelNames: ['outcome'], registers,
      collect() {
        const { actions } = view();
        this.reset();
        for (const outcome of ['buffered', 'replayed', 'expired', 'rejected'] as const) this.inc({ outcome }, actions[outcome]);
      },
    });
    new Gauge({
      name: 'mesh_actions_pending', help: 'Buffered player actions not yet acknowledged by a primary.', registers,
      collect() { this.set(view().actions.pending); },
    });
    new Gauge({
      name: 'mesh_replication_coverage_ratio', help: 'Share of wanted replicas (primary and backups) that exist and are confirmed.', registers,
      collect() { this.set(view().replicationCoverage); },
    });
  }
}
