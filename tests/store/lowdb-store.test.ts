import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { after, describe, it, test } from 'node:test';
import { CorruptDataFileError } from '../../src/store/durable-file-adapter.ts';
import { CorruptLogError } from '../../src/store/change-log.ts';
import { DataFormatError, LowdbStore, type LowdbStoreOptions } from '../../src/store/lowdb-store.ts';
import { RecordSource, stored, storeContract } from './store-contract.ts';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const crashWriter = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
const tempDirs: string[] = [];

after(async () => {
  await Promise.all(tempDirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
});

/** A fresh directory under the OS temp dir, removed when the file's tests end. */
async function freshDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mesh-store-'));
  tempDirs.push(dir);
  return dir;
}

storeContract('LowdbStore', async (options) => {
  // A nested, not yet existing directory: the store must create it.
  const dataDir = path.join(await freshDir(), 'nested', 'data');
  await fs.mkdir(dataDir, { recursive: true });
  return new LowdbStore({ dataDir, duringWrite: options.duringWrite });
});

/** A store over `dataDir` with a source of records, a few records appended. */
async function written(dataDir: string, options: Partial<LowdbStoreOptions> = {}, count = 3): Promise<{ store: LowdbStore; source: RecordSource }> {
  const store = new LowdbStore({ dataDir, ...options });
  await store.load();
  const source = new RecordSource();
  for (let i = 1; i <= count; i += 1) await store.append(source.take, source.set(`k${i}`, { i }));
  return { store, source };
}

