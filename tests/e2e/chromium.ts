/**
 * Debian's Chromium driven by playwright-core, for the dashboard tests. Each launch gets a fresh
 * profile directory (removed on close) and the flags that keep a headless browser from reaching
 * anything but the page under test. Skip rule as for Godot: without /usr/bin/chromium the suite is
 * skipped, except under CI=true, where it fails (.ci/run installs it).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the suite is skipped, or false when it runs. */
export function chromiumSkip(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === 'true') return false;
  return `${CHROMIUM} is missing (apt-get install -y chromium); skipped outside CI, where it is required`;
}

/** Throws under CI when Chromium is missing, so the suite fails rather than passes empty. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing but CI=true: .ci/run must install it (apt-get install -y chromium)`);
}

const flags = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/** A browser with a fresh profile; `close` removes the profile too. */
export async function launchChromium(viewport: { width: number; height: number }): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'mesh-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: flags, viewport, timeout: 60_000,
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
