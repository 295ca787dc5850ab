/**
 * The HTTP contract, loaded once from `openapi.yaml` and compiled with ajv (JSON Schema 2020-12,
 * the dialect of OpenAPI 3.1). Request bodies, parameters and (in tests) responses are checked
 * against the same document that is served at `GET /openapi.yaml`, so the two cannot drift.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction, type SchemaObject } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { formatErrors, type FieldError } from './openapi-errors.ts';

export type { FieldError } from './openapi-errors.ts';

/** Outcome of a validation: the (coerced, defaulted) value, or every problem found. */
export type Validation<T = unknown> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** Raw request parameters as Koa presents them (all strings). */
export interface RawParams {
  path?: Record<string, string | undefined>;
  query?: Record<string, string | string[] | undefined>;
  /** Request headers, names in lower case as Node gives them. */
  headers?: Record<string, string | string[] | undefined>;
}

/** Declared parameters after coercion and defaults; undeclared ones are dropped. */
export interface ValidatedParams {
  path: Record<string, unknown>;
  query: Record<string, unknown>;
  header: Record<string, unknown>;
}

/** What routes need to know about one operation. */
export interface OperationInfo {
  readonly operationId: string;
  /** Upper-case HTTP method. */
  readonly method: string;
  /** Path as the document writes it (`/mesh/regions/{region_id}`). */
  readonly path: string;
  /** Same path in @koa/router syntax (`/mesh/regions/:region_id`). */
  readonly routerPath: string;
  /** Alternatives of required schemes (`[['adminBearer']]`); empty when public. */
  readonly security: readonly (readonly string[])[];
  /** Body limit in bytes: `x-max-body-bytes`, else {@link DEFAULT_MAX_BODY_BYTES}. */
  readonly maxBodyBytes: number;
}

/** The loaded contract. */
export interface Contract {
  /** The parsed document (treat as read-only). */
  readonly document: OpenApiDocument;
  /** The document's YAML text, for serving `GET /openapi.yaml` byte for byte. */
  readonly source: string;
  /** Every operation by operationId. */
  readonly operations: ReadonlyMap<string, OperationInfo>;
  /** Checks a parsed JSON body; fills schema defaults in place (the value is the same object). */
  validateRequestBody(operationId: string, body: unknown): Validation;
  /** Checks path, query and header parameters, coercing strings to integers and booleans. */
  validateParams(operationId: string, params: RawParams): Validation<ValidatedParams>;
  /** Checks a response body against the documented response for `status` (used by tests). */
  validateResponse(operationId: string, status: number, body: unknown): Validation;
  /** Checks a value against `#/components/schemas/<name>` (for example SSE `MeshEvent` data). */
  validateSchema(name: string, value: unknown): Validation;
}

/** Request body limit for operations that do not declare `x-max-body-bytes` (16 KiB). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024;

/** The subset of an OpenAPI 3.1 document this module reads. */
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
  components?: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

type Json = Record<string, unknown>;
interface Located { node: Json; pointer: string }

const CONTRACT_ID = 'urn:mesh-coordinator:openapi';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
/** OpenAPI keywords that are not JSON Schema: ajv must accept them as annotations. */
const OPENAPI_KEYWORDS = [
  'openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components', 'security',
  'tags', 'externalDocs', 'discriminator', 'xml', 'example',
];

/** Default location: `openapi.yaml` at the repository root. */
export const DEFAULT_CONTRACT_PATH = fileURLToPath(new URL('../openapi.yaml', import.meta.url));

/**
 * Reads, parses and compiles the contract. Every request validator is compiled here, so a broken
 * schema fails at start-up rather than on the first request that needs it; response validators,
 * which only tests use, are compiled on first use.
 */
export function loadContract(path: string = DEFAULT_CONTRACT_PATH): Contract {
  const source = readFileSync(path, 'utf8');
  const document = parse(source) as OpenApiDocument;
  // Two instances: parameters arrive as strings and need coercion, bodies must not be coerced
  // ("5" is not an integer in JSON). Response schemas declare no defaults, so sharing the body
  // instance (useDefaults) never changes a response under test.
  const ajv = newAjv(document, { useDefaults: true });
  const paramsAjv = newAjv(document, { useDefaults: true, coerceTypes: true });
  const entries = listOperations(document);
  const operations = new Map(entries.map((e) => [e.info.operationId, e.info]));
  const bodies = new Map(entries.map((e) => [e.info.operationId, compileBody(ajv, document, e.op)]));
  const params = new Map(entries.map((e) => [e.info.operationId, compileParams(paramsAjv, document, e.pathItem, e.op)]));
  // Response checks serve tests only: compiled on first use (then kept) to keep start-up short.
  const responses = new Map(entries.map((e) => [e.info.operationId, once(() => compileResponses(ajv, document, e.op))]));
  const schemas = new Map<string, ValidateFunction>();
  const schema = (pointer: string): ValidateFunction => {
    let validate = schemas.get(pointer);
    if (!validate) schemas.set(pointer, validate = ajv.compile({ $ref: ref(pointer) }));
    return validate;
  };

  const known = <T>(map: Map<string, T>, operationId: string): T => {
    const value = map.get(operationId);
    if (value === undefined) throw new Error(`openapi.yaml has no operation '${operationId}'`);
    return value;
  };
  return {
    document, source, operations,
    validateRequestBody: (id, body) => known(bodies, id)(body),
    validateParams: (id, raw) => known(params, id)(raw),
    validateResponse: (id, status, body) => checkResponse(known(responses, id)(), id, status, body),
    validateSchema: (name, value) => checkComponent(document, schema, name, value),
  };
}

