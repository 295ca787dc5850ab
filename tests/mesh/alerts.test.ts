import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AlertBook } from '../../mesh/health/alerts.ts';
import type { Alert, AlertInput, AlertBookJSON } from '../../mesh/health/alerts.ts';
import type { AlertSeverity } from '../../mesh/base/types.ts';
import { testMeshConfig } from '../../mesh/base/config.ts';
import { raiseAlert } from '../../mesh/failover/context.ts';
import { Coordinator } from '../../mesh/core/coordinator.ts';
import { SeededRandom } from '../../mesh/runtime/random.ts';

const input = (dedupKey: string, severity: AlertSeverity = 'warning', message = 'm'): AlertInput => ({
  dedupKey,
  severity,
  title: `title ${dedupKey}`,
  message,
});

/** A JSON trip through text, as persistence does. */
const roundTrip = (book: AlertBook, limit: number): AlertBook =>
  AlertBook.fromJSON(JSON.parse(JSON.stringify(book.toJSON())) as AlertBookJSON, limit);

describe('AlertBook.raise', () => {
  test('a new condition opens an alert with deterministic ids', () => {
    const book = new AlertBook(10);
    const first = book.raise({ ...input('a'), subject: { serverId: 's1' } }, 100);
    const second = book.raise(input('b'), 200);
    assert.equal(first.isNew, true);
    assert.deepEqual(first.alert, {
      id: 'alert-1', dedupKey: 'a', severity: 'warning', title: 'title a', message: 'm',
      raisedAtMs: 100, lastRaisedAtMs: 100, count: 1, resolvedAtMs: null,
      acknowledgedAtMs: null, acknowledgedBy: null, subject: { serverId: 's1' },
    });
    assert.equal(second.alert.id, 'alert-2');
    assert.equal('subject' in second.alert, false);
  });

  test('a repeated open condition is deduplicated: same id, count and time bumped, latest message', () => {
    const book = new AlertBook(10);
    book.raise(input('a', 'warning', 'first'), 100);
    const again = book.raise(input('a', 'warning', 'second'), 250);
    assert.equal(again.isNew, false);
    assert.equal(again.alert.id, 'alert-1');
    assert.equal(again.alert.count, 2);
    assert.equal(again.alert.raisedAtMs, 100);
    assert.equal(again.alert.lastRaisedAtMs, 250);
    assert.equal(again.alert.message, 'second');
    assert.equal(book.openCount(), 1);
  });

  const escalations: [AlertSeverity, AlertSeverity, AlertSeverity][] = [
    ['info', 'warning', 'warning'],
    ['info', 'critical', 'critical'],
    ['warning', 'critical', 'critical'],
    ['warning', 'info', 'warning'],
    ['critical', 'info', 'critical'],
    ['critical', 'warning', 'critical'],
    ['warning', 'warning', 'warning'],
  ];
  for (const [first, second, expected] of escalations) {
    test(`severity ${first} then ${second} gives ${expected} (escalate, never lower)`, () => {
      const book = new AlertBook(10);
      book.raise(input('k', first), 0);
      const again = book.raise(input('k', second), 1);
      assert.equal(again.alert.severity, expected);
      assert.equal(again.escalated, expected !== first, 'escalated says whether the severity rose');
    });
  }

  test('an escalation clears the acknowledgement; a repeat at the same severity keeps it', () => {
    const book = new AlertBook(10);
    const { alert } = book.raise(input('k', 'warning'), 0);
    book.acknowledge(alert.id, 5, 'ops');
    assert.equal(book.raise(input('k', 'warning'), 10).alert.acknowledgedAtMs, 5);
    const escalated = book.raise(input('k', 'critical'), 20).alert;
    assert.equal(escalated.acknowledgedAtMs, null);
    assert.equal(escalated.acknowledgedBy, null);
  });
});

