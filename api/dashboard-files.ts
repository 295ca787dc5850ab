/**
 * Where the dashboard's files are: `web/` at the repository root. This module sits one folder
 * below the root, as `dist/main.mjs` does once bundled, so the same relative URL finds them from
 * the sources and from the bundle (as api/openapi.ts finds openapi.yaml).
 */
export const DASHBOARD_DIR = new URL('../web/', import.meta.url);
