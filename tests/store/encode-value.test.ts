import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeValue } from '../../src/store/store.ts';

describe('encodeValue', () => {
  it('gives the JSON as UTF-8 bytes, null for a deletion', () => {
    assert.equal(encodeValue({ name: 'Zürich 東京', n: [1, null] })?.toString(), '{"name":"Zürich 東京","n":[1,null]}');
    assert.equal(encodeValue(null), null);
  });

  it('gives each record a buffer of its own, so that one kept record does not keep a shared slab alive', () => {
    const bytes = encodeValue({ a: 1 }) as Buffer;
    assert.equal(bytes.byteOffset, 0);
    assert.equal(bytes.buffer.byteLength, bytes.length);
  });
});
