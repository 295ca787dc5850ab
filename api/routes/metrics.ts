/**
 * `GET /metrics`: the Prometheus text exposition of the registry `src/` builds (prom-client). The
 * API only serves it; what is measured, and how, lives in src/metrics.ts. Without a metrics source
 * (unit tests of other routes) the path is not mounted.
 */
import { Router } from '@koa/router';
import { operation, type RouteKit } from '../route-kit.ts';

/** The metrics route. */
export function metricsRoutes(kit: RouteKit): Router {
  const router = new Router();
  const source = kit.deps.metrics;
  if (!source) return router;
  operation(router, kit, 'getMetrics', async (ctx) => {
    const text = await source.render();
    ctx.status = 200;
    ctx.type = source.contentType;
    ctx.body = text;
  });
  return router;
}
