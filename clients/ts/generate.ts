/**
 * Generates `clients/ts/schema.d.ts`, the TypeScript types of the HTTP contract, from openapi.yaml
 * with the openapi-typescript Node API (no npm script, no CLI):
 *
 *   node --import tsx clients/ts/generate.ts
 *
 * The generated file is committed; tests/e2e/generated-client.test.ts generates it again in memory
 * with the same function and fails when the two differ, so the contract and the client never drift.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';

/** The contract the types come from. */
export const contractUrl = new URL('../../openapi.yaml', import.meta.url);

/** Where the generated types are committed. */
export const schemaPath = fileURLToPath(new URL('./schema.d.ts', import.meta.url));

const banner = `/*
 * Generated from openapi.yaml by clients/ts/generate.ts (openapi-typescript 7). Regenerate with
 *   node --import tsx clients/ts/generate.ts
 * tests/e2e/generated-client.test.ts fails while this file and openapi.yaml disagree.
 */

`;

/** The text of schema.d.ts for the current openapi.yaml. */
export async function generateSchemaSource(): Promise<string> {
  // Fields with a default are optional in requests (the server fills them in): without
  // `defaultNonNullable: false`, openapi-typescript 7 would make every one of them required.
  const ast = await openapiTS(contractUrl, { silent: true, defaultNonNullable: false });
  return `${COMMENT_HEADER}${banner}${astToString(ast)}`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const source = await generateSchemaSource();
  await writeFile(schemaPath, source);
  process.stdout.write(`wrote ${schemaPath} (${source.length} characters)\n`);
}
