import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ByteChunks } from '../../src/store/byte-chunks.ts';

describe('ByteChunks', () => {
  it('keeps text and bytes in order across chunks, a chunk never over its size unless one part is larger', () => {
    const out = new ByteChunks(16);
    const parts = ['{"a":', Buffer.from('"ünïcode ✓"'), ',"b":', Buffer.alloc(40, 0x61), '}'];
    for (const part of parts) {
      if (typeof part === 'string') out.text(part);
      else out.bytes(part);
    }
    const chunks = out.done();
    const expected = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
    assert.deepEqual(Buffer.concat(chunks), expected);
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    for (const chunk of chunks) assert.ok(chunk.length <= 16 || chunk.length === 40, `a chunk of ${chunk.length} bytes`);
  });

  it('gives no chunks for nothing added', () => {
    assert.deepEqual(new ByteChunks(16).done(), []);
  });
});
