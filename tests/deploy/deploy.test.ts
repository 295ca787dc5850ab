/**
 * deploy/ stays true to the service: Debian's promtool accepts the alerting rules and lints a live
 * scrape of the real service (after a failover, so the histograms have samples), and every metric
 * the rules and the Grafana dashboard name exists in that scrape. Skip rule as for Godot: without
 * promtool the promtool checks are skipped, except under CI=true, where they fail (.ci/run
 * installs the `prometheus` package, which ships it).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { call, killAll, repoRoot, startService, stopService, waitFor, type ServiceProcess } from '../e2e/service-process.ts';

const PROMTOOL = '/usr/bin/promtool';
const skip = !existsSync(PROMTOOL) && process.env.CI !== 'true'
  ? `${PROMTOOL} is missing (apt-get install -y prometheus); skipped outside CI, where it is required` : false;
const rulesFile = join(repoRoot, 'deploy/prometheus/alerts.yml');
const dashboardFile = join(repoRoot, 'deploy/grafana/mesh-coordinator.json');

/** Metric names a PromQL expression uses (Prometheus's own `up` aside). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:mesh|http|nodejs|process)_[a-z0-9_]+)/g)].map((m) => m[1] as string);
}

/** Metric families of a scrape, by `# TYPE`, with the series names each may use. */
function exposedSeries(scrape: string): Set<string> {
  const names = new Set<string>();
  for (const match of scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

let service: ServiceProcess;
let scrape: string;

before(async () => {
  service = await startService(['--port', '0', '--store', 'memory']);
  await call(service.url, 'POST', '/mesh/setup_test', { body: { regions: 6, zones: 3, spare_servers: 3 } });
  await call(service.url, 'POST', '/mesh/simulate_failure', { body: { region_id: 'region-1', role: 'primary', mode: 'crash' } });
  await waitFor('a completed failover', async () => {
    const metrics = await call(service.url, 'GET', '/mesh/failover_metrics');
    return metrics.body.failovers.completed > 0 ? true : undefined;
  }, { timeoutMs: 20_000, intervalMs: 200 });
  scrape = String((await call(service.url, 'GET', '/metrics')).body);
});
after(async () => {
  if (service) await stopService(service, 'SIGTERM');
  await killAll();
});

describe('deploy/ against a live scrape', () => {
  test('every metric named by the alerting rules and the Grafana dashboard exists', () => {
    const exposed = exposedSeries(scrape);
    const rules = parse(readFileSync(rulesFile, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const used = [
      ...rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert}`, expr: r.expr }))),
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: `panel ${p.title}`, expr: t.expr }))),
    ];
    assert.ok(used.length >= 20, `rules and panels parsed: ${used.length}`);
    const missing = used.flatMap(({ where, expr }) => metricNames(expr).filter((name) => !exposed.has(name)).map((name) => `${where}: ${name}`));
    assert.deepEqual(missing, []);
    assert.ok(dashboard.panels.every((p) => p.targets.length > 0 && p.targets.every((t) => metricNames(t.expr).length > 0)));
  });

  test('the scrape follows the naming conventions: counters end in _total, durations in _seconds', () => {
    for (const match of scrape.matchAll(/^# TYPE (mesh_\S+|http_\S+) (\S+)$/gm)) {
      const [, name, type] = match as unknown as [string, string, string];
      if (type === 'counter') assert.match(name, /_total$/, name);
      if (type === 'histogram') assert.match(name, /_seconds$/, name);
    }
    assert.match(scrape, /^mesh_failover_recovery_seconds_count [1-9]/m);
  });

  describe('promtool', { skip }, () => {
    test('check rules accepts deploy/prometheus/alerts.yml', () => {
      const run = spawnSync(PROMTOOL, ['check', 'rules', rulesFile], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /SUCCESS: \d+ rules found/);
    });

    test('check metrics finds no problem in a live scrape', () => {
      const run = spawnSync(PROMTOOL, ['check', 'metrics'], { input: scrape, encoding: 'utf8', timeout: 30_000 });
      assert.equal(run.status, 0, `promtool check metrics:\n${run.stdout}\n${run.stderr}`);
    });
  });
});
