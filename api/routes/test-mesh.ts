/**
 * Simulated test meshes, fault injection and virtual time: `POST /mesh/setup_test`,
 * `POST /mesh/reset`, `POST /mesh/simulate_failure` and (manual clock only)
 * `POST /mesh/test/advance_time`. Every operation here is admin-only.
 */
import { Router } from '@koa/router';
import type { FaultSpec, FaultTarget } from '../../mesh/faults/faults.ts';
import { defaultSimCapacity, targetUtilisation, type TestMeshSpec } from '../../mesh/simulation/setup.ts';
import { regionId, serverId, type FaultMode, type Role } from '../../mesh/base/types.ts';
import { validationFailed } from '../problem.ts';
import { ms, msOrNull, operation, reply, unwrap, type RouteKit } from '../route-kit.ts';
import { durably } from './durability.ts';

/** Body of `setupTestMesh` after validation (defaults filled in from the contract). */
interface SetupTestBody {
  regions: number;
  backups_per_region: number;
  spare_servers: number;
  zones: number;
  players_per_region: number;
  critical_regions: number;
  heartbeat_loss: number;
  server_capacity: number;
}

/** Body of `simulateFailure` after validation. */
interface SimulateFailureBody {
  server_id?: string;
  region_id?: string;
  role?: Role;
  zone?: string;
  fraction?: number;
  mode: FaultMode;
  duration_ms?: number;
  delay_ms?: number;
}

/**
 * Most simulated servers one test mesh may have: the length bound of `SetupTestResponse.servers`,
 * and what keeps a request for 10,000 regions on servers of capacity 1 from exhausting memory.
 */
export const maxSimulatedServers = 100_000;

/** Routes of the testing operations. */
export function testMeshRoutes(kit: RouteKit): Router {
  const router = new Router();
  const { host } = kit;

  operation<SetupTestBody>(router, kit, 'setupTestMesh', async (ctx, { body }) => {
    const spec = toTestMeshSpec(body);
    const created = unwrap(await durably(host.setupTest(spec), 'The test mesh exists in memory but may not survive a restart.'));
    reply(ctx, 201, { regions: created.regions, servers: created.servers });
  });

  operation(router, kit, 'resetTestMesh', async (ctx) => {
    await durably(host.resetTest(), 'The test mesh is gone from memory but may reappear after a restart.');
    reply(ctx, 200, { status: 'reset' });
  });

  operation<SimulateFailureBody>(router, kit, 'simulateFailure', (ctx, { body }) => {
    const fault = unwrap(host.injectFailure(toFaultSpec(body)));
    reply(ctx, 202, {
      failure_id: fault.id, mode: fault.mode, server_ids: fault.serverIds, injected_at: ms(fault.injectedAtMs),
      ends_at: msOrNull(fault.untilMs),
    });
  });

  // Under the system clock the operation does not exist: the path answers 404 like any unknown one.
  if (host.clockKind === 'manual') {
    operation<{ ms: number }>(router, kit, 'advanceTestTime', async (ctx, { body }) => {
      const now = await host.advance(body.ms);
      reply(ctx, 200, { now: ms(now) });
    });
  }

  return router;
}

/** Checks what the schema cannot say, then maps the body to the core's spec. */
function toTestMeshSpec(body: SetupTestBody): TestMeshSpec {
  if (body.critical_regions > body.regions) {
    throw validationFailed([{ path: 'body/critical_regions', message: `must be <= regions (${body.regions})` }]);
  }
  const servers = simulatedServerCount(body);
  if (servers > maxSimulatedServers) {
    throw validationFailed([{
      path: 'body', message: `needs ${servers} simulated servers, more than the limit of ${maxSimulatedServers}; ` +
        'lower regions or backups_per_region, or raise server_capacity',
    }]);
  }
  return {
    regions: body.regions, backupsPerRegion: body.backups_per_region, spareServers: body.spare_servers, zones: body.zones,
    playersPerRegion: body.players_per_region, criticalRegions: body.critical_regions, heartbeatLoss: body.heartbeat_loss,
    serverCapacity: body.server_capacity,
  };
}

/** How many servers `setupTestMesh` will create for this body (the same sizing rule). */
export function simulatedServerCount(body: Pick<SetupTestBody, 'regions' | 'backups_per_region' | 'spare_servers' | 'server_capacity'>): number {
  const capacity = body.server_capacity ?? defaultSimCapacity;
  const needed = Math.ceil((body.regions * (1 + body.backups_per_region)) / (capacity * targetUtilisation));
  return Math.max(needed, body.backups_per_region + 1) + body.spare_servers;
}

function toFaultSpec(body: SimulateFailureBody): FaultSpec {
  const spec: { target: FaultTarget; mode: FaultMode; durationMs?: number; delayMs?: number } = {
    target: targetOf(body), mode: body.mode,
  };
  if (body.duration_ms !== undefined) spec.durationMs = body.duration_ms;
  if (body.delay_ms !== undefined) spec.delayMs = body.delay_ms;
  return spec;
}

/** The schema guarantees exactly one target form. */
function targetOf(body: SimulateFailureBody): FaultTarget {
  if (body.server_id !== undefined) return { serverId: serverId(body.server_id) };
  if (body.region_id !== undefined && body.role !== undefined) return { regionId: regionId(body.region_id), role: body.role };
  if (body.zone !== undefined) return { zone: body.zone };
  return { fraction: body.fraction as number };
}
