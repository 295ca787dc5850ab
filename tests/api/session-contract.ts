/**
 * asyncapi.yaml as the session tests use it: parsed (and checked) by @asyncapi/parser, which
 * resolves its references into openapi.yaml, and one ajv validator per message, keyed by the
 * message's `name` (the `type` of its frame). `checkSent` validates a frame the service sent.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Parser, fromFile } from '@asyncapi/parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

/** Where the document is. */
export const asyncapiPath = fileURLToPath(new URL('../../asyncapi.yaml', import.meta.url));

/** The parsed document's messages as validators, and the parser's diagnostics. */
export interface SessionContract {
  readonly diagnostics: readonly { severity: number; code: string | number; message: string }[];
  /** Message name -> validator of its whole frame. */
  readonly validators: ReadonlyMap<string, (frame: unknown) => string[]>;
  /** Names of the messages the coordinator sends (operations with action send, and replies). */
  readonly sent: ReadonlySet<string>;
}

let loaded: Promise<SessionContract> | undefined;

/** Parses asyncapi.yaml once per test process. */
export function sessionContract(): Promise<SessionContract> {
  loaded ??= load();
  return loaded;
}

async function load(): Promise<SessionContract> {
  const { document, diagnostics } = await fromFile(new Parser(), asyncapiPath).parse();
  assert.ok(document, `asyncapi.yaml does not parse: ${diagnostics.map((d) => d.message).join('; ')}`);
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const validators = new Map<string, (frame: unknown) => string[]>();
  for (const message of document.messages().all()) {
    const validate = ajv.compile(message.payload()?.json() as object);
    validators.set(message.name() ?? message.id(), (frame) => (validate(frame) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`)));
  }
  const sent = new Set<string>();
  for (const operation of document.operations().all()) {
    const names = (list: { all(): { name(): string | undefined; id(): string }[] }) => list.all().map((m) => m.name() ?? m.id());
    if (operation.action() === 'send') for (const name of names(operation.messages())) sent.add(name);
    const reply = operation.reply();
    if (reply) for (const name of names(reply.messages())) sent.add(name);
  }
  return { diagnostics: diagnostics.map((d) => ({ severity: d.severity, code: d.code, message: d.message })), validators, sent };
}

/** Asserts that a frame the service sent is one of the documented sent messages, and valid. */
export async function checkSent(text: string): Promise<{ type: string; body: any }> {
  const contract = await sessionContract();
  const frame = JSON.parse(text) as { type: string; body: any };
  assert.ok(contract.sent.has(frame.type), `the service sent an undocumented message type ${JSON.stringify(frame.type)}`);
  const validate = contract.validators.get(frame.type);
  assert.ok(validate, `no validator for ${frame.type}`);
  const errors = validate(frame);
  assert.deepEqual(errors, [], `${frame.type} does not match asyncapi.yaml: ${text.slice(0, 500)}`);
  return frame;
}
