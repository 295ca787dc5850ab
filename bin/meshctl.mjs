#!/usr/bin/env node
// meshctl's entry point (`npx meshctl`, the package's bin): loads the TypeScript sources through
// tsx, as the tests do, so that there is nothing to build before using it.
import { register } from 'tsx/esm/api';

register();
const { meshctl } = await import('../cli/meshctl.ts');
const code = await meshctl(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
});
process.exitCode = code;
