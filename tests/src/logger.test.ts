import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, type LoggerOptions } from '../../src/logger.ts';

const fixedTime = new Date('2026-01-02T03:04:05.678Z');

/** A logger writing into an array, with a pinned clock. */
function capture(options: Omit<LoggerOptions, 'sink' | 'now'> = {}) {
  const lines: string[] = [];
  const logger = createLogger({ ...options, sink: { write: (line) => lines.push(line) }, now: () => fixedTime });
  const records = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines, records };
}

describe('createLogger', () => {
  it('writes one JSON line per record with time, level, msg and fields, in that order', () => {
    const { logger, lines } = capture();
    logger.info('listening', { url: 'http://127.0.0.1:8080' });
    assert.deepEqual(lines, ['{"time":"2026-01-02T03:04:05.678Z","level":"info","msg":"listening","url":"http://127.0.0.1:8080"}\n']);
  });

  it('drops records below its level', () => {
    const { logger, records } = capture({ level: 'warn' });
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    assert.deepEqual(records().map((record) => record.level), ['warn', 'error']);
    assert.equal(logger.isEnabled('info'), false);
    assert.equal(logger.isEnabled('error'), true);
  });

  it('defaults to info', () => {
    const { logger, records } = capture();
    logger.debug('hidden');
    logger.info('shown');
    assert.equal(logger.level, 'info');
    assert.deepEqual(records().map((record) => record.msg), ['shown']);
  });

  it('child loggers add fields; record fields win over bound ones; core keys cannot be overridden', () => {
    const { logger, records } = capture({ fields: { service: 'mesh' } });
    const child = logger.child({ component: 'store', attempt: 1 });
    child.info('write', { attempt: 2, level: 'fake', msg: 'fake', time: 'fake' });
    logger.info('parent');
    const [fromChild, fromParent] = records();
    assert.deepEqual(fromChild, { time: fixedTime.toISOString(), level: 'info', msg: 'write', service: 'mesh', component: 'store', attempt: 2 });
    assert.deepEqual(fromParent, { time: fixedTime.toISOString(), level: 'info', msg: 'parent', service: 'mesh' });
  });

  it('serialises errors with name, message, stack, own properties and cause, even nested', () => {
    const { logger, records } = capture();
    const cause = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const error = new TypeError('write failed', { cause });
    logger.error('store write failed', { err: error, context: { inner: new RangeError('deep') } });
    const [record] = records();
    const err = record?.err as Record<string, unknown>;
    assert.equal(err.name, 'TypeError');
    assert.equal(err.message, 'write failed');
    assert.match(String(err.stack), /TypeError: write failed/);
    assert.deepEqual({ ...(err.cause as object), stack: undefined }, { name: 'Error', message: 'EACCES: permission denied', code: 'EACCES', stack: undefined });
    assert.equal((record?.context as { inner: { name: string } }).inner.name, 'RangeError');
  });

  it('never throws on unserialisable fields', () => {
    const { logger, records } = capture();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.doesNotThrow(() => logger.warn('odd fields', { circular, big: 10n }));
    const [record] = records();
    assert.equal(record?.msg, 'odd fields');
    assert.match(String(record?.logError), /not serialisable/);
    logger.info('bigint', { big: 10n });
    assert.equal(records()[1]?.big, '10');
  });

  it('keeps no shared state between loggers', () => {
    const a = capture({ level: 'error' });
    const b = capture({ level: 'debug' });
    a.logger.info('a');
    b.logger.debug('b');
    assert.equal(a.lines.length, 0);
    assert.equal(b.lines.length, 1);
  });
});
