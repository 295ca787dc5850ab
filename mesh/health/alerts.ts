/**
 * Administrator alerts: a book of open and resolved alerts, deduplicated by a caller-chosen key.
 *
 * An alert stays open until the condition that raised it is resolved. Raising the same condition
 * again while it is open does not page anyone twice: it bumps a counter, escalates the severity
 * if the new report is worse and keeps the same id, so operators see one line per problem.
 * Resolved alerts are history; only the newest `resolvedAlertsLimit` of them are kept, while
 * open alerts are never dropped because dropping one would hide a live problem.
 *
 * Ids are `alert-1`, `alert-2`, ... from a counter that is persisted with the book, so ids are
 * never reused across restarts and events that name an alert stay unambiguous.
 */
import { invariantFor, type Invariant } from '../base/invariant.ts';
import { ok, reject } from '../base/types.ts';
import type { AlertSeverity, Result } from '../base/types.ts';

const invariant: Invariant = invariantFor('alerts invariant violated');

/** What an alert is about, when it is about one server or one region. */
export interface AlertSubject {
  readonly serverId?: string;
  readonly regionId?: string;
}

/** One administrator alert as stored, persisted and published. */
export interface Alert {
  /** Stable id (`alert-N`), kept while the alert is re-raised. */
  readonly id: string;
  /** Identity of the condition; at most one open alert exists per key. */
  readonly dedupKey: string;
  /** Highest severity reported while the alert was open. */
  readonly severity: AlertSeverity;
  /** Short headline of the latest report. */
  readonly title: string;
  /** One or two sentences of the latest report, with the values that triggered it. */
  readonly message: string;
  /** When the alert was first raised. */
  readonly raisedAtMs: number;
  /** When the condition was last reported. */
  readonly lastRaisedAtMs: number;
  /** How many times the condition was reported while this alert was open. */
  readonly count: number;
  /** When the condition cleared; null while open. */
  readonly resolvedAtMs: number | null;
  /** When an operator acknowledged it; null until then, or again after an escalation. */
  readonly acknowledgedAtMs: number | null;
  /** Who acknowledged it, when they said. */
  readonly acknowledgedBy: string | null;
  /** The server or region the alert is about, if any. */
  readonly subject?: AlertSubject;
}

/** A report of a condition, as passed to {@link AlertBook.raise}. */
export interface AlertInput {
  readonly dedupKey: string;
  readonly severity: AlertSeverity;
  readonly title: string;
  readonly message: string;
  readonly subject?: AlertSubject;
}

/** Which alerts {@link AlertBook.list} returns; the default is every alert of every severity. */
export interface AlertFilter {
  readonly state?: 'open' | 'resolved' | 'all';
  readonly severity?: AlertSeverity;
}

/** Persisted form of an {@link AlertBook}; `fromJSON(toJSON())` restores it exactly. */
export interface AlertBookJSON {
  /** Number of the next id to hand out. */
  readonly nextId: number;
  /** Every kept alert, oldest raised first. */
  readonly alerts: readonly Alert[];
  /** Ids of the kept resolved alerts, oldest resolved first (the order in which they are dropped). */
  readonly resolvedOrder: readonly string[];
}

type MutableAlert = { -readonly [K in keyof Alert]: Alert[K] };

const severityRank: Readonly<Record<AlertSeverity, number>> = { info: 0, warning: 1, critical: 2 };

/** Open and resolved administrator alerts, deduplicated by key. */
export class AlertBook {
  private readonly limit: number;
  /** Every kept alert by id; Map insertion order is creation order. */
  private readonly alerts = new Map<string, MutableAlert>();
  private readonly openIdByKey = new Map<string, string>();
  /** Number of open alerts per subject region (regions without one are absent). */
  private readonly openPerRegion = new Map<string, number>();
  private resolvedOrder: string[] = [];
  private nextId = 1;
  /** Alerts whose persisted form changed since {@link takeChanges}, and whether the book's order did. */
  private readonly changedIds = new Set<string>();
  private orderChanged = false;

  /** @param resolvedAlertsLimit most resolved alerts kept; open alerts do not count. */
  constructor(resolvedAlertsLimit: number) {
    invariant(Number.isInteger(resolvedAlertsLimit) && resolvedAlertsLimit >= 0,
      `resolvedAlertsLimit must be an integer >= 0, got ${resolvedAlertsLimit}`);
    this.limit = resolvedAlertsLimit;
  }

