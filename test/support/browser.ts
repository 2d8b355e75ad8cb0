/**
 * Debian's Chromium driven by playwright-core, for tests that look at Signet's pages as a person
 * would. `npm run setup` installs `/usr/bin/chromium`; playwright never downloads a browser here.
 *
 *   const browser = await launchBrowser();            // throws, saying how to fix it, when chromium is missing
 *   const png = await saveScreenshot(page, 'status-page');   // test-results/status-page.png
 *
 * Browser tests skip only when chromium is missing *and* the environment asks for it
 * (`SIGNET_SKIP_BROWSER=1`): in CI, where setup installs it, they always run.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Where screenshots go (gitignored). */
export const RESULTS_DIR = join(__dirname, '..', '..', 'test-results');

/** Why browser tests are skipped, or undefined when they run. */
export function browserSkipReason(): string | undefined {
  if (existsSync(CHROMIUM) || process.env['SIGNET_SKIP_BROWSER'] !== '1') return undefined;
  return `${CHROMIUM} is missing and SIGNET_SKIP_BROWSER=1: browser tests skipped (npm run setup installs chromium)`;
}

/** `it`, or `it.skip` with the reason printed once, when browser tests are to be skipped. */
export function browserIt(): jest.It {
  const reason = browserSkipReason();
  if (reason === undefined) return it;
  console.warn(reason);
  return it.skip;
}

/** Headless Chromium, offline: no background networking, no component updates, no sync. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: run \`npm run setup\` (apt-get install -y chromium), or set SIGNET_SKIP_BROWSER=1 to skip browser tests`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** A PNG of `page` (its viewport, or all of it) in test-results/; returns its path. */
export async function saveScreenshot(
  page: Page,
  name: string,
  options: { readonly fullPage?: boolean } = {},
): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: options.fullPage ?? false });
  return file;
}
