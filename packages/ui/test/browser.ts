/** Launching Debian's Chromium through playwright-core (never a downloaded browser). */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = process.env.PRIORGRAPH_CHROMIUM ?? '/usr/bin/chromium';
export const SKIP_BROWSER = process.env.PRIORGRAPH_SKIP_BROWSER === '1';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh browser profile at 1280×800 (`args`: extra Chromium switches). Throws a clear error when
 *  Chromium is missing. */
export async function launchBrowser(opts: { args?: string[] } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install Debian's chromium package (apt-get install -y chromium), set PRIORGRAPH_CHROMIUM, or skip the browser tests with PRIORGRAPH_SKIP_BROWSER=1`,
    );
  }
  const profile = mkdtempSync(join(tmpdir(), 'pg-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
    viewport: { width: 1280, height: 800 },
    // PRIORGRAPH_E2E_DPR=2 runs the same steps on a HiDPI screen
    deviceScaleFactor: Number(process.env.PRIORGRAPH_E2E_DPR ?? 1),
    acceptDownloads: true,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
