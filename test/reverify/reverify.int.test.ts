/**
 * Continuous re-verification end to end, on a real registry and the real local service
 * (`startService`, in process, with `reverify: {intervalSeconds: 1, windowDays: 1}`): images are
 * pushed with skopeo and signed by the service from their push events, admitted through
 * `POST /admission` (AdmissionReview fixtures as the apiserver sends them), and then:
 *
 * - one's signature is deleted from the registry: it becomes a finding within one interval
 *   (plus the round's own time), listed by the ledger and by `signet findings`, counted in
 *   `/metrics`, and delivered once to a webhook the test runs;
 * - the ledger answers who signed a digest, when and with which rule (`signet ledger --digest`);
 * - the witness key is revoked (the operator edits the config and restarts): the key's
 *   signatures are denied at admission with SIGNATURE_REVOKED, and the image still running on
 *   them becomes a finding.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main, reportError } from '../../cli/main';
import { startService, type RunningService } from '../../cli/serve';
import { loadConfigFile } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import { keyIdOf } from '../../lib/keys/algorithms';
import type { DecisionRecord, Finding } from '../../lib/ledger/types';
import type { RoundSummary } from '../../lib/reverify/reverifier';
import { fixture } from '../admission/fixtures';
import { makeImage, skopeoCopy } from '../support/images';
import { startTestRegistry, type TestRegistry } from '../support/registry';

jest.setTimeout(120_000);

const EVENTS_TOKEN = 'reverify-events-token-4c1e8a2f9b7d3e6a';
const TOKEN = 'reverify-bearer-token-7a2d9c4e1f8b3a6d';
const INTERVAL_MS = 1000;
// A round reads the registry for every admitted image; on a busy machine that takes a while.
const MARGIN_MS = 9000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON printed by the CLI and the webhook
type Json = any;

let dir: string;
let configFile: string;
let registry: TestRegistry;
let running: RunningService | undefined;
let webhook: Server;
let webhookUrl: string;
const delivered: Json[] = [];
const rounds: RoundSummary[] = [];
const digests: Record<string, string> = {};

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** Runs `signet <args> --config <file>` in process, as `bin/signet.js` would. */
async function signet(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new Capture();
  const err = new Capture();
  const code = await main(
    [...args, '--config', configFile, '--log-level', 'silent'],
    out as never,
    err as never,
  ).catch((error: unknown) => reportError(error, err as never));
  return { code, out: out.text, err: err.text };
}

async function waitUntil(
  what: string,
  done: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const sigTag = (digest: string): string => `${digest.replace(':', '-')}.sig`;

async function signatureManifest(repository: string, digest: string): Promise<string | undefined> {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${sigTag(digest)}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

/** Deletes the `.sig` manifest of `digest`, as someone with push rights to the registry could. */
async function deleteSignature(repository: string, digest: string): Promise<void> {
  const manifest = await signatureManifest(repository, digest);
  expect(manifest).toBeDefined();
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${manifest}`, { method: 'DELETE' });
  expect(res.status).toBe(202);
  expect(await signatureManifest(repository, digest)).toBeUndefined();
}

/** Tells the running service that `repository:v1@digest` was pushed. */
async function announce(repository: string, digest: string): Promise<void> {
  const res = await fetch(`${running!.url}/events/distribution`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${EVENTS_TOKEN}` },
    body: JSON.stringify({
      events: [
        {
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest,
            repository,
            tag: 'v1',
            url: `${registry.url}/v2/${repository}/manifests/${digest}`,
          },
          request: { host: registry.host },
        },
      ],
    }),
  });
  expect(res.status).toBe(202);
}

/** A Pod in `production` running `image`, as the apiserver sends it. */
function podReview(name: string, image: string): Json {
  const review = fixture('pod-create', registry.host);
  review.request.uid = `uid-${name}-${Date.now()}`;
  review.request.name = name;
  review.request.namespace = 'production';
  review.request.object.metadata.name = name;
  review.request.object.metadata.namespace = 'production';
  review.request.object.spec.containers = [{ name: 'app', image }];
  delete review.request.object.spec.initContainers;
  delete review.request.object.spec.ephemeralContainers;
  return review;
}