describe('AlertBook.resolve', () => {
  test('resolves the open alert; the next raise of the key opens a new alert', () => {
    const book = new AlertBook(10);
    book.raise(input('a'), 0);
    const resolved = book.resolve('a', 50);
    assert.equal(resolved?.id, 'alert-1');
    assert.equal(resolved?.resolvedAtMs, 50);
    assert.equal(book.isOpen('a'), false);
    assert.equal(book.openCount(), 0);
    const reopened = book.raise(input('a'), 60);
    assert.equal(reopened.isNew, true);
    assert.equal(reopened.alert.id, 'alert-2');
  });

  test('resolving a key with no open alert returns undefined', () => {
    const book = new AlertBook(10);
    assert.equal(book.resolve('missing', 0), undefined);
    book.raise(input('a'), 0);
    book.resolve('a', 1);
    assert.equal(book.resolve('a', 2), undefined);
  });

  test('only the newest resolved alerts are kept, oldest resolved dropped first', () => {
    const book = new AlertBook(2);
    for (const key of ['a', 'b', 'c']) book.raise(input(key), 0);
    // Resolved in the order b, a, c: b was resolved first, so it goes first.
    book.resolve('b', 10);
    book.resolve('a', 20);
    book.resolve('c', 30);
    assert.deepEqual(book.list({ state: 'resolved' }).map((a) => a.dedupKey), ['c', 'a']);
    assert.equal(book.get('alert-2'), undefined);
  });

  test('open alerts are never dropped, however many there are', () => {
    const book = new AlertBook(1);
    for (let i = 0; i < 50; i += 1) book.raise(input(`open-${i}`), i);
    book.raise(input('x'), 0);
    book.resolve('x', 1);
    book.raise(input('y'), 0);
    book.resolve('y', 2);
    assert.equal(book.openCount(), 50);
    assert.equal(book.list({ state: 'resolved' }).length, 1);
  });

  test('with a limit of 0 the resolved alert is still returned but not kept', () => {
    const book = new AlertBook(0);
    book.raise(input('a'), 0);
    assert.equal(book.resolve('a', 1)?.resolvedAtMs, 1);
    assert.equal(book.list().length, 0);
  });
});

describe('AlertBook.acknowledge', () => {
  test('acknowledges once; a second acknowledgement keeps the first time and person', () => {
    const book = new AlertBook(10);
    const { alert } = book.raise(input('a'), 0);
    const first = book.acknowledge(alert.id, 10, 'alice');
    const second = book.acknowledge(alert.id, 20, 'bob');
    assert.ok(first.ok && second.ok);
    assert.equal(second.value.acknowledgedAtMs, 10);
    assert.equal(second.value.acknowledgedBy, 'alice');
    assert.equal(book.isOpen('a'), true, 'acknowledging does not resolve');
  });

  test('without a name the acknowledger is null; resolved alerts can be acknowledged', () => {
    const book = new AlertBook(10);
    book.raise(input('a'), 0);
    book.resolve('a', 5);
    const result = book.acknowledge('alert-1', 6);
    assert.ok(result.ok);
    assert.equal(result.value.acknowledgedBy, null);
    assert.equal(result.value.acknowledgedAtMs, 6);
  });

  test('an unknown id is a typed rejection', () => {
    const result = new AlertBook(10).acknowledge('alert-99', 0);
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.code === 'unknown_alert' && result.detail.includes('alert-99'));
  });
});

describe('AlertBook queries', () => {
  const build = (): AlertBook => {
    const book = new AlertBook(10);
    book.raise(input('a', 'info'), 1);
    book.raise(input('b', 'critical'), 2);
    book.raise(input('c', 'warning'), 3);
    book.raise(input('d', 'critical'), 4);
    book.resolve('b', 5);
    return book;
  };
  const cases: [string, Parameters<AlertBook['list']>[0], string[]][] = [
    ['no filter', undefined, ['d', 'c', 'b', 'a']],
    ['all', { state: 'all' }, ['d', 'c', 'b', 'a']],
    ['open', { state: 'open' }, ['d', 'c', 'a']],
    ['resolved', { state: 'resolved' }, ['b']],
    ['critical', { severity: 'critical' }, ['d', 'b']],
    ['open critical', { state: 'open', severity: 'critical' }, ['d']],
    ['resolved info', { state: 'resolved', severity: 'info' }, []],
  ];
  for (const [name, filter, keys] of cases) {
    test(`list(${name}) is newest first`, () => {
      assert.deepEqual(build().list(filter).map((a) => a.dedupKey), keys);
    });
  }

  test('open alerts about a region are tracked through raise, repeat, resolve and a restart', () => {
    const book = new AlertBook(10);
    const about = (regionId: string, key: string) => ({ ...input(key), subject: { regionId } });
    assert.equal(book.hasOpenAboutRegion('r1'), false);
    book.raise(about('r1', 'unavailable:r1'), 100);
    book.raise(about('r1', 'under:r1'), 100);
    book.raise(about('r1', 'under:r1'), 150);
    book.raise({ ...input('server:s1'), subject: { serverId: 's1' } }, 100);
    assert.equal(book.hasOpenAboutRegion('r1'), true);
    assert.equal(book.hasOpenAboutRegion('s1'), false, 'a server subject is not a region');
    book.resolve('unavailable:r1', 200);
    assert.equal(book.hasOpenAboutRegion('r1'), true, 'one of two is still open (the repeat did not count twice)');
    assert.equal(roundTrip(book, 10).hasOpenAboutRegion('r1'), true);
    book.resolve('under:r1', 300);
    assert.equal(book.hasOpenAboutRegion('r1'), false);
    assert.equal(roundTrip(book, 10).hasOpenAboutRegion('r1'), false);
  });

  test('counts of open alerts', () => {
    const book = build();
    assert.equal(book.openCount(), 3);
    assert.deepEqual(book.openBySeverity(), { info: 1, warning: 1, critical: 1 });
    assert.deepEqual(new AlertBook(1).openBySeverity(), { info: 0, warning: 0, critical: 0 });
    assert.equal(book.isOpen('a'), true);
    assert.equal(book.isOpen('b'), false);
  });

  test('returned alerts are copies: mutating them does not change the book', () => {
    const book = new AlertBook(10);
    const raised = book.raise({ ...input('a'), subject: { regionId: 'r1' } }, 0).alert as {
      -readonly [K in keyof Alert]: Alert[K]
    };
    raised.count = 99;
    (raised.subject as { regionId?: string }).regionId = 'hacked';
    const listed = book.list()[0] as { severity: AlertSeverity };
    listed.severity = 'critical';
    assert.equal(book.get('alert-1')?.count, 1);
    assert.equal(book.get('alert-1')?.subject?.regionId, 'r1');
    assert.equal(book.get('alert-1')?.severity, 'warning');
    assert.equal(book.openBySeverity().critical, 0);
  });
});

