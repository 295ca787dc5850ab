import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, type LoggerOptions } from '../../src/logger.ts';

/** A logger writing into an array. */
function capture(options: Omit<LoggerOptions, 'sink'> = {}) {
  const lines: string[] = [];
  const logger = createLogger({ ...options, sink: { write: (line) => lines.push(line) } });
  const records = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines, records };
}

describe('createLogger (pino)', () => {
  it('writes one JSON line per record with the level name, an ISO time, the message and the fields', () => {
    const { logger, lines, records } = capture();
    logger.info('listening', { url: 'http://127.0.0.1:8080' });
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith('\n') && !lines[0]!.slice(0, -1).includes('\n'), 'exactly one line');
    const [record] = records();
    assert.equal(record?.level, 'info');
    assert.equal(record?.msg, 'listening');
    assert.equal(record?.url, 'http://127.0.0.1:8080');
    assert.match(String(record?.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
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

  it('child loggers add fields to every record of the child only', () => {
    const { logger, records } = capture({ fields: { service: 'mesh' } });
    const child = logger.child({ component: 'store' });
    child.info('write', { attempt: 2 });
    logger.info('parent');
    const [fromChild, fromParent] = records();
    assert.deepEqual({ ...fromChild, time: undefined }, { level: 'info', time: undefined, msg: 'write', service: 'mesh', component: 'store', attempt: 2 });
    assert.deepEqual({ ...fromParent, time: undefined }, { level: 'info', time: undefined, msg: 'parent', service: 'mesh' });
  });

  it('serialises errors under `error` with type, message, stack, own properties and cause', () => {
    const { logger, records } = capture();
    const cause = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const error = new TypeError('write failed', { cause });
    logger.error('store write failed', { error });
    const err = records()[0]?.error as Record<string, unknown>;
    assert.equal(err.type, 'TypeError');
    assert.match(String(err.message), /write failed/);
    assert.match(String(err.stack), /TypeError: write failed/);
    assert.match(JSON.stringify(err), /EACCES/);
  });

  it('never throws on unserialisable fields', () => {
    const { logger, records } = capture();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.doesNotThrow(() => logger.warn('odd fields', { circular }));
    assert.equal(records()[0]?.msg, 'odd fields');
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
