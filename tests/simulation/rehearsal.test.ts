/**
 * The startup rehearsal (mesh/simulation/rehearsal.ts): it must really run the failure path, a
 * mass failure from declaration to completed failovers and restored backups, or it warms nothing.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultMeshConfig, testMeshConfig } from '../../mesh/base/config.ts';
import { rehearsalRegions, rehearseMassFailure } from '../../mesh/simulation/rehearsal.ts';

describe('startup rehearsal', () => {
  test('fails 30% of its servers and recovers every region that kept a replica', () => {
    const report = rehearseMassFailure(defaultMeshConfig);
    assert.equal(report.regions, rehearsalRegions);
    assert.equal(report.serversFailed, Math.round(report.servers * 0.3));
    assert.ok(report.failoversCompleted > 0, 'no failover completed');
    assert.equal(report.failoversInProgress, 0);
    assert.equal(report.regionsActive + report.regionsUnavailable, report.regions,
      `every region is active or lost with all its replicas: ${JSON.stringify(report)}`);
    // Recovered within seconds of the crash (10 heartbeats in), far inside the 60 s it may take.
    assert.ok(report.simulatedMs <= 10 * defaultMeshConfig.heartbeatIntervalMs + 10_000, `took until ${report.simulatedMs} ms`);
    assert.ok(report.regionsUnavailable < report.regions / 10, JSON.stringify(report));
  });

  test('is deterministic: the same config gives the same run', () => {
    assert.deepEqual(rehearseMassFailure(testMeshConfig), rehearseMassFailure(testMeshConfig));
  });

  test('follows the config it is given (other heartbeat and tick intervals)', () => {
    const config = { ...defaultMeshConfig, heartbeatIntervalMs: 500, expeditedHeartbeatIntervalMs: 100, tickIntervalMs: 50 };
    const report = rehearseMassFailure(config);
    assert.ok(report.failoversCompleted > 0);
    assert.equal(report.failoversInProgress, 0);
    assert.equal(report.regionsActive + report.regionsUnavailable, report.regions);
  });

  test('ends as soon as it is over when regions have no backup to promote (every failover fails)', () => {
    const report = rehearseMassFailure({ ...defaultMeshConfig, backupsPerRegion: 0 });
    assert.equal(report.failoversCompleted, 0);
    assert.equal(report.failoversInProgress, 0);
    assert.ok(report.regionsUnavailable > 0, JSON.stringify(report));
    assert.equal(report.regionsActive + report.regionsUnavailable, report.regions);
    // Not the 60 s bound: it stops once every crashed server is declared.
    assert.ok(report.simulatedMs <= 10 * defaultMeshConfig.heartbeatIntervalMs + 10_000, `took until ${report.simulatedMs} ms`);
  });

  test('declares the failures in one tick, then stops after maxRecoveryMs of virtual time', () => {
    const { heartbeatIntervalMs, tiltThresholdMs, tickIntervalMs } = defaultMeshConfig;
    const failAtMs = 10 * heartbeatIntervalMs;
    // With no time for recovery, only the one late tick runs: it declares and promotes, and no
    // promotion can have been acknowledged yet.
    const report = rehearseMassFailure(defaultMeshConfig, 0);
    assert.equal(report.simulatedMs, failAtMs + tiltThresholdMs - tickIntervalMs);
    assert.ok(report.serversFailed > defaultMeshConfig.serverFailureAlertsPerTick, `${report.serversFailed} declared in that tick`);
    assert.equal(report.failoversCompleted, 0);
    assert.ok(report.failoversInProgress > 0);
  });
});
