/**
 * meshctl: the coordinator from a terminal, over the client generated from openapi.yaml.
 *
 *   meshctl [--url URL] [--json] <command>
 *
 * The service is `--url`, else MESH_URL, else http://127.0.0.1:8080; the admin token is
 * MESH_ADMIN_TOKEN (never a flag, so it stays out of `ps` and shell history). Exit codes: 0 done,
 * 1 the service refused or failed (its problem's detail is printed), 2 bad usage, 3 the service
 * could not be reached.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createMeshClient, MeshApiError, ok, type MeshClient } from '../clients/ts/mesh-client.ts';
import * as render from './render.ts';

/** Where output goes; tests and the process alike. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
}

class Unreachable extends Error {}

/** Runs meshctl with `argv` (without node and the script) and resolves with the exit code. */
export async function meshctl(argv: readonly string[], io: Io): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    return failure(error, program.opts().url as string, io);
  }
}

function failure(error: unknown, url: string, io: Io): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
  if (error instanceof MeshApiError) {
    io.err(`meshctl: ${error.status} ${error.problem?.title ?? ''}: ${error.problem?.detail ?? error.message}\n`);
    return 1;
  }
  if (error instanceof Unreachable) {
    io.err(`meshctl: cannot reach the coordinator at ${url} (${error.message}); is it running? Set --url or MESH_URL.\n`);
    return 3;
  }
  io.err(`meshctl: ${error instanceof Error ? error.message : String(error)}\n`);
  return 1;
}

/** A fetch that turns connection failures into {@link Unreachable}. */
async function fetchOrUnreachable(request: Request): Promise<Response> {
  try {
    return await fetch(request);
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new Unreachable(cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error)));
  }
}

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
};

const fraction = (value: string): number => {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('expected a number in (0, 1]');
  return n;
};

function buildProgram(io: Io): Command {
  const program = new Command('meshctl')
    .description('Operate a mesh coordinator: health, regions, failures, alerts, events.')
    .option('--url <url>', 'the coordinator, or every replica\'s URL separated by commas; MESH_URL sets the default', io.env.MESH_URL || 'http://127.0.0.1:8080')
    .option('--json', 'print the service\'s JSON instead of tables', false)
    // Before any subcommand is added, which copies these settings: usage errors throw (exit 2).
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();
  const client = (): MeshClient => createMeshClient({
    baseUrl: (program.opts().url as string).split(',').map((url) => url.trim()).filter((url) => url !== ''), fetch: fetchOrUnreachable,
    ...(io.env.MESH_ADMIN_TOKEN ? { adminToken: io.env.MESH_ADMIN_TOKEN } : {}),
  });
  const show = <T>(data: T, human: (data: T) => string) => io.out(program.opts().json ? `${JSON.stringify(data, null, 2)}\n` : human(data));

  program.command('status').description('health of the whole mesh').action(async () => {
    show(ok(await client().api.GET('/mesh/status')), render.statusText);
  });
  program.command('regions').description('every region with its state, epoch, primary and backups')
    .addOption(new Option('--state <state>', 'only regions in this state').choices(['active', 'failing_over', 'under_replicated', 'unavailable']))
    .action(async (options: { state?: 'active' | 'failing_over' | 'under_replicated' | 'unavailable' }) => {
      const query = options.state ? { state: options.state } : {};
      show(ok(await client().api.GET('/mesh/regions', { params: { query } })), (d) => render.regionsText(d.regions));
    });
  program.command('replication <region>').description('replicas of one region and its last failover').action(async (region: string) => {
    show(ok(await client().api.GET('/mesh/replication/{region_id}', { params: { path: { region_id: region } } })), render.replicationText);
  });
  program.command('metrics').description('failover statistics; --prometheus for the raw /metrics text')
    .option('--prometheus', 'print GET /metrics as it is', false)
    .action(async (options: { prometheus: boolean }) => {
      if (options.prometheus) {
        io.out(await ok(await client().api.GET('/metrics', { parseAs: 'text' })));
        return;
      }
      show(ok(await client().api.GET('/mesh/failover_metrics')), render.metricsText);
    });
  addAlerts(program, client, show);
  addTestCommands(program, client, show);
  addServers(program, client, show);
  addWatch(program, client, io);
  return program;
}

type Show = <T>(data: T, human: (data: T) => string) => void;

