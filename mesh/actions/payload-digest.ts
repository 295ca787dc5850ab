/**
 * A digest of an action's payload, so that a repeated (`player_id`, `seq`) can be told apart: the
 * same payload is a retry (a duplicate, answered as such), another payload is a conflict that must
 * not be dropped silently. Pure code (the core does no I/O and imports no Node module): canonical
 * JSON (object keys sorted) hashed by two 32-bit lanes into 64 bits. It is compared only within one
 * player's one `seq`, so it guards against accidents, not an attacker: a player who could forge a
 * collision could only replace their own action, which a new `seq` does anyway.
 */

/** The payload's JSON with object keys sorted at every level, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** 16 hex digits identifying a payload (cyrb53-style mixing, both 32-bit halves kept). */
export function payloadDigest(payload: unknown): string {
  const text = canonicalJson(payload);
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}
