/**
 * Bundles an entry point the way `npm run build` bundles the service (esbuild: ESM for Node, npm
 * packages left as imports), so that a bench runs as plain JavaScript in a process without the
 * TypeScript loader, as the service does after `npm start`.
 *
 * The bundle is written to `dist/` at the repository root: one level below it, like
 * dist/main.mjs, so that paths the code resolves from its own location (openapi.yaml) and its
 * packages (node_modules) are found as they are from the sources.
 */
import { buildSync } from 'esbuild';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const distDir = fileURLToPath(new URL('../../dist/', import.meta.url));

/** Bundles `entry` (a .ts file) to dist/<its name>.mjs and returns the bundle's path. */
export function bundle(entry: string): string {
  const outfile = join(distDir, `${basename(entry, '.ts')}.mjs`);
  buildSync({ entryPoints: [entry], outfile, bundle: true, platform: 'node', format: 'esm', packages: 'external', logLevel: 'warning' });
  return outfile;
}