describe('AlertBook JSON', () => {
  test('round-trips exactly, and the id counter survives', () => {
    const book = new AlertBook(3);
    book.raise({ ...input('a', 'critical'), subject: { serverId: 's', regionId: 'r' } }, 1);
    book.raise(input('b'), 2);
    book.raise(input('b'), 3);
    book.raise(input('c'), 4);
    book.acknowledge('alert-2', 5, 'ops');
    book.resolve('c', 6);
    book.resolve('a', 7);
    const restored = roundTrip(book, 3);
    assert.deepEqual(restored.toJSON(), book.toJSON());
    assert.deepEqual(restored.list(), book.list());
    assert.equal(restored.isOpen('b'), true);
    assert.equal(restored.raise(input('b'), 8).isNew, false);
    assert.equal(restored.raise(input('z'), 9).alert.id, 'alert-4');
  });

  test('drop order of resolved alerts survives a restart', () => {
    const book = new AlertBook(2);
    for (const key of ['a', 'b']) book.raise(input(key), 0);
    book.resolve('b', 1);
    book.resolve('a', 2);
    const restored = roundTrip(book, 2);
    restored.raise(input('c'), 3);
    restored.resolve('c', 4);
    assert.deepEqual(restored.list().map((a) => a.dedupKey), ['c', 'a']);
  });

  test('a smaller limit on restore drops the oldest resolved alerts', () => {
    const book = new AlertBook(5);
    for (const key of ['a', 'b', 'c']) {
      book.raise(input(key), 0);
      book.resolve(key, 1);
    }
    assert.deepEqual(roundTrip(book, 1).list().map((a) => a.dedupKey), ['c']);
  });

  test('inconsistent data is rejected loudly', () => {
    const book = new AlertBook(5);
    book.raise(input('a'), 0);
    const data = book.toJSON();
    const twoOpen: AlertBookJSON = { ...data, nextId: 3, alerts: [...data.alerts, { ...data.alerts[0]!, id: 'alert-2' }] };
    assert.throws(() => AlertBook.fromJSON(twoOpen, 5), /two open alerts share dedupKey a/);
    assert.throws(() => AlertBook.fromJSON({ ...data, nextId: 1 }, 5), /not below nextId/);
    assert.throws(() => AlertBook.fromJSON({ ...data, resolvedOrder: ['alert-1'] }, 5), /resolvedOrder/);
  });
});

describe('raiseAlert (the core publishes what operators must see)', () => {
  const published = (c: Coordinator) => c.drain().filter((e) => e.type === 'emit' && e.event.type === 'administrator_alert').length;

  test('a new alert and an escalation are published; a repeat at the same or a lower severity is not', () => {
    const c = new Coordinator(testMeshConfig, 0);
    c.drain();
    const steps: [AlertSeverity, number][] = [['warning', 1], ['warning', 0], ['info', 0], ['critical', 1], ['critical', 0]];
    for (const [i, [severity, expected]] of steps.entries()) {
      raiseAlert(Coordinator.partsForTests(c), input('k', severity), i);
      assert.equal(published(c), expected, `report ${i + 1} (${severity})`);
    }
  });
});
