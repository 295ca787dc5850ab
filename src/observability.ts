/**
 * What operators see of the running service, wired in one place: the Prometheus metrics, one log
 * line per decision and per refused request, and the signed alert webhooks. Built before the store
 * (whose writes it measures) and attached to the mesh once that is restored.
 */
import type { RequestRecord } from '../api/request-observer.ts';
import { alertBody } from '../api/routes/alerts.ts';
import type { MeshEvent } from '../mesh/effects/events.ts';
import { logDecisions, logRefusal } from './decision-log.ts';
import type { Logger } from './logger.ts';
import { MeshMetrics, type MetricsHost } from './metrics.ts';
import type { Settings } from './settings.ts';
import { AlertWebhooks } from './webhooks.ts';

/** The running observability of one service. */
export class Observability {
  readonly metrics = new MeshMetrics();
  private readonly webhooks: AlertWebhooks | null;
  private readonly stops: (() => void)[] = [];

  constructor(settings: Pick<Settings, 'alertWebhookUrls' | 'alertWebhookSecret'>, private readonly log: Logger) {
    this.webhooks = settings.alertWebhookUrls.length === 0 ? null : new AlertWebhooks({
      urls: settings.alertWebhookUrls, secret: settings.alertWebhookSecret ?? '', log: log.child({ component: 'webhooks' }),
      onOutcome: (outcome, queued) => {
        this.metrics.webhookDeliveries.inc({ outcome });
        this.metrics.webhookQueue.set(queued);
      },
    });
  }

  /** Starts observing the mesh: metrics, the decision log and the webhooks. */
  attach(host: MetricsHost): void {
    this.metrics.attach(host);
    this.stops.push(() => this.metrics.close(), logDecisions(host, this.log));
    const webhooks = this.webhooks;
    if (webhooks) this.stops.push(host.subscribe((event) => { if (event.type === 'administrator_alert') webhooks.notify(alertNotification(event)); }));
  }

  /** For `createApp`'s `observeRequest`. */
  readonly observeRequest = (record: RequestRecord): void => {
    this.metrics.observeRequest(record);
    logRefusal(this.log, record);
  };

  /** For the store's `onWritten`. */
  readonly storeWritten = (ms: number): void => this.metrics.storeWritten(ms);

  /** For the store's `onError`: counted and logged. */
  readonly storeFailed = (error: unknown): void => {
    this.metrics.storeFailed();
    this.log.error('store write failed', { error });
  };

  /** Stops observing (shutdown). */
  close(): void {
    for (const stop of this.stops.splice(0)) stop();
    this.webhooks?.close();
  }
}

/** The JSON a webhook receives: what happened, and the alert as `GET /mesh/alerts` shows it. */
export function alertNotification(event: MeshEvent & { type: 'administrator_alert' }): Record<string, unknown> {
  return {
    type: event.alert.resolvedAtMs === null ? 'alert_raised' : 'alert_resolved',
    event_id: event.seq, at: Math.round(event.atMs), alert: alertBody(event.alert),
  };
}