  /**
   * Reports a condition. If an alert with the same key is open, it is updated in place (count,
   * last time, latest title and message, severity escalated but never lowered) and `isNew` is
   * false; otherwise a new alert is opened. `escalated` says that an open alert's severity rose.
   */
  raise(input: AlertInput, nowMs: number): { alert: Alert; isNew: boolean; escalated: boolean } {
    invariant(input.dedupKey.length > 0, 'an alert needs a non-empty dedupKey');
    invariant(input.severity in severityRank, () => `unknown alert severity ${String(input.severity)}`);
    invariant(Number.isFinite(nowMs), () => `nowMs must be finite, got ${nowMs}`);
    const openId = this.openIdByKey.get(input.dedupKey);
    const existing = openId === undefined ? undefined : this.alerts.get(openId);
    if (existing !== undefined) {
      this.changedIds.add(existing.id);
      const escalated = repeat(existing, input, nowMs);
      return { alert: copyAlert(existing), isNew: false, escalated };
    }
    return { alert: copyAlert(this.open(input, nowMs)), isNew: true, escalated: false };
  }

  /** Closes the open alert with this key; returns it, or undefined when none is open. */
  resolve(dedupKey: string, nowMs: number): Alert | undefined {
    const id = this.openIdByKey.get(dedupKey);
    const alert = id === undefined ? undefined : this.alerts.get(id);
    if (id === undefined || alert === undefined) return undefined;
    alert.resolvedAtMs = nowMs;
    this.changedIds.add(id);
    this.orderChanged = true;
    this.openIdByKey.delete(dedupKey);
    this.countAboutRegion(alert, -1);
    this.resolvedOrder.push(id);
    this.dropOldResolved();
    // The alert object outlives its removal from the map, so a limit of 0 still returns it.
    return copyAlert(alert);
  }

  /**
   * Records that an operator has seen an alert, open or resolved. Acknowledging again changes
   * nothing, so the first acknowledgement (who and when) is what the history shows.
   */
  acknowledge(id: string, nowMs: number, by?: string): Result<Alert, 'unknown_alert'> {
    const alert = this.alerts.get(id);
    if (alert === undefined) {
      return reject('unknown_alert', `No alert with id ${id} is kept; it may never have existed or have been resolved long ago.`);
    }
    if (alert.acknowledgedAtMs === null) {
      this.changedIds.add(id);
      alert.acknowledgedAtMs = nowMs;
      alert.acknowledgedBy = by ?? null;
    }
    return ok(copyAlert(alert));
  }

  /** Kept alerts matching the filter, newest raised first. */
  list(filter: AlertFilter = {}): Alert[] {
    const state = filter.state ?? 'all';
    const result: Alert[] = [];
    for (const alert of [...this.alerts.values()].reverse()) {
      const open = alert.resolvedAtMs === null;
      if (state === 'open' && !open) continue;
      if (state === 'resolved' && open) continue;
      if (filter.severity !== undefined && alert.severity !== filter.severity) continue;
      result.push(copyAlert(alert));
    }
    return result;
  }

  /** The alert with this id, or undefined if it never existed or was dropped. */
  get(id: string): Alert | undefined {
    const alert = this.alerts.get(id);
    return alert === undefined ? undefined : copyAlert(alert);
  }

  /** Number of open alerts. */
  openCount(): number {
    return this.openIdByKey.size;
  }

  /** Number of open alerts per severity, every severity present (zero when none). */
  openBySeverity(): Record<AlertSeverity, number> {
    const counts: Record<AlertSeverity, number> = { info: 0, warning: 0, critical: 0 };
    for (const id of this.openIdByKey.values()) {
      const alert = this.alerts.get(id);
      if (alert !== undefined) counts[alert.severity] += 1;
    }
    return counts;
  }

  /** Whether an alert with this key is open. */
  isOpen(dedupKey: string): boolean {
    return this.openIdByKey.has(dedupKey);
  }

  /**
   * Whether any open alert has this region as its subject: a cheap check that lets the core skip
   * building dedup keys for the many regions that have none.
   */
  hasOpenAboutRegion(regionId: string): boolean {
    return this.openPerRegion.size !== 0 && this.openPerRegion.has(regionId);
  }

  /**
   * What changed since the last call, for the core's change records: the ids of alerts changed or
   * dropped (`get` then returns the alert or undefined), and the book's numbering and resolved
   * order when they changed (null otherwise).
   */
  takeChanges(): { ids: string[]; order: Pick<AlertBookJSON, 'nextId' | 'resolvedOrder'> | null } {
    const ids = [...this.changedIds];
    this.changedIds.clear();
    const order = this.orderChanged ? { nextId: this.nextId, resolvedOrder: [...this.resolvedOrder] } : null;
    this.orderChanged = false;
    return { ids, order };
  }

  /** Plain-data snapshot for persistence. */
  toJSON(): AlertBookJSON {
    return {
      nextId: this.nextId,
      alerts: [...this.alerts.values()].map(copyAlert),
      resolvedOrder: [...this.resolvedOrder],
    };
  }

