/**
 * Turns ajv's error objects into the `errors` member of a 400 problem document: one entry per
 * offending field, with a path a client can act on and a sentence instead of schema jargon.
 */
import type { ErrorObject } from 'ajv/dist/2020.js';

/** One invalid field: where it is (`body/regions/0/epoch`, `query/wait_ms`) and what is wrong. */
export interface FieldError {
  path: string;
  message: string;
}

/**
 * Formats ajv errors (collected with `allErrors` and `verbose`). `prefix` names the request part
 * (`body`); parameter errors already start with `path`, `query` or `header`.
 */
export function formatErrors(errors: readonly ErrorObject[], prefix: string): FieldError[] {
  const kept = errors.filter((e) => !isRedundant(e, errors));
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const error of kept) {
    const entry = describe(error, prefix);
    const key = `${entry.path}\n${entry.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(entry);
    }
  }
  return out;
}

/**
 * Drops errors that only repeat another one: the `if` wrapper of a failed `then`, and the
 * per-branch errors of a `oneOf` that picks a target (its summary names the alternatives).
 * For other `oneOf`s (nullable values) the `null` branch's type error says nothing useful.
 */
function isRedundant(error: ErrorObject, all: readonly ErrorObject[]): boolean {
  if (error.keyword === 'if') return true;
  const enclosing = all.find((o) => o.keyword === 'oneOf' && error.schemaPath.startsWith(`${o.schemaPath}/`));
  if (!enclosing) return false;
  if (isTargetChoice(enclosing.schema)) return true;
  return error.keyword === 'type' && (error.params as { type?: unknown }).type === 'null';
}

/** A `oneOf` whose branches only list required properties: "exactly one of these targets". */
function isTargetChoice(branches: unknown): branches is { required: string[] }[] {
  return Array.isArray(branches) && branches.every((b) =>
    typeof b === 'object' && b !== null && Array.isArray((b as { required?: unknown }).required) && Object.keys(b).length === 1);
}

function describe(error: ErrorObject, prefix: string): FieldError {
  const base = joinPath(prefix, error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: joinPath(base, `/${String(params.missingProperty)}`), message: 'is required' };
    case 'additionalProperties':
      return { path: joinPath(base, `/${String(params.additionalProperty)}`), message: 'is not allowed (unknown field)' };
    case 'unevaluatedProperties':
      return { path: joinPath(base, `/${String(params.unevaluatedProperty)}`), message: 'is not allowed (unknown field)' };
    case 'dependentRequired':
      return { path: joinPath(base, `/${String(params.missingProperty)}`), message: `is required when ${String(params.property)} is given` };
    case 'false schema':
      return { path: base, message: 'is not allowed here' };
    case 'enum':
      return { path: base, message: `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}` };
    case 'const':
      return { path: base, message: `must be ${JSON.stringify(params.allowedValue)}` };
    case 'minProperties':
      return { path: base, message: `must have at least ${String(params.limit)} field(s)` };
    case 'oneOf':
      return { path: base, message: oneOfMessage(error.schema) };
    default:
      return { path: base, message: error.message ?? `fails ${error.keyword}` };
  }
}

function oneOfMessage(branches: unknown): string {
  if (!isTargetChoice(branches)) return 'must match exactly one of the allowed forms';
  return `must have exactly one of: ${branches.map((b) => b.required.join(' + ')).join(' | ')}`;
}

/** Appends a JSON pointer (`/a/b~1c`) to a slash path, unescaping `~1` and `~0`. */
function joinPath(base: string, pointer: string): string {
  const tail = pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  return [base, ...tail].filter((s) => s !== '').join('/');
}
