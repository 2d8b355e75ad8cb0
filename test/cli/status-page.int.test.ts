/**
 * The status page (`GET /ui`) of a real run: the local service (`startService`) with its embedded
 * registry signs images pushed with skopeo, dead-letters a push whose image the registry does not
 * hold (after failed attempts), and answers AdmissionReviews (one denied, one admitted, one let
 * through by an audit-mode policy). The page is behind the bearer token of `/verify`, shows all of
 * that, and renders in Chromium (a screenshot in test-results/).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import { startService, type RunningService } from '../../cli/serve';
import { fixture } from '../admission/fixtures';
import { browserIt, launchBrowser, saveScreenshot } from '../support/browser';
import { makeImage, skopeoCopy } from '../support/images';
import { freePort } from '../support/ports';

jest.setTimeout(120_000);

const TOKEN = 'ui-bearer-token-8f3a1c5e7b9d2f4a';
const EVENTS_TOKEN = 'ui-events-token-2d4f6a8c0e1b3d5f';

let dir: string;
let host: string;
let running: RunningService;
const digests: Record<string, string> = {};

async function waitUntil(
  what: string,
  done: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function signed(repository: string, digest: string): Promise<boolean> {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${digest.replace(':', '-')}.sig`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  return res.status === 200;
}

async function admit(review: unknown): Promise<{ allowed: boolean }> {
  const res = await fetch(`${running.url}/admission`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(review),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { response: { allowed: boolean } }).response;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-ui-'));
  host = `127.0.0.1:${await freePort()}`;
  const yaml = `
registries:
  - host: ${host}
    embedded: true
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: simple
policies:
  - name: production
    enabled: true
    namespaces: [production]
    images: ["${host}/team-a/**", "${host}/other/**"]
    attestors:
      - witnesses: [release]
  - name: staging
    enabled: true
    mode: audit
    namespaces: [staging]
    images: ["${host}/**"]
    attestors:
      - witnesses: [release]
server:
  bearerToken: ${TOKEN}
  eventsToken: ${EVENTS_TOKEN}
journal:
  retryBaseSeconds: 0.05
  retryMaxSeconds: 0.1
`;
  const config = parseConfig(yaml, { baseDir: dir, source: join(dir, 'signet.yaml') });
  running = await startService(config, { logger: silentLogger, port: 0 });

  // Pushed and signed through the registry's notifications.
  for (const [repository, tag] of [
    ['team-a/web', 'v1'],
    ['team-a/api', 'v2'],
    ['other/tool', 'v1'],
  ] as const) {
    const layout = join(dir, `layout-${repository.replace('/', '-')}`);
    await makeImage(layout, { seed: `${repository}:${tag}` });
    digests[repository] = await skopeoCopy(layout, `${host}/${repository}:${tag}`);
  }
  await waitUntil(
    'team-a is signed',
    async () =>
      (await signed('team-a/web', digests['team-a/web']!)) && signed('team-a/api', digests['team-a/api']!),
  );

  // A push of an image the registry does not hold: failed attempts, then a dead letter.
  const ghost = await makeImage(join(dir, 'layout-ghost'), { seed: 'ghost' });
  const res = await fetch(`${running.url}/events/distribution`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${EVENTS_TOKEN}` },
    body: JSON.stringify({
      events: [
        {
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: ghost,
            repository: 'team-a/ghost',
            tag: 'v9',
            url: `http://${host}/v2/team-a/ghost/manifests/${ghost}`,
          },
          request: { host },
        },
      ],
    }),
  });
  expect(res.status).toBe(202);
  await waitUntil('the ghost push is dead-lettered', () => running.journal.depth().deadLetters === 1);

  // Admission: an unsigned image denied, a signed one admitted, an unsigned one let through in audit mode.
  const denied = fixture('deployment-create', host);
  denied.request.object.spec.template.spec.containers[0].image = `${host}/other/tool:v1`;
  delete denied.request.object.spec.template.spec.initContainers;
  expect((await admit(denied)).allowed).toBe(false);
  const admitted = fixture('pod-create', host);
  admitted.request.object.spec.containers = [{ name: 'web', image: `${host}/team-a/web:v1` }];
  delete admitted.request.object.spec.initContainers;
  expect((await admit(admitted)).allowed).toBe(true);
  const audited = fixture('statefulset-create', host);
  audited.request.namespace = 'staging';
  audited.request.object.metadata.namespace = 'staging';
  audited.request.object.spec.template.spec.containers[0].image = `${host}/other/tool:v1`;
  delete audited.request.object.spec.template.spec.initContainers;
  expect((await admit(audited)).allowed).toBe(true);
});

afterAll(async () => {
  await running?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('GET /ui', () => {
  it('is refused without the bearer token that /verify requires', async () => {
    const res = await fetch(`${running.url}/ui`);
    expect(res.status).toBe(401);
    expect(await res.text()).not.toContain('<html');
  });

  it('serves the page with the run on it, and a policy that forbids loading anything', async () => {
    const res = await fetch(`${running.url}/ui`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const page = await res.text();
    expect(page).toContain(`${host}/team-a/web:v1@${digests['team-a/web']}`);
    expect(page).toContain(`${host}/other/tool:v1`);
    expect(page).toContain('MANIFEST_UNKNOWN');
    expect(page).not.toMatch(/<script/i);
  });

  browserIt()(
    'renders in Chromium with the counts, a denial row naming image and reason, and the charts',
    async () => {
      const browser = await launchBrowser();
      try {
        const page = await browser.newPage({
          viewport: { width: 1280, height: 900 },
          extraHTTPHeaders: { authorization: `Bearer ${TOKEN}` },
        });
        const requests: string[] = [];
        page.on('request', (request) => requests.push(request.url()));
        const response = await page.goto(`${running.url}/ui`);
        expect(response?.status()).toBe(200);
        const png = await saveScreenshot(page, 'status-page', { fullPage: true });
        expect((await readFile(png)).subarray(1, 4).toString()).toBe('PNG');
        // The page loaded nothing but itself.
        expect(requests).toEqual([`${running.url}/ui`]);

        expect(await page.textContent('#count-denied .n')).toBe('1');
        expect(await page.textContent('#count-admitted .n')).toBe('2');
        expect(Number(await page.textContent('#count-signed .n'))).toBeGreaterThanOrEqual(2);
        expect(await page.textContent('#count-dead-letters .n')).toBe('1');
        const denial = page.locator('#denials tbody tr').first();
        expect(await denial.textContent()).toContain(`${host}/other/tool:v1`);
        expect(await denial.textContent()).toContain('NO_SIGNATURES');
        expect(await denial.textContent()).toContain('Deployment production/web');
        expect(await page.locator('#findings tbody tr', { hasText: 'staging' }).count()).toBe(1);
        expect(await page.locator('#signatures tbody tr', { hasText: `${host}/team-a/api:v2` }).count()).toBe(
          1,
        );
        expect(await page.locator('#failures tbody tr', { hasText: 'MANIFEST_UNKNOWN' }).count()).toBe(3);
        expect(
          await page.locator('#dead-letters tbody tr', { hasText: `${host}/team-a/ghost:v9` }).count(),
        ).toBe(1);
        for (const name of ['pushes', 'signed', 'failed', 'admitted', 'denied'])
          expect(await page.locator(`svg#chart-${name} rect`).count()).toBe(60);
      } finally {
        await browser.close();
      }
    },
  );
});