  /**
   * Restores a book saved by {@link toJSON}. A smaller limit than the saved one drops the oldest
   * resolved alerts at once; inconsistent data is a programmer error and throws.
   */
  static fromJSON(data: AlertBookJSON, resolvedAlertsLimit: number): AlertBook {
    const book = new AlertBook(resolvedAlertsLimit);
    invariant(Number.isInteger(data.nextId) && data.nextId >= 1, `bad nextId ${data.nextId}`);
    book.nextId = data.nextId;
    for (const alert of data.alerts) book.restore(alert);
    const resolvedCount = book.alerts.size - book.openIdByKey.size;
    invariant(data.resolvedOrder.length === resolvedCount, 'resolvedOrder must list every resolved alert once');
    for (const id of data.resolvedOrder) {
      invariant(book.alerts.get(id)?.resolvedAtMs != null, `resolvedOrder names ${id}, which is not a resolved alert`);
    }
    invariant(new Set(data.resolvedOrder).size === resolvedCount, 'resolvedOrder has duplicate ids');
    book.resolvedOrder = [...data.resolvedOrder];
    book.dropOldResolved();
    return book;
  }

  private open(input: AlertInput, nowMs: number): MutableAlert {
    const alert: MutableAlert = {
      id: `alert-${this.nextId}`,
      dedupKey: input.dedupKey,
      severity: input.severity,
      title: input.title,
      message: input.message,
      raisedAtMs: nowMs,
      lastRaisedAtMs: nowMs,
      count: 1,
      resolvedAtMs: null,
      acknowledgedAtMs: null,
      acknowledgedBy: null,
    };
    if (input.subject !== undefined) alert.subject = { ...input.subject };
    this.nextId += 1;
    this.changedIds.add(alert.id);
    this.orderChanged = true;
    this.alerts.set(alert.id, alert);
    this.openIdByKey.set(alert.dedupKey, alert.id);
    this.countAboutRegion(alert, 1);
    return alert;
  }

  private countAboutRegion(alert: Alert, delta: 1 | -1): void {
    const regionId = alert.subject?.regionId;
    if (regionId === undefined) return;
    const count = (this.openPerRegion.get(regionId) ?? 0) + delta;
    if (count > 0) this.openPerRegion.set(regionId, count);
    else this.openPerRegion.delete(regionId);
  }

  private restore(saved: Alert): void {
    invariant(!this.alerts.has(saved.id), `duplicate alert id ${saved.id}`);
    invariant(Number(saved.id.slice('alert-'.length)) < this.nextId, `alert id ${saved.id} is not below nextId`);
    const alert = copyAlert(saved) as MutableAlert;
    this.alerts.set(alert.id, alert);
    if (alert.resolvedAtMs !== null) return;
    invariant(!this.openIdByKey.has(alert.dedupKey), `two open alerts share dedupKey ${alert.dedupKey}`);
    this.openIdByKey.set(alert.dedupKey, alert.id);
    this.countAboutRegion(alert, 1);
  }

  private dropOldResolved(): void {
    while (this.resolvedOrder.length > this.limit) {
      const id = this.resolvedOrder.shift();
      if (id !== undefined) this.alerts.delete(id);
      if (id !== undefined) this.changedIds.add(id);
      this.orderChanged = true;
    }
  }
}

/**
 * Folds a repeated report into an open alert. The latest title and message win because they
 * carry the latest values. An escalation clears the acknowledgement: the operator acknowledged
 * a lesser problem and must be told about the worse one. Returns whether it escalated.
 */
function repeat(alert: MutableAlert, input: AlertInput, nowMs: number): boolean {
  alert.count += 1;
  alert.lastRaisedAtMs = Math.max(alert.lastRaisedAtMs, nowMs);
  alert.title = input.title;
  alert.message = input.message;
  if (severityRank[input.severity] <= severityRank[alert.severity]) return false;
  alert.severity = input.severity;
  alert.acknowledgedAtMs = null;
  alert.acknowledgedBy = null;
  return true;
}

/**
 * A deep copy, so that nothing a caller holds can change the book. Written field by field: alerts
 * are copied for every event a mass failure emits, and an object-rest copy takes V8's generic slow
 * path.
 */
function copyAlert(alert: Alert): Alert {
  const copy: MutableAlert = {
    id: alert.id, dedupKey: alert.dedupKey, severity: alert.severity, title: alert.title, message: alert.message,
    raisedAtMs: alert.raisedAtMs, lastRaisedAtMs: alert.lastRaisedAtMs, count: alert.count,
    resolvedAtMs: alert.resolvedAtMs, acknowledgedAtMs: alert.acknowledgedAtMs, acknowledgedBy: alert.acknowledgedBy,
  };
  if (alert.subject !== undefined) copy.subject = { ...alert.subject };
  return copy;
}
