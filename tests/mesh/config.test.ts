import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { defaultMeshConfig, testMeshConfig, validateMeshConfig, degradedLevels, type MeshConfig } from '../../mesh/base/config.ts';

/** A copy of the defaults with some fields replaced (the defaults themselves are frozen). */
const withFields = (patch: Record<string, unknown>): MeshConfig => ({ ...defaultMeshConfig, ...patch }) as MeshConfig;

describe('validateMeshConfig: the shipped configurations', () => {
  test('defaultMeshConfig is valid', () => {
    assert.deepEqual(validateMeshConfig(defaultMeshConfig), []);
  });

  test('testMeshConfig is valid and differs from the defaults only in the degraded cool-down', () => {
    assert.deepEqual(validateMeshConfig(testMeshConfig), []);
    const differing = (Object.keys(defaultMeshConfig) as (keyof MeshConfig)[])
      .filter((key) => defaultMeshConfig[key] !== testMeshConfig[key]);
    assert.deepEqual(differing, ['degradedCooldownMs']);
    assert.ok(testMeshConfig.degradedCooldownMs < defaultMeshConfig.degradedCooldownMs, 'shorter cool-down');
  });

  test('both configurations are frozen, including their threshold objects', () => {
    for (const config of [defaultMeshConfig, testMeshConfig]) {
      assert.ok(Object.isFrozen(config), 'Object.isFrozen(config)');
      assert.ok(Object.isFrozen(config.failureCountThresholds), 'Object.isFrozen(config.failureCountThresholds)');
      assert.ok(Object.isFrozen(config.failedServerShareThresholds), 'Object.isFrozen(config.failedServerShareThresholds)');
      assert.ok(Object.isFrozen(config.impairedRegionShareThresholds), 'Object.isFrozen(config.impairedRegionShareThresholds)');
    }
  });

  test('the seed values the issue names are the defaults', () => {
    assert.equal(defaultMeshConfig.heartbeatIntervalMs, 1000);
    assert.equal(defaultMeshConfig.failureTimeoutMs, 5000);
    assert.equal(defaultMeshConfig.backupsPerRegion, 2);
    assert.equal(defaultMeshConfig.failureWindowMs, 60_000);
    assert.equal(defaultMeshConfig.failureCountThresholds.LIGHT, 3);
    assert.equal(defaultMeshConfig.failedServerShareThresholds.SEVERE, 0.3);
    assert.equal(defaultMeshConfig.actionBufferMaxPerPlayer, 100);
    assert.equal(defaultMeshConfig.actionBufferMaxAgeMs, 10_000);
  });

  test('degraded levels are listed from best to worst', () => {
    assert.deepEqual(degradedLevels, ['NORMAL', 'LIGHT', 'MODERATE', 'SEVERE']);
  });
});

const positiveIntegerFields = [
  'heartbeatIntervalMs', 'expeditedHeartbeatIntervalMs', 'tickIntervalMs', 'phiWindowSize', 'peerSilenceMs', 'failureTimeoutMs',
  'tiltThresholdMs', 'tiltRecoveryMs', 'clockStepThresholdMs', 'primaryLeaseMs', 'promotionAckTimeoutMs', 'backupSyncTimeoutMs',
  'maxTransitionsPerServer', 'maxBackupAssignmentsPerTick', 'serverFailureAlertsPerTick', 'failureWindowMs',
  'actionBufferMaxPerPlayer', 'actionBufferMaxAgeMs', 'snapshotMaxBytes', 'snapshotsMaxPerRegion', 'failoverHistoryLimit',
  'resolvedAlertsLimit',
] as const;

describe('validateMeshConfig: positive integer fields', () => {
  const badValues: [string, unknown][] = [['zero', 0], ['negative', -5], ['fractional', 2.5], ['NaN', Number.NaN],
    ['a string', '1000'], ['infinite', Number.POSITIVE_INFINITY]];
  for (const field of positiveIntegerFields) {
    for (const [label, value] of badValues) {
      test(`${field} ${label} is named`, () => {
        const errors = validateMeshConfig(withFields({ [field]: value }));
        assert.ok(errors.some((e) => e.startsWith(`${field} must be a positive integer`)),
          `expected an error naming ${field}, got ${JSON.stringify(errors)}`);
      });
    }
  }

  test('a single bad field gives exactly one error about that field (peerSilenceMs)', () => {
    // peerSilenceMs takes part in no cross-field rule, so only its own error can appear.
    assert.deepEqual(validateMeshConfig(withFields({ peerSilenceMs: 0 })), ['peerSilenceMs must be a positive integer, got 0']);
  });

  test('every bad field is reported, not only the first', () => {
    const errors = validateMeshConfig(withFields({ phiWindowSize: 0, snapshotMaxBytes: -1, resolvedAlertsLimit: 0.5 }));
    for (const field of ['phiWindowSize', 'snapshotMaxBytes', 'resolvedAlertsLimit']) {
      assert.ok(errors.some((e) => e.startsWith(field)), `${field} missing from ${JSON.stringify(errors)}`);
    }
  });
});