/**
 * Checks a value against a named component schema. For a discriminated union (`MeshEvent`) the
 * mapped branch is checked directly, so errors name that branch's fields instead of every branch.
 */
function checkComponent(document: OpenApiDocument, schema: (pointer: string) => ValidateFunction, name: string, value: unknown): Validation {
  const definition = document.components?.schemas?.[name] as Json | undefined;
  if (!definition) throw new Error(`openapi.yaml has no schema '${name}'`);
  const discriminator = definition.discriminator as { propertyName: string; mapping?: Record<string, string> } | undefined;
  if (discriminator?.mapping && typeof value === 'object' && value !== null) {
    const tag = (value as Json)[discriminator.propertyName];
    const target = typeof tag === 'string' && Object.hasOwn(discriminator.mapping, tag) ? discriminator.mapping[tag] : undefined;
    if (target === undefined) {
      const allowed = Object.keys(discriminator.mapping).join(', ');
      return { ok: false, errors: [{ path: `value/${discriminator.propertyName}`, message: `must be one of: ${allowed}` }] };
    }
    return run(schema(target.slice(1)), value, 'value');
  }
  return run(schema(`/components/schemas/${escape(name)}`), value, 'value');
}

function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

function newAjv(document: OpenApiDocument, options: { useDefaults?: boolean; coerceTypes?: boolean }): Ajv2020 {
  // strict: unknown keywords, ignored defaults and ambiguous types in the contract are errors,
  // not silent no-ops. Union types (`[string, 'null']`) are how OpenAPI 3.1 spells nullable.
  // strictRequired is off because it cannot see properties declared beside a `oneOf` whose
  // branches pick required targets; redocly's no-required-schema-properties-undefined rule,
  // which does, checks the same defect in `npm run lint:openapi`.
  const ajv = new Ajv2020({
    allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, verbose: true, ...options,
  });
  addFormats.default(ajv);
  ajv.addVocabulary(OPENAPI_KEYWORDS);
  ajv.addSchema({ ...document, $id: CONTRACT_ID } as SchemaObject);
  return ajv;
}

function listOperations(document: OpenApiDocument) {
  const out: { info: OperationInfo; op: Located; pathItem: Located }[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    const pathItem = { node: item, pointer: `/paths/${escape(path)}` };
    for (const method of METHODS) {
      const op = item[method] as Json | undefined;
      if (!op) continue;
      const operationId = op.operationId;
      if (typeof operationId !== 'string') throw new Error(`${method.toUpperCase()} ${path} has no operationId`);
      const limit = op['x-max-body-bytes'];
      out.push({
        op: { node: op, pointer: `${pathItem.pointer}/${method}` },
        pathItem,
        info: {
          operationId, method: method.toUpperCase(), path,
          routerPath: path.replace(/\{([^}]+)\}/g, ':$1'),
          security: ((op.security ?? document.security ?? []) as Json[]).map((s) => Object.keys(s)),
          maxBodyBytes: typeof limit === 'number' ? limit : DEFAULT_MAX_BODY_BYTES,
        },
      });
    }
  }
  return out;
}

function compileBody(ajv: Ajv2020, document: OpenApiDocument, op: Located): (body: unknown) => Validation {
  const requestBody = op.node.requestBody ? deref(document, child(op, 'requestBody')) : undefined;
  if (!requestBody) {
    // Body parsing yields {} for an empty request, so "no body" is undefined, null or {}.
    return (body) => isEmptyBody(body) ? { ok: true, value: undefined }
      : { ok: false, errors: [{ path: 'body', message: 'must be empty: this operation takes no request body' }] };
  }
  const media = jsonMedia(requestBody);
  if (!media) throw new Error(`${op.pointer}: request body has no JSON schema`);
  const validate = ajv.compile({ $ref: ref(`${media.pointer}/schema`) });
  const optional = requestBody.node.required !== true;
  return (body) => optional && (body === undefined || body === null) ? run(validate, {}, 'body') : run(validate, body, 'body');
}

