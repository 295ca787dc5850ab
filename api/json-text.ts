/**
 * The one JSON parser of request bodies, used by the Koa body middleware and for the frames of
 * server sessions alike. Besides strict JSON (an object or an array at the top, `__proto__` keys refused) it
 * bounds what can reach the core: bytes must be UTF-8, nesting at most {@link MAX_JSON_DEPTH}
 * levels (checked on the text, before anything is built), and no string may hold a lone UTF-16
 * surrogate. A document that passes can always be written back with `JSON.stringify`: its depth is
 * bounded, so the recursive serialiser cannot overflow the stack, and its strings are well formed.
 */
import { isUtf8 } from 'node:buffer';
import bourne from '@hapi/bourne';
import { HttpProblem } from './problem.ts';

/** Deepest nesting of objects and arrays accepted in a request body (the top level counts 1). */
export const MAX_JSON_DEPTH = 32;

/** RFC 8259 whitespace, then an object or an array: the strict mode co-body and Koa used. */
const STRICT_JSON = /^[\x20\x09\x0a\x0d]*(\[|\{)/;

const malformed = (detail: string): HttpProblem => new HttpProblem({ status: 400, slug: 'malformed-json', detail });

/**
 * Parses a request body. An empty body is `{}` (no body). Throws a 400 problem (`malformed-json`)
 * for bytes that are not UTF-8, for nesting deeper than `maxDepth`, for text that is not strict
 * JSON, and for strings with lone surrogates.
 */
export function parseJsonBody(raw: Buffer, maxDepth = MAX_JSON_DEPTH): unknown {
  if (!isUtf8(raw)) throw malformed('The body is not valid UTF-8.');
  let text = raw.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text === '') return {};
  if (!STRICT_JSON.test(text)) throw malformed('The body must be a JSON object or array.');
  const tooDeep = depthBeyond(text, maxDepth);
  if (tooDeep !== -1) {
    throw malformed(`The body nests objects and arrays more than ${maxDepth} levels deep (at character ${tooDeep}).`);
  }
  let value: unknown;
  try {
    // bourne parses with JSON.parse and then scans for a `"__proto__":` key, written plainly or
    // with \u escapes; without "proto" and without a \u escape that scan cannot match.
    value = !text.includes('proto') && !text.includes('\\u') ? JSON.parse(text) : bourne.parse(text, { protoAction: 'error' });
  } catch (error) {
    throw malformed(`The body is not valid JSON: ${error instanceof Error ? error.message : String(error)}.`);
  }
  // A lone surrogate can only come from a \u escape: the bytes were checked to be UTF-8.
  if (text.includes('\\u')) {
    const where = loneSurrogateAt(value, 'body');
    if (where !== undefined) throw malformed(`${where} holds a lone UTF-16 surrogate (\\ud800-\\udfff unpaired); strings must be valid Unicode.`);
  }
  return value;
}

/**
 * Index of the first bracket that opens level `maxDepth + 1`, or -1. Brackets inside strings do not
 * count; a string ends at an unescaped quote. Linear, and stops at the first level too deep.
 */
export function depthBeyond(text: string, maxDepth: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return i;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return -1;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Path (`body/a/0`) of the first key or string value with a lone surrogate. Depth is bounded by the caller. */
function loneSurrogateAt(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? path : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = loneSurrogateAt(value[i], `${path}/${i}`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value)) {
    if (LONE_SURROGATE.test(key)) return `${path} (a key)`;
    const found = loneSurrogateAt(item, `${path}/${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}
