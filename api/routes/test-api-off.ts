/**
 * The test API switched off (`--test-api off`, `MESH_TEST_API=off`): the paths of setup_test,
 * reset, simulate_failure and advance_time answer 404 with a problem that says why, rather than
 * the bare "no such path" an operator might take for a typo or a wrong version.
 */
import { Router } from '@koa/router';
import { HttpProblem } from '../problem.ts';
import type { RouteKit } from '../route-kit.ts';

/** Operations that exist only while the test API is on. */
export const testApiOperations: readonly string[] = ['setupTestMesh', 'resetTestMesh', 'simulateFailure', 'advanceTestTime'];

/** Routes that refuse every test operation with a 404 problem. */
export function testApiOffRoutes(kit: RouteKit): Router {
  const router = new Router();
  for (const operationId of testApiOperations) {
    const info = kit.contract.operations.get(operationId);
    if (!info) throw new Error(`operation ${operationId} is not in openapi.yaml`);
    router.all(info.routerPath, (ctx) => {
      throw new HttpProblem({
        status: 404, slug: 'test-api-off',
        detail: `${ctx.method} ${ctx.path} is part of the test API, which this service runs without ` +
          '(--test-api off / MESH_TEST_API=off); restart it with the test API on to use it.',
      });
    });
  }
  return router;
}