function compileParams(ajv: Ajv2020, document: OpenApiDocument, pathItem: Located, op: Located) {
  const declared = [...listParams(document, pathItem), ...listParams(document, op)];
  const groups: Record<'path' | 'query' | 'header', { properties: Json; required: string[] }> = {
    path: { properties: {}, required: [] }, query: { properties: {}, required: [] }, header: { properties: {}, required: [] },
  };
  for (const p of declared) {
    const where = p.node.in as string;
    if (where !== 'path' && where !== 'query' && where !== 'header') continue;
    const name = p.node.name as string;
    // ajv applies defaults only from a property's own schema, not through $ref: copy it beside.
    const fallback = (p.node.schema as Json | undefined)?.default;
    groups[where].properties[name] = { $ref: ref(`${p.pointer}/schema`), ...(fallback === undefined ? {} : { default: fallback }) };
    if (p.node.required === true) groups[where].required.push(name);
  }
  if (declared.length === 0) return (): Validation<ValidatedParams> => ({ ok: true, value: { path: {}, query: {}, header: {} } });
  const schema = { type: 'object', properties: Object.fromEntries(Object.entries(groups).map(([k, g]) => [k, { type: 'object', ...g }])) };
  const validate = ajv.compile(schema);
  return (raw: RawParams): Validation<ValidatedParams> => {
    const data = { path: pick(groups.path.properties, raw.path, false), query: pick(groups.query.properties, raw.query, false), header: pick(groups.header.properties, raw.headers, true) };
    const repeated = Object.entries(data).flatMap(([where, values]) => Object.entries(values)
      .filter(([, v]) => Array.isArray(v)).map(([name]) => ({ path: `${where}/${name}`, message: 'must be given once' })));
    if (repeated.length > 0) return { ok: false, errors: repeated };
    return run(validate, data, '') as Validation<ValidatedParams>;
  };
}

/** Copies the declared parameters out of what the request carries (header names case-insensitively). */
function pick(declared: Json, given: Record<string, unknown> | undefined, lowerCase: boolean): Json {
  const out: Json = {};
  for (const name of Object.keys(declared)) {
    const value = given?.[lowerCase ? name.toLowerCase() : name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

type ResponseCheckers = Map<string, ValidateFunction | null>;

function compileResponses(ajv: Ajv2020, document: OpenApiDocument, op: Located): ResponseCheckers {
  const out: ResponseCheckers = new Map();
  const responses = (op.node.responses ?? {}) as Json;
  for (const status of Object.keys(responses)) {
    const response = deref(document, { node: responses[status] as Json, pointer: `${op.pointer}/responses/${status}` });
    const content = response.node.content as Json | undefined;
    const mediaType = content ? Object.keys(content)[0] : undefined;
    out.set(status, mediaType && (content?.[mediaType] as Json).schema
      ? ajv.compile({ $ref: ref(`${response.pointer}/content/${escape(mediaType)}/schema`) })
      : null);
  }
  return out;
}

function checkResponse(checkers: ResponseCheckers, operationId: string, status: number, body: unknown): Validation {
  const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => checkers.has(k));
  if (key === undefined) return { ok: false, errors: [{ path: 'status', message: `${status} is not documented for ${operationId}` }] };
  const validate = checkers.get(key);
  if (!validate) return isEmptyBody(body) ? { ok: true, value: body } : { ok: false, errors: [{ path: 'body', message: 'must be empty' }] };
  return run(validate, body, 'body');
}

function run(validate: ValidateFunction, data: unknown, prefix: string): Validation {
  return validate(data) ? { ok: true, value: data } : { ok: false, errors: formatErrors(validate.errors ?? [], prefix) };
}

/** Follows `$ref` chains inside the document (parameters, request bodies, responses). */
function deref(document: OpenApiDocument, at: Located): Located {
  let current = at;
  for (let hops = 0; typeof current.node.$ref === 'string'; hops++) {
    const ref = current.node.$ref;
    if (hops > 16 || !ref.startsWith('#/')) throw new Error(`${current.pointer}: unsupported $ref ${ref}`);
    const pointer = ref.slice(1);
    const node = pointer.split('/').slice(1).map(unescape).reduce<unknown>((n, key) => (n as Json | undefined)?.[key], document);
    if (!node || typeof node !== 'object') throw new Error(`${current.pointer}: dangling $ref ${ref}`);
    current = { node: node as Json, pointer };
  }
  return current;
}

function listParams(document: OpenApiDocument, owner: Located): Located[] {
  const list = (owner.node.parameters ?? []) as Json[];
  return list.map((p, i) => deref(document, { node: p, pointer: `${owner.pointer}/parameters/${i}` }));
}

function jsonMedia(requestBody: Located): Located | undefined {
  const content = (requestBody.node.content ?? {}) as Json;
  const type = Object.keys(content).find((t) => /^application\/(.+\+)?json$/.test(t));
  return type ? { node: content[type] as Json, pointer: `${requestBody.pointer}/content/${escape(type)}` } : undefined;
}

function child(parent: Located, key: string): Located {
  return { node: parent.node[key] as Json, pointer: `${parent.pointer}/${escape(key)}` };
}

function isEmptyBody(body: unknown): boolean {
  return body === undefined || body === null || body === '' ||
    (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);
}

/** A `$ref` into the contract; pointer segments are percent-encoded as URI fragments require. */
const ref = (pointer: string): string => `${CONTRACT_ID}#${pointer.split('/').map(encodeURIComponent).join('/')}`;
const escape = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');
const unescape = (key: string): string => key.replace(/~1/g, '/').replace(/~0/g, '~');
