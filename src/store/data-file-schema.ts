/**
 * The shape of `mesh.json`, checked with ajv (as requests are) before the core sees a loaded
 * document: a file that parses is not yet a file to trust. A hand-edited `"epoch": "x"` or
 * `"servers": null` is refused at start-up with the path of the field, and the file is left as it
 * is, instead of being served back or failing later with a raw TypeError. Fields that older
 * versions did not write are optional, as the core's import treats them.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { formatErrors } from '../../api/openapi-errors.ts';

const count = { type: 'integer', minimum: 0 } as const;
const timeMs = { type: 'number' } as const;
const nullableTime = { type: ['number', 'null'] } as const;
const text = { type: 'string' } as const;
const nullableText = { type: ['string', 'null'] } as const;
const id = { type: 'string', minLength: 1, maxLength: 128 } as const;
const numberMap = { type: 'object', additionalProperties: { type: 'number' } } as const;

const server = {
  type: 'object',
  required: ['id', 'address', 'zone', 'capacity', 'simulated', 'status', 'statusSinceMs', 'registeredAtMs', 'players'],
  properties: {
    id, address: text, zone: text, capacity: count, name: nullableText, simulated: { type: 'boolean' },
    credentialHash: nullableText, status: { enum: ['alive', 'suspect', 'failed', 'draining', 'left'] },
    statusSinceMs: timeMs, registeredAtMs: timeMs, players: count, incarnation: nullableText,
    lastSeq: { type: ['integer', 'null'] },
  },
} as const;

const region = {
  type: 'object',
  required: ['id', 'simulated', 'backupTarget', 'critical', 'players', 'epoch', 'phase', 'phaseSinceMs', 'primary',
    'primaryAcked', 'deadlineMs', 'backups', 'syncing', 'appliedSeq', 'failoverId', 'lastFailoverId', 'lostPrimary', 'formerReplicas'],
  properties: {
    id, simulated: { type: 'boolean' }, backupTarget: count, critical: { type: 'boolean' }, players: count,
    epoch: count, announcedEpoch: count,
    phase: { enum: ['active', 'failing_over', 'under_replicated', 'unavailable'] }, phaseSinceMs: timeMs,
    primary: { type: ['string', 'null'] }, primaryAcked: { type: 'boolean' }, deadlineMs: nullableTime,
    backups: { type: 'array', items: id }, syncing: numberMap, syncTarget: numberMap, appliedSeq: numberMap,
    failoverId: nullableText, lastFailoverId: nullableText,
    lostPrimary: {
      type: ['object', 'null'], required: ['serverId', 'failedAtMs', 'detectedAtMs'],
      properties: { serverId: id, failedAtMs: timeMs, detectedAtMs: timeMs },
    },
    formerReplicas: { type: 'array', items: id }, createdAtMs: timeMs,
  },
} as const;

const bufferedPlayer = {
  type: 'object', required: ['playerId', 'highestAckedSeq', 'lastAckedAtMs', 'actions'],
  properties: {
    playerId: id, highestAckedSeq: { type: ['integer', 'null'] }, lastAckedAtMs: nullableTime,
    ackedSeqs: { type: 'array', items: count }, ackedDigests: { type: 'array', items: nullableText }, ackedFloor: { type: ['integer', 'null'] },
    actions: {
      type: 'array',
      items: { type: 'object', required: ['seq', 'payload', 'acceptedAtMs'], properties: { seq: count, payload: true, acceptedAtMs: timeMs, digest: text } },
    },
  },
} as const;

const state = {
  type: 'object',
  required: ['version', 'savedAtMs', 'positions', 'numbers', 'servers', 'regions', 'alerts', 'metrics', 'buffer', 'degraded'],
  properties: {
    version: { const: 1 }, savedAtMs: timeMs,
    positions: { type: 'object', required: ['eventSeq', 'changeSeq'], properties: { eventSeq: count, changeSeq: count } },
    numbers: { type: 'object', required: ['nextServerNumber', 'nextRegionNumber'], properties: { nextServerNumber: count, nextRegionNumber: count } },
    servers: { type: 'array', items: server },
    regions: { type: 'array', items: region },
    alerts: {
      type: 'object', required: ['nextId', 'alerts', 'resolvedOrder'],
      properties: {
        nextId: count, resolvedOrder: { type: 'array', items: text },
        alerts: {
          type: 'array',
          items: {
            type: 'object', required: ['id', 'dedupKey', 'severity', 'title', 'message', 'raisedAtMs', 'count'],
            properties: {
              id, dedupKey: text, severity: { enum: ['info', 'warning', 'critical'] }, title: text, message: text,
              raisedAtMs: timeMs, lastRaisedAtMs: timeMs, count, resolvedAtMs: nullableTime, acknowledgedAtMs: nullableTime,
              acknowledgedBy: nullableText, subject: { type: 'object' },
            },
          },
        },
      },
    },
    metrics: {
      type: 'object', required: ['nextId', 'records', 'detectionSamples', 'recoverySamples', 'total', 'completed', 'failed', 'falseFailovers'],
      properties: {
        nextId: count, records: { type: 'array', items: { type: 'object', required: ['id', 'regionId'], properties: { id, regionId: id } } },
        detectionSamples: { type: 'array', items: { type: 'number' } }, recoverySamples: { type: 'array', items: { type: 'number' } },
        total: count, completed: count, failed: count, falseFailovers: count,
      },
    },
    buffer: {
      type: 'object', required: ['version', 'regions', 'counters'],
      properties: {
        version: { const: 1 },
        regions: {
          type: 'array',
          items: { type: 'object', required: ['regionId', 'players'], properties: { regionId: id, players: { type: 'array', items: bufferedPlayer } } },
        },
        counters: {
          type: 'object', required: ['buffered', 'replayed', 'expired', 'rejected', 'duplicates'],
          properties: { buffered: count, replayed: count, expired: count, rejected: count, duplicates: count },
        },
      },
    },
    degraded: {
      type: 'object', required: ['level', 'since', 'belowSinceMs', 'failures'],
      properties: {
        level: { enum: ['NORMAL', 'LIGHT', 'MODERATE', 'SEVERE'] }, since: timeMs, belowSinceMs: nullableTime,
        failures: { type: 'array', items: { type: 'number' } },
      },
    },
  },
} as const;

let compiled: ValidateFunction | undefined;

/**
 * Checks a loaded core state. Returns undefined when it is valid, else one sentence naming the first
 * offending fields (`state/regions/0/epoch must be integer`).
 */
export function dataFileProblem(value: unknown): string | undefined {
  compiled ??= new Ajv({ allErrors: true, allowUnionTypes: true, strict: true }).compile(state);
  if (compiled(value)) return undefined;
  const errors = formatErrors(compiled.errors ?? [], 'state');
  return errors.slice(0, 3).map((e) => `${e.path} ${e.message}`).join('; ');
}
