/**
 * The addon's own checks on the real engine (clients/godot/tests/addon_test.gd): replies and
 * pushes applied idempotently by epoch (a repeated one emits nothing, an older epoch or demotion
 * is ignored, a push never makes a region led), the primary lease counted from send times, and
 * the list of coordinator URLs (the leader a 307 or a 4002 close names is used until it fails; a
 * failed coordinator is left for the next, a late failure of one no longer in use changes nothing).
 *
 * Skip rule: without `godot3-server` on PATH the test is skipped, except under `CI=true`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Child, GODOT, childEnv, godotPath, repoRoot, skip, withTimeout } from './godot-fleet.ts';

test('the addon applies assignments idempotently by epoch, counts its lease from send times and follows the leader among its coordinator URLs', { skip, timeout: 60_000 }, async () => {
  if (godotPath === null) throw new Error(`${GODOT} is not on PATH but CI=true: .ci/run must install it`);
  const workDir = await mkdtemp(join(tmpdir(), 'mesh-godot-units-'));
  try {
    const child = new Child('addon_test', spawn(godotPath, ['--no-window', '-s', 'clients/godot/tests/addon_test.gd'], {
      cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnv({ LANG: 'en_US.UTF-8', XDG_DATA_HOME: workDir, XDG_CONFIG_HOME: workDir, XDG_CACHE_HOME: workDir }),
    }));
    await withTimeout(child.exited, 45_000);
    if (child.running) await child.stop('SIGKILL', 1000);
    const summary = child.lines.find((l) => l.startsWith('addon_test:'));
    assert.match(summary ?? '', /^addon_test: (\d+) checks, 0 failed$/, child.describe());
    assert.ok(Number(/(\d+) checks/.exec(summary!)![1]) >= 46, 'every check ran');
    assert.equal(child.exitCode, 0, child.describe());
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
});