async function admit(review: Json): Promise<{ allowed: boolean; status?: { message?: string } }> {
  const res = await fetch(`${running!.url}/admission`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(review),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as Json).response;
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${running!.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

async function openFinding(digest: string): Promise<Finding | undefined> {
  return (await running!.ledger.findings()).find((f) => f.digest === digest);
}

function configYaml(revocations = ''): string {
  return `
registries:
  - host: ${registry.host}
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
    images: ["${registry.host}/team-a/**"]
    attestors:
      - witnesses: [release]
server:
  port: 0
  bearerToken: ${TOKEN}
  eventsToken: ${EVENTS_TOKEN}
journal:
  path: ${join(dir, 'signet.db')}
reverify:
  intervalSeconds: ${INTERVAL_MS / 1000}
  windowDays: 1
  webhookUrl: ${webhookUrl}
${revocations}`;
}

async function start(): Promise<RunningService> {
  running = await startService(await loadConfigFile(configFile), {
    logger: silentLogger,
    port: 0,
    onReverifyRound: (summary) => rounds.push(summary),
  });
  return running;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-reverify-'));
  registry = await startTestRegistry();
  webhook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      delivered.push({
        path: req.url,
        contentType: req.headers['content-type'],
        body: JSON.parse(Buffer.concat(chunks).toString()),
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hooks/signet`;
  configFile = join(dir, 'signet.yaml');
  await writeFile(configFile, configYaml());
  await start();

  for (const repository of ['team-a/web', 'team-a/api']) {
    const layout = join(dir, `layout-${repository.replace('/', '-')}`);
    await makeImage(layout, { seed: repository });
    const digest = await skopeoCopy(layout, `${registry.host}/${repository}:v1`);
    digests[repository] = digest;
    await announce(repository, digest);
  }
  await waitUntil('both images are signed', async () =>
    (await Promise.all(Object.entries(digests).map(([r, d]) => signatureManifest(r, d)))).every(
      (m) => m !== undefined,
    ),
  );
  for (const repository of Object.keys(digests)) {
    const name = repository.split('/')[1] as string;
    const response = await admit(podReview(name, `${registry.host}/${repository}:v1`));
    expect([response.allowed, response.status?.message]).toEqual([true, undefined]);
  }
  // The recorder writes within a second; then a round sees both admitted images trusted.
  await waitUntil(
    'both admissions are in the ledger',
    async () => (await running!.ledger.admitted(0)).length === 2,
  );
  const seen = rounds.length;
  await waitUntil('a round finds both trusted', () => rounds.slice(seen).some((r) => r.trusted === 2));
});

afterAll(async () => {
  await running?.stop();
  await registry?.stop();
  await new Promise((resolve) => webhook?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('when an admitted image loses its signature', () => {
  let finding: Finding | undefined;

  beforeAll(async () => {
    await deleteSignature('team-a/web', digests['team-a/web'] as string);
    await waitUntil(
      'the image becomes a finding',
      async () => (finding = await openFinding(digests['team-a/web'] as string)) !== undefined,
      INTERVAL_MS + MARGIN_MS,
    );
  });

  it('is a finding in the ledger, with the reason', () => {
    expect(finding).toMatchObject({
      reference: `${registry.host}/team-a/web:v1`,
      digest: digests['team-a/web'],
      namespace: 'production',
      code: 'NO_SIGNATURES',
      policies: ['production'],
    });
    expect(finding?.resolvedAt).toBeUndefined();
    expect(finding?.announcedAt).toBeGreaterThanOrEqual(finding?.firstFoundAt ?? Infinity);
  });

  it('leaves the image that still has its signature alone', async () => {
    expect(await openFinding(digests['team-a/api'] as string)).toBeUndefined();
  });

  it('is listed by `signet findings`', async () => {
    const { code, out } = await signet('findings', '--json');
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual([
      expect.objectContaining({
        image: `${registry.host}/team-a/web:v1`,
        digest: digests['team-a/web'],
        namespace: 'production',
        code: 'NO_SIGNATURES',
        resolvedAt: null,
      }),
    ]);
  });

  it('is shown on the status page, with the image admitted and the reason', async () => {
    const res = await fetch(`${running!.url}/ui`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    const page = await res.text();
    const findings = page.slice(
      page.indexOf('<h2>Findings</h2>'),
      page.indexOf('<h2>', page.indexOf('<h2>Findings</h2>') + 4),
    );
    expect(findings).toContain(`${registry.host}/team-a/web:v1@${digests['team-a/web'] as string}`);
    expect(findings).toContain('NO_SIGNATURES');
  });

  it('is counted in /metrics', async () => {
    expect(await metric('signet_image_trust_lost_total', 'code="NO_SIGNATURES"')).toBe(1);
    expect(await metric('signet_reverify_images_total', 'outcome="finding"')).toBeGreaterThanOrEqual(1);
    expect(await metric('signet_reverify_images_total', 'outcome="trusted"')).toBeGreaterThanOrEqual(3);
  });

  it('is delivered to the webhook as Image Trust Lost, once however many rounds find it', async () => {
    await waitUntil('the webhook received it', () => delivered.length > 0);
    const seen = rounds.length;
    await waitUntil('two more rounds ran', () => rounds.length >= seen + 2, 4 * INTERVAL_MS + MARGIN_MS);
    expect(delivered).toEqual([
      {
        path: '/hooks/signet',
        contentType: 'application/json',
        body: expect.objectContaining({
          source: 'signet',
          'detail-type': 'Image Trust Lost',
          detail: expect.objectContaining({
            findingId: finding?.id,
            image: `${registry.host}/team-a/web:v1`,
            digest: digests['team-a/web'],
            namespace: 'production',
            code: 'NO_SIGNATURES',
          }),
        }),
      },
    ]);
  });
});

describe('the ledger', () => {
  it('answers who signed a digest, when and with which rule', async () => {
    const started = Date.now() - 120_000;
    const { code, out } = await signet('ledger', '--digest', digests['team-a/api'] as string, '--json');
    expect(code).toBe(0);
    const { signatures, decisions } = JSON.parse(out) as Json;
    expect(signatures).toEqual([
      expect.objectContaining({
        registry: registry.host,
        repository: 'team-a/api',
        tag: 'v1',
        digest: digests['team-a/api'],
        rule: 'team-a',
        witness: 'release',
        keyId: releaseKeyId(),
        algorithm: 'ECDSA_SHA_256',
        status: 'signed',
        recordedBy: 'serve',
      }),
    ]);
    expect(signatures[0].signedAt).toBeGreaterThan(started);
    expect(signatures[0].signedAt).toBeLessThanOrEqual(Date.now());
    expect(decisions).toEqual([
      expect.objectContaining({
        source: 'admission',
        effect: 'allow',
        namespace: 'production',
        object: 'Pod production/api',
      }),
    ]);
  });
});

function releaseKeyId(): string {
  return keyIdOf(createPublicKey(readFileSync(join(dir, 'keys', 'release.pem'))));
}

describe('when the witness key is revoked', () => {
  beforeAll(async () => {
    await running?.stop();
    await writeFile(
      configFile,
      configYaml(`revocations:
  - keyId: ${releaseKeyId()}
    reason: key leaked
`),
    );
    rounds.length = 0;
    await start();
  });

  it('denies the signatures of that key at admission, with SIGNATURE_REVOKED', async () => {
    const response = await admit(podReview('api-2', `${registry.host}/team-a/api:v1`));
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain(
      `signatures by key ${releaseKeyId()} are revoked (key leaked)`,
    );
    // The ledger keeps the denial with its reason code.
    let denied: DecisionRecord | undefined;
    await waitUntil('the denial is in the ledger', async () => {
      const decisions = await running!.ledger.decisions({ digest: digests['team-a/api'] as string });
      denied = decisions.find((d) => d.effect === 'deny');
      return denied !== undefined;
    });
    expect(denied).toMatchObject({
      object: 'Pod production/api-2',
      images: [{ verdict: 'deny', reason: 'SIGNATURE_REVOKED' }],
    });
    expect(denied?.images[0]?.policies).toEqual([
      { policy: 'production', effect: 'deny', reason: 'SIGNATURE_REVOKED' },
    ]);
  });

  it('turns the image running on them into a finding', async () => {
    let finding: Finding | undefined;
    await waitUntil(
      'the running image becomes a finding',
      async () => (finding = await openFinding(digests['team-a/api'] as string)) !== undefined,
      INTERVAL_MS + MARGIN_MS,
    );
    expect(finding).toMatchObject({
      reference: `${registry.host}/team-a/api:v1`,
      namespace: 'production',
      code: 'SIGNATURE_REVOKED',
    });
    expect(finding?.message).toContain(releaseKeyId());
    await waitUntil('the webhook received it', () =>
      delivered.some((d) => d.body.detail.digest === digests['team-a/api']),
    );
  });
});

describe('when the revocation is narrowed to signatures made after a time', () => {
  beforeAll(async () => {
    // Everything Signet signed so far was signed before this time, as its ledger records.
    const after = new Date(Date.now() - 1000).toISOString();
    await running?.stop();
    await writeFile(
      configFile,
      configYaml(`revocations:
  - keyId: ${releaseKeyId()}
    after: ${after}
    reason: key leaked
`),
    );
    await start();
  });

  it('admits again what the ledger says the key signed before that time', async () => {
    const response = await admit(podReview('api-3', `${registry.host}/team-a/api:v1`));
    expect([response.allowed, response.status?.message]).toEqual([true, undefined]);
  });

  it('resolves the finding of the image running on it', async () => {
    const digest = digests['team-a/api'] as string;
    await waitUntil(
      'the finding is resolved',
      async () => (await openFinding(digest)) === undefined,
      INTERVAL_MS + MARGIN_MS,
    );
    const { out } = await signet('findings', '--all', '--json');
    expect((JSON.parse(out) as Json[]).find((f) => f.digest === digest)).toMatchObject({
      code: 'SIGNATURE_REVOKED',
      resolvedAt: expect.any(String),
    });
  });
});
