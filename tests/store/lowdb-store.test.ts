import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { CorruptDataFileError, type DurableFs } from '../../src/store/durable-file-adapter.ts';
import { DataFormatError, LowdbStore } from '../../src/store/lowdb-store.ts';
import { storeContract, type ContractDoc } from './store-contract.ts';

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
  return new LowdbStore<ContractDoc>({ dataDir, adapter: { beforeRename: options.duringWrite } });
});

describe('LowdbStore on a real disk', () => {
  it('writes a compact, versioned envelope to <dataDir>/mesh.json with mode 0600', async () => {
    const dataDir = await freshDir();
    const store = new LowdbStore<ContractDoc>({ dataDir, wallClockMs: () => 1234 });
    await store.save(() => ({ counter: 1, items: ['a', 'b'] }), 1);
    const file = path.join(dataDir, 'mesh.json');
    assert.equal(store.file, file);
    const text = await fs.readFile(file, 'utf8');
    assert.equal(text, JSON.stringify({ formatVersion: 1, savedAtMs: 1234, seq: 1, state: { counter: 1, items: ['a', 'b'] } }));
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await fs.readdir(dataDir), ['mesh.json'], 'no temp file is left behind');
  });

  it('reopening reads back the same document and seq', async () => {
    const dataDir = await freshDir();
    const first = new LowdbStore<ContractDoc>({ dataDir });
    await first.save(() => ({ counter: 42, items: ['x'] }), 42);
    await first.close();
    const second = new LowdbStore<ContractDoc>({ dataDir });
    assert.equal(second.durableSeq(), 0, 'nothing is known before load');
    assert.deepEqual(await second.load(), { counter: 42, items: ['x'] });
    assert.equal(second.durableSeq(), 42);
  });

  it('refuses a corrupt file with an error naming its path', async () => {
    for (const content of ['{"formatVersion":1,"seq":3,"sta', '', 'null', '7']) {
      const dataDir = await freshDir();
      await fs.writeFile(path.join(dataDir, 'mesh.json'), content);
      const store = new LowdbStore<ContractDoc>({ dataDir });
      await assert.rejects(store.load(), (error: unknown) => {
        assert.ok(error instanceof CorruptDataFileError, `content ${JSON.stringify(content)}`);
        assert.ok(error.message.includes(path.join(dataDir, 'mesh.json')));
        return true;
      });
    }
  });

  it('refuses an unknown format version or a file that is not an envelope', async () => {
    const cases = [
      [{ formatVersion: 2, savedAtMs: 0, seq: 1, state: {} }, /formatVersion 2, but this build reads only 1/],
      [{ counter: 1 }, /no formatVersion/],
      [{ formatVersion: 1, savedAtMs: 0, seq: -1, state: {} }, /invalid seq/],
      [{ formatVersion: 1, savedAtMs: 0, seq: 1 }, /no state/],
    ] as const;
    for (const [content, message] of cases) {
      const dataDir = await freshDir();
      await fs.writeFile(path.join(dataDir, 'mesh.json'), JSON.stringify(content));
      const store = new LowdbStore<ContractDoc>({ dataDir });
      await assert.rejects(store.load(), (error: unknown) => {
        assert.ok(error instanceof DataFormatError);
        assert.match(error.message, message);
        assert.ok(error.message.includes(dataDir));
        return true;
      });
    }
  });

  it('ignores and removes a temp file left by a crash', async () => {
    const dataDir = await freshDir();
    const store = new LowdbStore<ContractDoc>({ dataDir });
    await store.save(() => ({ counter: 1, items: [] }), 1);
    await fs.writeFile(path.join(dataDir, 'mesh.json.tmp'), '{"formatVersion":1,"seq":2,"state":{"coun');
    const reopened = new LowdbStore<ContractDoc>({ dataDir });
    assert.deepEqual(await reopened.load(), { counter: 1, items: [] });
    assert.deepEqual(await fs.readdir(dataDir), ['mesh.json']);
  });

  it('reads a missing file as undefined even with a leftover temp file and no data file', async () => {
    const dataDir = await freshDir();
    await fs.writeFile(path.join(dataDir, 'mesh.json.tmp'), 'partial');
    assert.equal(await new LowdbStore<ContractDoc>({ dataDir }).load(), undefined);
    assert.deepEqual(await fs.readdir(dataDir), []);
  });

  it('a failed rename or fsync rejects, keeps the previous file intact, and a later save succeeds', async () => {
    for (const step of ['rename', 'sync'] as const) {
      const dataDir = await freshDir();
      const faults = { armed: false };
      const store = new LowdbStore<ContractDoc>({ dataDir, adapter: { fs: faultyFs(step, faults) } });
      await store.save(() => ({ counter: 1, items: [] }), 1);
      faults.armed = true;
      await assert.rejects(store.save(() => ({ counter: 2, items: [] }), 2), new RegExp(`injected ${step} failure`));
      faults.armed = false;
      assert.equal(store.durableSeq(), 1);
      const onDisk = JSON.parse(await fs.readFile(path.join(dataDir, 'mesh.json'), 'utf8'));
      assert.equal(onDisk.seq, 1, `${step}: the previous document is still on disk`);
      await store.save(() => ({ counter: 3, items: [] }), 3);
      assert.deepEqual(await new LowdbStore<ContractDoc>({ dataDir }).load(), { counter: 3, items: [] });
    }
  });

  it('keeps every acknowledged save across SIGKILL at a random moment', { timeout: 60_000 }, async () => {
    for (let round = 0; round < 5; round += 1) {
      const dataDir = await freshDir();
      // Random, and reported in every message, so that a failing round can be reasoned about.
      const killAfterAcks = 3 + Math.floor(Math.random() * 40);
      const result = await crashRound(dataDir, killAfterAcks);
      const store = new LowdbStore<{ counter: number }>({ dataDir });
      const loaded = await store.load();
      const context = `round ${round}: killed after ${killAfterAcks} acks, last acked ${result.lastAcked}`;
      assert.ok(result.lastAcked > 0, context);
      assert.ok(loaded !== undefined, context);
      assert.ok(store.durableSeq() >= result.lastAcked, `${context}, seq on disk ${store.durableSeq()}`);
      assert.ok(loaded.counter >= store.durableSeq(), `${context}: the document includes its seq`);
    }
  });
});

/** A real file system whose `step` fails while `faults.armed` is set. */
function faultyFs(step: 'rename' | 'sync', faults: { armed: boolean }): DurableFs {
  const injected = () => new Error(`injected ${step} failure`);
  return {
    open: async (file, flags, mode) => {
      const handle = await fs.open(file, flags, mode);
      return {
        writeFile: (data, encoding) => handle.writeFile(data, encoding),
        sync: () => (step === 'sync' && faults.armed && flags === 'w' ? Promise.reject(injected()) : handle.sync()),
        close: () => handle.close(),
      };
    },
    rename: (from, to) => (step === 'rename' && faults.armed ? Promise.reject(injected()) : fs.rename(from, to)),
    unlink: (file) => fs.unlink(file),
    mkdir: (dir, options) => fs.mkdir(dir, options),
    readFile: (file, encoding) => fs.readFile(file, encoding),
  };
}

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
