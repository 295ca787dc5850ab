/**
 * Replay reads record lines without parsing their values and parses each key's last value once:
 * these cases pin what that shortcut must still get right (escaped and non-ASCII keys, deletions,
 * lines in another key order, values that are not JSON although their checksum matches).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { after, describe, it } from 'node:test';
import { CorruptLogError, encodeLine } from '../../src/store/change-log.ts';
import { parseValue, replayLog, type LoggedRecord } from '../../src/store/log-replay.ts';
import { LowdbStore } from '../../src/store/lowdb-store.ts';
import { stored } from './store-contract.ts';

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
});

const record = (seq: number, key: string, value: unknown) => encodeLine(JSON.stringify({ s: seq, k: key, v: value }));
const commit = (seq: number, n: number) => encodeLine(JSON.stringify({ c: seq, n }));

/** Every committed batch of `text`, each record with its value parsed. */
function replayed(text: string): { batches: { key: string; value: unknown }[][]; seq: number; validBytes: number; tornBytes: number } {
  const data = Buffer.from(text, 'utf8');
  const batches: { key: string; value: unknown }[][] = [];
  const outcome = replayLog('mesh.1.log', data, true, (records: readonly LoggedRecord[]) => {
    batches.push(records.map((r) => ({ key: r.key, value: parseValue(data, r) })));
  });
  return { batches, seq: outcome.seq, validBytes: outcome.validBytes, tornBytes: outcome.tornBytes };
}

describe('log replay', () => {
  it('reads keys with quotes, backslashes and non-ASCII characters, and values of every JSON kind', () => {
    const keys = ['player:["region-1","p\\"1"]', 'zone:é-ü-日本', 'a\\b', 'plain'];
    const values = [{ nested: { list: [1, 'two', null] } }, 'text with "quotes" and é', 42, null];
    const text = keys.map((k, i) => record(7, k, values[i])).join('') + commit(7, keys.length);
    const result = replayed(text);
    assert.deepEqual(result.batches, [keys.map((key, i) => ({ key, value: values[i] }))]);
    assert.equal(result.seq, 7);
    assert.equal(result.validBytes, Buffer.byteLength(text));
  });

  it('reads a record line whose fields come in another order (any writer of the format)', () => {
    const text = encodeLine('{"k":"x","v":{"a":1},"s":3}') + encodeLine('{"v":[2],"s":3,"k":"y"}') + commit(3, 2);
    assert.deepEqual(replayed(text).batches, [[{ key: 'x', value: { a: 1 } }, { key: 'y', value: [2] }]]);
  });

  it('counts byte offsets in bytes, so a torn tail after non-ASCII text is cut at the right place', () => {
    const good = record(1, 'ü', 'ä') + commit(1, 1);
    const result = replayed(`${good}${record(2, 'ö', 1)}0000abcd {"s":2`);
    assert.equal(result.validBytes, Buffer.byteLength(good));
    assert.equal(result.tornBytes, Buffer.byteLength(`${record(2, 'ö', 1)}0000abcd {"s":2`));
  });

  it('the store keeps the last value of each key across batches, deletions included', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mesh-replay-'));
    tempDirs.push(dataDir);
    const text = record(1, 'a', 1) + record(1, 'b', { v: 1 }) + commit(1, 2) +
      record(2, 'a', null) + record(2, 'b', { v: 2 }) + commit(2, 2) +
      record(3, 'a', 'back') + record(3, 'c', null) + commit(3, 2);
    await fs.writeFile(path.join(dataDir, 'mesh.1.log'), text);
    const store = new LowdbStore({ dataDir });
    assert.deepEqual(await stored(store), { a: 'back', b: { v: 2 } });
    assert.equal(store.durableSeq(), 3);
  });

  it('refuses a log whose surviving value is not JSON although its checksum matches, naming the key', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mesh-replay-'));
    tempDirs.push(dataDir);
    const broken = '{"s":1,"k":"a","v":{"x":}';
    const text = `${crc32(broken).toString(16).padStart(8, '0')} ${broken}\n${commit(1, 1)}`;
    await fs.writeFile(path.join(dataDir, 'mesh.1.log'), text);
    await assert.rejects(new LowdbStore({ dataDir }).load(), (error: unknown) => {
      assert.ok(error instanceof CorruptLogError);
      assert.match(error.message, /mesh\.1\.log is corrupt \(the value of a is not JSON\)/);
      return true;
    });
    assert.equal(await fs.readFile(path.join(dataDir, 'mesh.1.log'), 'utf8'), text);
  });
});