function addAlerts(program: Command, client: () => MeshClient, show: Show): void {
  const alerts = program.command('alerts').description('open alerts (--all for resolved ones too); `alerts ack <id>` acknowledges one')
    .option('--all', 'include resolved alerts', false)
    .action(async (options: { all: boolean }) => {
      show(ok(await client().api.GET('/mesh/alerts', { params: { query: { state: options.all ? 'all' : 'open' } } })), (d) => render.alertsText(d.alerts));
    });
  alerts.command('ack <id>').description('acknowledge an alert (admin)').action(async (id: string) => {
    show(ok(await client().api.POST('/mesh/alerts/{alert_id}/ack', { params: { path: { alert_id: id } } })),
      (a) => `acknowledged ${a.id} (${a.title})\n`);
  });
}

function addTestCommands(program: Command, client: () => MeshClient, show: Show): void {
  program.command('setup-test').description('create a simulated test mesh (admin)')
    .option('--regions <n>', 'regions', positiveInt, 24).option('--zones <n>', 'zones', positiveInt, 3)
    .option('--critical <n>', 'critical regions', positiveInt, 0).option('--players <n>', 'players per region', positiveInt, 20)
    .option('--spare <n>', 'servers beyond what the regions need', positiveInt, 0)
    .action(async (o: { regions: number; zones: number; critical: number; players: number; spare: number }) => {
      const body = { regions: o.regions, zones: o.zones, critical_regions: o.critical, players_per_region: o.players, spare_servers: o.spare };
      show(ok(await client().api.POST('/mesh/setup_test', { body })), (d) => `created ${d.regions.length} regions on ${d.servers.length} servers\n`);
    });
  program.command('reset').description('remove the test mesh (admin)').action(async () => {
    show(ok(await client().api.POST('/mesh/reset')), () => 'test mesh removed\n');
  });
  program.command('simulate-failure').description('inject a failure: one target (--server, --region with --role, --zone or --fraction)')
    .option('--server <id>', 'a server').option('--region <id>', 'a region (with --role)')
    .addOption(new Option('--role <role>', 'which replica of --region').choices(['primary', 'backup']))
    .option('--zone <zone>', 'every server of a zone').option('--fraction <f>', 'a random share of the servers', fraction)
    .addOption(new Option('--mode <mode>', 'what happens to them').choices(['crash', 'partition', 'slow', 'flap']).default('crash'))
    .option('--duration-ms <ms>', 'how long (partition, slow, flap)', positiveInt).option('--delay-ms <ms>', 'extra heartbeat delay (slow)', positiveInt)
    .action(async (o: { server?: string; region?: string; role?: 'primary' | 'backup'; zone?: string; fraction?: number; mode: 'crash'; durationMs?: number; delayMs?: number }) => {
      const body = {
        mode: o.mode, server_id: o.server, region_id: o.region, role: o.role, zone: o.zone, fraction: o.fraction,
        duration_ms: o.durationMs, delay_ms: o.delayMs,
      };
      const defined = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)) as typeof body;
      show(ok(await client().api.POST('/mesh/simulate_failure', { body: defined as never })),
        (f) => `injected ${f.mode} (${f.failure_id}) on ${f.server_ids.join(', ')}\n`);
    });
}

function addServers(program: Command, client: () => MeshClient, show: Show): void {
  const servers = program.command('servers').description('every server; `servers drain <id>` hands its regions off (admin)')
    .action(async () => {
      show(ok(await client().api.GET('/mesh/servers')), (d) => render.serversText(d.servers));
    });
  servers.command('drain <id>').description('start draining a server: its regions move without a failover').action(async (id: string) => {
    show(ok(await client().api.POST('/mesh/servers/{server_id}/leave', { params: { path: { server_id: id } } })),
      (d) => `${d.server_id} is ${d.status}\n`);
  });
}

function addWatch(program: Command, client: () => MeshClient, io: Io): void {
  program.command('watch').description('follow the event stream (Ctrl-C to stop)')
    .option('--count <n>', 'stop after n events', positiveInt)
    .action(async (o: { count?: number }) => {
      const stream = await client().events();
      const stop = () => stream.close();
      process.once('SIGINT', stop);
      let seen = 0;
      try {
        for await (const event of stream) {
          io.out(program.opts().json ? `${JSON.stringify(event)}\n` : render.eventLine(event));
          if (o.count !== undefined && ++seen >= o.count) break;
        }
      } finally {
        process.off('SIGINT', stop);
        stream.close();
      }
    });
}