const line = (json: string) => `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;

describe('LowdbStore on a real disk', () => {
  it('appends checksummed record lines and a commit line per batch to mesh.1.log, mode 0600', async () => {
    const dataDir = await freshDir();
    const { store } = await written(dataDir, {}, 2);
    const text = await fs.readFile(path.join(dataDir, 'mesh.1.log'), 'utf8');
    assert.equal(text, line('{"s":1,"k":"k1","v":{"i":1}}') + line('{"c":1,"n":1}') + line('{"s":2,"k":"k2","v":{"i":2}}') + line('{"c":2,"n":1}'));
    assert.equal((await fs.stat(path.join(dataDir, 'mesh.1.log'))).mode & 0o777, 0o600);
    await store.close();
  });

  it('close folds the log into a snapshot: one file, read back with its seq', async () => {
    const dataDir = await freshDir();
    const { store } = await written(dataDir, { wallClockMs: () => 1234 });
    await store.close();
    assert.deepEqual(await fs.readdir(dataDir), ['mesh.2.log', 'mesh.json']);
    assert.equal((await fs.stat(path.join(dataDir, 'mesh.2.log'))).size, 0);
    const snapshot = JSON.parse(await fs.readFile(path.join(dataDir, 'mesh.json'), 'utf8'));
    assert.deepEqual(snapshot, { formatVersion: 2, savedAtMs: 1234, seq: 3, log: 2, records: { k1: { i: 1 }, k2: { i: 2 }, k3: { i: 3 } } });
    assert.equal((await fs.stat(path.join(dataDir, 'mesh.json'))).mode & 0o777, 0o600);
    const reopened = new LowdbStore({ dataDir });
    assert.deepEqual(await stored(reopened), { k1: { i: 1 }, k2: { i: 2 }, k3: { i: 3 } });
    assert.equal(reopened.durableSeq(), 3);
  });

  it('reopening after a crash (no close) replays the log', async () => {
    const dataDir = await freshDir();
    await written(dataDir);
    const reopened = new LowdbStore({ dataDir });
    assert.deepEqual(await stored(reopened), { k1: { i: 1 }, k2: { i: 2 }, k3: { i: 3 } });
    assert.equal(reopened.durableSeq(), 3);
  });

  it('writes a snapshot in the background when the log passes its record threshold, then deletes the old log', async () => {
    const dataDir = await freshDir();
    const { store, source } = await written(dataDir, { compaction: { maxLogRecords: 10 } }, 25);
    await store.settled();
    assert.ok(store.snapshots >= 2, `${store.snapshots} snapshots`);
    const files = await fs.readdir(dataDir);
    assert.equal(files.filter((f) => f.endsWith('.log')).length, 1, files.join(' '));
    const expected = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`k${i + 1}`, { i: i + 1 }]));
    assert.deepEqual(await stored(new LowdbStore({ dataDir })), expected);
    await store.append(source.take, source.set('k1', null));
    delete expected.k1;
    assert.deepEqual(await stored(new LowdbStore({ dataDir })), expected);
  });

  it('keeps any Unicode and large values through log lines, a restart and snapshots of loaded and new records', async () => {
    const dataDir = await freshDir();
    const store = new LowdbStore({ dataDir });
    const source = new RecordSource();
    // Multi-byte UTF-8 and a surrogate pair in keys and values; values larger than the line buffer's
    // first size; together more than one snapshot chunk.
    const big = (i: number) => ({ i, text: `é€😀${'x'.repeat(150_000)}` });
    const expected: Record<string, unknown> = { 'région:🙂': { name: 'Zürich 東京' } };
    await store.append(source.take, source.set('région:🙂', { name: 'Zürich 東京' }));
    const log = await fs.readFile(path.join(dataDir, 'mesh.1.log'), 'utf8');
    assert.equal(log, line('{"s":1,"k":"région:🙂","v":{"name":"Zürich 東京"}}') + line('{"c":1,"n":1}'));
    for (let i = 0; i < 8; i += 1) {
      expected[`big:${i}`] = big(i);
      await store.append(source.take, source.set(`big:${i}`, big(i)));
    }
    assert.deepEqual(await stored(new LowdbStore({ dataDir })), expected, 'replayed from the log');
    await store.close();
    const restarted = new LowdbStore({ dataDir });
    assert.deepEqual(await stored(restarted), expected, 'read from the snapshot');
    const changes = new RecordSource();
    changes.seq = source.seq;
    expected['big:3'] = { i: 'ü' };
    await restarted.append(changes.take, changes.set('big:3', { i: 'ü' }));
    delete expected['big:5'];
    await restarted.append(changes.take, changes.set('big:5', null));
    await restarted.close();
    assert.deepEqual(JSON.parse(await fs.readFile(path.join(dataDir, 'mesh.json'), 'utf8')).records, expected);
    assert.deepEqual(await stored(new LowdbStore({ dataDir })), expected, 'read from the second snapshot');
  });

  it('a failed snapshot leaves the logs, and everything replays', async () => {
    const dataDir = await freshDir();
    const errors: unknown[] = [];
    const log = { info: () => {}, warn: () => {}, error: (_m: string, f?: Record<string, unknown>) => errors.push(f?.error) };
    const { store } = await written(dataDir, {
      compaction: { maxLogRecords: 4 }, log, adapter: { beforeRename: () => { throw new Error('injected rename failure'); } },
    }, 9);
    await store.settled();
    assert.equal(store.snapshots, 0);
    assert.match(String(errors[0]), /injected rename failure/);
    assert.ok(!(await fs.readdir(dataDir)).includes('mesh.json'));
    assert.equal((await stored(new LowdbStore({ dataDir })))?.k9 !== undefined, true);
    assert.equal(Object.keys((await stored(new LowdbStore({ dataDir }))) ?? {}).length, 9);
  });

  it('cuts off a torn batch at the end of the newest log with a warning, and appends after it', async () => {
    const dataDir = await freshDir();
    await written(dataDir);
    const file = path.join(dataDir, 'mesh.1.log');
    await fs.appendFile(file, line('{"s":4,"k":"k4","v":{"i":4}}') + '0000abcd {"s":4,"k":"k5"');
    const warnings: string[] = [];
    const log = { info: () => {}, warn: (m: string) => warnings.push(m), error: () => {} };
    const { store } = await written(dataDir, { log }, 0);
    assert.match(warnings[0] ?? '', /torn batch/);
    assert.equal(store.durableSeq(), 3);
    const source = new RecordSource();
    source.seq = 3;
    await store.append(source.take, source.set('k6', 6));
    assert.deepEqual(await stored(new LowdbStore({ dataDir })), { k1: { i: 1 }, k2: { i: 2 }, k3: { i: 3 }, k6: 6 });
  });

  test('refuses a corrupt record before a committed batch and leaves the files untouched', async () => {
    const dataDir = await freshDir();
    await written(dataDir);
    const file = path.join(dataDir, 'mesh.1.log');
    const text = await fs.readFile(file, 'utf8');
    const tampered = text.replace('"i":2', '"i":7');
    await fs.writeFile(file, tampered);
    await assert.rejects(new LowdbStore({ dataDir }).load(), (error: unknown) => {
      assert.ok(error instanceof CorruptLogError);
      assert.match(error.message, /mesh\.1\.log is corrupt \(line 3: checksum mismatch, before the committed batch 2\)/);
      return true;
    });
    assert.equal(await fs.readFile(file, 'utf8'), tampered);
    assert.deepEqual(await fs.readdir(dataDir), ['mesh.1.log']);
  });

  it('refuses a missing log between the snapshot and a newer log', async () => {
    const dataDir = await freshDir();
    const { store } = await written(dataDir, { compaction: { maxLogRecords: 2 } }, 5);
    await store.settled();
    const logs = (await fs.readdir(dataDir)).filter((f) => f.endsWith('.log'));
    await fs.writeFile(path.join(dataDir, 'mesh.9.log'), '');
    await assert.rejects(new LowdbStore({ dataDir }).load(), /missing, but newer logs exist/);
    assert.ok(logs.length >= 1);
  });

  it('loads a data file of the previous whole-document format through legacyRecords', async () => {
    const dataDir = await freshDir();
    await fs.writeFile(path.join(dataDir, 'mesh.json'), JSON.stringify({ formatVersion: 1, savedAtMs: 5, seq: 7, state: { a: 1, b: 2 } }));
    const legacyRecords = (state: unknown) => Object.entries(state as Record<string, unknown>).map(([key, value]) => ({ key, value }));
    const store = new LowdbStore({ dataDir, legacyRecords });
    assert.deepEqual(await stored(store), { a: 1, b: 2 });
    assert.equal(store.durableSeq(), 7);
    const source = new RecordSource();
    source.seq = 7;
    await store.append(source.take, source.set('c', 3));
    await store.close();
    assert.deepEqual(await stored(new LowdbStore({ dataDir, legacyRecords })), { a: 1, b: 2, c: 3 });
    assert.equal(JSON.parse(await fs.readFile(path.join(dataDir, 'mesh.json'), 'utf8')).formatVersion, 2);
  });

  it('refuses a corrupt snapshot with an error naming its path', async () => {
    for (const content of ['{"formatVersion":2,"seq":3,"rec', '', 'null', '7']) {
      const dataDir = await freshDir();
      await fs.writeFile(path.join(dataDir, 'mesh.json'), content);
      await assert.rejects(new LowdbStore({ dataDir }).load(), (error: unknown) => {
        assert.ok(error instanceof CorruptDataFileError, `content ${JSON.stringify(content)}`);
        assert.ok(error.message.includes(path.join(dataDir, 'mesh.json')));
        return true;
      });
    }
  });

  it('refuses an unknown format version or a file that is not a snapshot', async () => {
    const cases = [
      [{ formatVersion: 3, savedAtMs: 0, seq: 1, records: {} }, /formatVersion 3, but this build reads only 1 and 2/],
      [{ counter: 1 }, /no formatVersion/],
      [{ formatVersion: 2, savedAtMs: 0, seq: -1, log: 1, records: {} }, /invalid seq/],
      [{ formatVersion: 2, savedAtMs: 0, seq: 1, log: 0, records: {} }, /invalid log generation/],
      [{ formatVersion: 2, savedAtMs: 0, seq: 1, log: 1 }, /no records/],
      [{ formatVersion: 1, savedAtMs: 0, seq: 1 }, /no state/],
    ] as const;
    for (const [content, message] of cases) {
      const dataDir = await freshDir();
      await fs.writeFile(path.join(dataDir, 'mesh.json'), JSON.stringify(content));
      await assert.rejects(new LowdbStore({ dataDir }).load(), (error: unknown) => {
        assert.ok(error instanceof DataFormatError);
        assert.match(error.message, message);
        assert.ok(error.message.includes(dataDir));
        return true;
      });
    }
  });

  it('ignores and removes a snapshot temp file left by a crash', async () => {
    const dataDir = await freshDir();
    const { store } = await written(dataDir);
    await store.close();
    await fs.writeFile(path.join(dataDir, 'mesh.json.tmp'), '{"formatVersion":2,"seq":9,"rec');
    assert.deepEqual(await stored(new LowdbStore({ dataDir })), { k1: { i: 1 }, k2: { i: 2 }, k3: { i: 3 } });
    assert.ok(!(await fs.readdir(dataDir)).includes('mesh.json.tmp'));
  });

  it('keeps every acknowledged append across SIGKILL at random moments, also during snapshot rewrites', { timeout: 120_000 }, async () => {
    for (let round = 0; round < 8; round += 1) {
      const dataDir = await freshDir();
      // Random, and reported in every message, so that a failing round can be reasoned about.
      const killAfterAcks = 3 + Math.floor(Math.random() * 60);
      const result = await crashRound(dataDir, killAfterAcks);
      const store = new LowdbStore({ dataDir });
      const loaded = await store.load();
      const context = `round ${round}: killed after ${killAfterAcks} acks, last acked ${result.lastAcked}`;
      assert.ok(result.lastAcked > 0, context);
      assert.ok(loaded !== undefined, context);
      assert.ok(store.durableSeq() >= result.lastAcked, `${context}, seq on disk ${store.durableSeq()}`);
      assert.ok((loaded.records.get('counter') as number) >= result.lastAcked, `${context}: the counter record includes its seq`);
    }
  });
});

/** Runs the crash writer, kills it with SIGKILL after `killAfterAcks` acks, returns the last ack. */
async function crashRound(dataDir: string, killAfterAcks: number): Promise<{ lastAcked: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', crashWriter, dataDir, '5000', '20000'], {
    cwd: projectRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buffered = '';
  let lastAcked = 0;
  let acks = 0;
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      const match = /^acked (\d+)$/.exec(line);
      if (!match) continue;
      lastAcked = Math.max(lastAcked, Number(match[1]));
      acks += 1;
      // Kill between a few hundred microseconds and a few milliseconds later: mid-write, usually.
      if (acks === killAfterAcks) void delay(killAfterAcks % 5).then(() => child.kill('SIGKILL'));
    }
  });
  await closed;
  assert.equal(child.signalCode, 'SIGKILL', 'the writer must die by SIGKILL, not finish on its own');
  return { lastAcked };
}