describe('validateMeshConfig: non-negative fields', () => {
  const fields = ['phiMinStdDeviationMs', 'phiAcceptablePauseMs', 'degradedCooldownMs', 'backupsPerRegion'] as const;
  for (const field of fields) {
    test(`${field} = 0 is accepted`, () => {
      assert.deepEqual(validateMeshConfig(withFields({ [field]: 0 })), []);
    });
    for (const [label, value] of [['negative', -1], ['NaN', Number.NaN], ['infinite', Number.POSITIVE_INFINITY]] as const) {
      test(`${field} ${label} is named`, () => {
        const errors = validateMeshConfig(withFields({ [field]: value }));
        assert.ok(errors.some((e) => e.startsWith(`${field} must be a number >= 0`)), JSON.stringify(errors));
      });
    }
  }

  test('backupsPerRegion must be a whole number of backups (regression: 1.5 was accepted)', () => {
    const errors = validateMeshConfig(withFields({ backupsPerRegion: 1.5 }));
    assert.ok(errors.some((e) => e.startsWith('backupsPerRegion')), JSON.stringify(errors));
  });
});

describe('validateMeshConfig: cross-field and threshold rules', () => {
  const cases: { name: string; patch: Record<string, unknown>; field: string }[] = [
    { name: 'phiSuspectThreshold 0', patch: { phiSuspectThreshold: 0 }, field: 'phiSuspectThreshold' },
    { name: 'phiSuspectThreshold negative', patch: { phiSuspectThreshold: -1 }, field: 'phiSuspectThreshold' },
    { name: 'phiSuspectThreshold NaN', patch: { phiSuspectThreshold: Number.NaN }, field: 'phiSuspectThreshold' },
    { name: 'failure timeout equal to the heartbeat interval', patch: { failureTimeoutMs: 1000 }, field: 'failureTimeoutMs' },
    { name: 'failure timeout below the heartbeat interval', patch: { heartbeatIntervalMs: 6000 }, field: 'failureTimeoutMs' },
    { name: 'expedited heartbeats slower than regular ones', patch: { expeditedHeartbeatIntervalMs: 1001 }, field: 'expeditedHeartbeatIntervalMs' },
    { name: 'tilt threshold equal to the tick interval', patch: { tiltThresholdMs: 100 }, field: 'tiltThresholdMs' },
    { name: 'tilt threshold below the tick interval', patch: { tickIntervalMs: 3000 }, field: 'tiltThresholdMs' },
    { name: 'lease equal to the heartbeat interval', patch: { primaryLeaseMs: 1000 }, field: 'primaryLeaseMs' },
    { name: 'lease below the heartbeat interval', patch: { heartbeatIntervalMs: 2500, failureTimeoutMs: 6000 }, field: 'primaryLeaseMs' },
    { name: 'drift margin above the lease', patch: { leaseDriftMarginMs: 2001 }, field: 'leaseDriftMarginMs' },
    { name: 'drift margin negative', patch: { leaseDriftMarginMs: -1 }, field: 'leaseDriftMarginMs' },
    { name: 'failure counts out of order', patch: { failureCountThresholds: { LIGHT: 6, MODERATE: 3, SEVERE: 12 } }, field: 'failureCountThresholds' },
    { name: 'failure count LIGHT 0', patch: { failureCountThresholds: { LIGHT: 0, MODERATE: 3, SEVERE: 12 } }, field: 'failureCountThresholds' },
    { name: 'failed share SEVERE above 1', patch: { failedServerShareThresholds: { LIGHT: 0.1, MODERATE: 0.2, SEVERE: 1.5 } }, field: 'failedServerShareThresholds' },
    { name: 'failed share MODERATE above SEVERE', patch: { failedServerShareThresholds: { LIGHT: 0.1, MODERATE: 0.4, SEVERE: 0.3 } }, field: 'failedServerShareThresholds' },
    { name: 'impaired share negative LIGHT', patch: { impairedRegionShareThresholds: { LIGHT: -0.1, MODERATE: 0.15, SEVERE: 0.3 } }, field: 'impairedRegionShareThresholds' },
    { name: 'impaired share NaN', patch: { impairedRegionShareThresholds: { LIGHT: Number.NaN, MODERATE: 0.15, SEVERE: 0.3 } }, field: 'impairedRegionShareThresholds' },
  ];
  for (const { name, patch, field } of cases) {
    test(`${name} names ${field}`, () => {
      const errors = validateMeshConfig(withFields(patch));
      assert.ok(errors.some((e) => e.startsWith(field)), `expected ${field} in ${JSON.stringify(errors)}`);
    });
  }

  const valid: { name: string; patch: Record<string, unknown> }[] = [
    { name: 'failure timeout one ms above the interval', patch: { failureTimeoutMs: 1001 } },
    { name: 'tilt threshold one ms above the tick', patch: { tiltThresholdMs: 101 } },
    { name: 'lease one ms above the heartbeat interval, no drift margin', patch: { primaryLeaseMs: 1001, leaseDriftMarginMs: 0 } },
    { name: 'expedited interval equal to the regular one', patch: { expeditedHeartbeatIntervalMs: 1000 } },
    { name: 'equal thresholds at every level', patch: { failedServerShareThresholds: { LIGHT: 0.5, MODERATE: 0.5, SEVERE: 0.5 } } },
    { name: 'share thresholds exactly 1', patch: { impairedRegionShareThresholds: { LIGHT: 1, MODERATE: 1, SEVERE: 1 } } },
    { name: 'failure counts have no upper bound', patch: { failureCountThresholds: { LIGHT: 10, MODERATE: 1000, SEVERE: 1e9 } } },
  ];
  for (const { name, patch } of valid) {
    test(`${name} is valid`, () => {
      assert.deepEqual(validateMeshConfig(withFields(patch)), []);
    });
  }
});
