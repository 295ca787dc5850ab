/**
 * The operator's dashboard: `GET /` (the page) and `GET /dashboard/{asset}` (its script and style
 * sheet), files under web/ read once at start-up. A strict Content-Security-Policy allows only
 * this origin's script, style and connections, so the page cannot be made to run anything else.
 */
import { readFileSync } from 'node:fs';
import { Router } from '@koa/router';
import type { Context } from 'koa';
import { DASHBOARD_DIR } from '../dashboard-files.ts';
import { operation, type RouteKit } from '../route-kit.ts';

const CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const assetTypes: Readonly<Record<string, string>> = { 'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8' };

/** Routes of the dashboard. */
export function dashboardRoutes(kit: RouteKit): Router {
  const router = new Router();
  const read = (name: string) => readFileSync(new URL(name, DASHBOARD_DIR), 'utf8');
  const page = read('index.html').replace('{{TEST_API}}', kit.deps.testApi === false ? 'off' : 'on');
  const assets = new Map(Object.keys(assetTypes).map((name) => [name, read(name)]));
  operation(router, kit, 'getDashboard', (ctx) => send(ctx, 'text/html; charset=utf-8', page));
  operation(router, kit, 'getDashboardAsset', (ctx, { path }) => {
    const name = path.asset as string;
    send(ctx, assetTypes[name] as string, assets.get(name) as string);
  });
  return router;
}

function send(ctx: Context, type: string, body: string): void {
  ctx.status = 200;
  ctx.type = type;
  ctx.set('Content-Security-Policy', CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Cache-Control', 'no-cache');
  ctx.body = body;
}
