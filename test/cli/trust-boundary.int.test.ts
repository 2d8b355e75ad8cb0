/**
 * Who can make the local service act, end to end: Signet's service started with `startService`
 * (an embedded distribution registry on a free loopback port, a second real registry, config in a
 * temp dir), pushes made with skopeo, events and webhook calls made over real sockets.
 *
 * Only authenticated pushes sign, and only on configured hosts the sender speaks for; a flood of
 * unauthenticated large bodies costs no memory; the in-flight cap answers 503 while slow
 * admissions hold every slot; denials name pods that only have a generateName; and the logs never
 * carry a token or the secret path.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, type RunningService } from '../../cli/serve';
import { parseConfig } from '../../lib/config/load';
import { jsonLogger } from '../../lib/core/logger';
import type { SigningReport } from '../../lib/signing/pipeline';
import { fixture } from '../admission/fixtures';
import { startConnectionCounter, type ConnectionCounter } from '../support/connection-counter';
import { startHostileServer, type HostileServer } from '../support/hostile-server';
import { makeImage, skopeoCopy } from '../support/images';
import { freePort } from '../support/ports';
import { rawPost } from '../support/raw-http';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import { MB, startRssSampler } from '../support/rss';

jest.setTimeout(120_000);

const EVENTS_TOKEN = 'events-token-4f1d8b2e6a9c3d7f0b5e';
const WEBHOOK_TOKEN = 'webhook-token-8c2a6e0f4b7d1e9a3c5f';
const SECRET_PATH = 'hooks-secret-3e7a1c9f5b2d8e4a';
const MiB = 1024 * 1024;
const DISTRIBUTION_EVENTS = 'application/vnd.docker.distribution.events.v1+json';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers of several shapes
type Json = any;

let dir: string;
let running: RunningService;
let external: TestRegistry;
let embeddedHost: string;
const lines: string[] = [];
const reports: SigningReport[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-trust-'));
  external = await startTestRegistry();
  embeddedHost = `127.0.0.1:${await freePort()}`;
  const yaml = `
registries:
  - host: ${embeddedHost}
    embedded: true
    insecure: true
  - host: ${external.host}
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
  - name: team-a
    enabled: true
    images: ["${embeddedHost}/team-a/**"]
    attestors:
      - witnesses: [release]
server:
  eventsToken: ${EVENTS_TOKEN}
  bearerToken: ${WEBHOOK_TOKEN}
  secretPath: ${SECRET_PATH}
journal:
  retryBaseSeconds: 0.05
  retryMaxSeconds: 0.2
  maxAttempts: 2
`;
  const config = parseConfig(yaml, { baseDir: dir, source: join(dir, 'signet.yaml') });
  running = await startService(config, {
    logger: jsonLogger('debug', (line) => lines.push(line)),
    port: 0,
    onSigningReport: (report) => reports.push(report),
  });
});

afterAll(async () => {
  await running?.stop();
  await external?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Json; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

async function push(host: string, repository: string, tag: string): Promise<string> {
  const layout = join(dir, `layout-${repository.replace(/\W/g, '-')}-${tag}`);
  await makeImage(layout);
  return skopeoCopy(layout, `${host}/${repository}:${tag}`);
}

/** Layers of the `.sig` manifest of `digest`, 0 when there is none. */
async function signatureLayers(host: string, repository: string, digest: string): Promise<number> {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${digest.replace(':', '-')}.sig`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (res.status === 404) return 0;
  expect(res.status).toBe(200);
  return ((await res.json()) as { layers: unknown[] }).layers.length;
}

async function waitUntil(
  what: string,
  done: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Lets deliveries in flight land, then waits for the journal worker to have nothing due. */
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 500));
  await running.signing.worker.whenIdle();
}

function notification(host: string, repository: string, digest: string, tag = 'v1'): unknown {
  return {
    events: [
      {
        id: `forged-${digest.slice(7, 19)}`,
        action: 'push',
        target: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest,
          repository,
          tag,
          url: `http://${host}/v2/${repository}/manifests/${digest}`,
        },
        request: { host },
      },
    ],
  };
}

const deliver = (body: unknown, headers: Record<string, string>, route = '/events/distribution') =>
  post(`${running.url}${route}`, body, { 'content-type': DISTRIBUTION_EVENTS, ...headers });

describe('when an image is pushed into a covered namespace of the embedded registry', () => {
  it('signs it: the registry delivers its notification with the token Signet generated for it', async () => {
    expect(running.embeddedEventsToken).toMatch(/^[0-9a-f]{64}$/);
    const digest = await push(embeddedHost, 'team-a/app', 'v1');
    await waitUntil(
      'the push is signed',
      async () => (await signatureLayers(embeddedHost, 'team-a/app', digest)) === 1,
    );
  });
});

describe('when push events for an image of a configured registry are forged', () => {
  let digest: string;

  beforeAll(async () => {
    // The external registry sends no notifications: only the forged events below speak of it.
    digest = await push(external.host, 'team-a/forged', 'v1');
  });

  it.each([
    ['no token', {}],
    ['a wrong token', { authorization: 'Bearer 0123456789abcdef0123456789abcdef' }],
    [
      'the events token under Basic',
      { authorization: `Basic ${Buffer.from(`x:${EVENTS_TOKEN}`).toString('base64')}` },
    ],
    ['the webhook bearer token', { authorization: `Bearer ${WEBHOOK_TOKEN}` }],
  ])('answers 401 to an event with %s', async (_what, headers: Record<string, string>) => {
    const {
      status,
      json,
      headers: answer,
    } = await deliver(notification(external.host, 'team-a/forged', digest), headers);
    expect(status).toBe(401);
    expect(json.error.code).toBe('UNAUTHORIZED');
    expect(answer.get('connection')).toBe('close');
  });

  it('ignores the event when the embedded registry token names another configured registry', async () => {
    const { status, json } = await deliver(notification(external.host, 'team-a/forged', digest), {
      authorization: `Bearer ${running.embeddedEventsToken}`,
    });
    expect(status).toBe(200);
    expect(json).toEqual({
      accepted: [],
      ignored: [expect.objectContaining({ reason: 'registry not served by sender embedded registry' })],
    });
  });

  it('signed nothing for any of them', async () => {
    await settle();
    expect(reports.filter((r) => r.digest === digest)).toEqual([]);
    expect(await signatureLayers(external.host, 'team-a/forged', digest)).toBe(0);
  });

  it('signs the image once the configured events token delivers the event (the counter-proof)', async () => {
    const { status, json } = await deliver(notification(external.host, 'team-a/forged', digest), {
      authorization: `Bearer ${EVENTS_TOKEN}`,
    });
    expect(status).toBe(202);
    expect(json.accepted).toHaveLength(1);
    await waitUntil(
      'the push is signed',
      async () => (await signatureLayers(external.host, 'team-a/forged', digest)) === 1,
    );
  });
});

describe('when an authenticated event names a host outside registries[]', () => {
  let plain: ConnectionCounter;
  let named: ConnectionCounter;
  const digest = `sha256:${'e'.repeat(64)}`;

  beforeAll(async () => {
    plain = await startConnectionCounter();
    named = await startConnectionCounter();
  });

  afterAll(async () => {
    await plain?.close();
    await named?.close();
  });

  it('acknowledges each with 200 ignored and never connects to the host', async () => {
    const answers = [
      // A loopback registry nobody configured, by address and by name (an https host: not insecure).
      await deliver(notification(plain.host, 'team-a/app', digest), {
        authorization: `Bearer ${EVENTS_TOKEN}`,
      }),
      await deliver(notification(`localhost:${named.port}`, 'team-a/app', digest), {
        authorization: `Bearer ${EVENTS_TOKEN}`,
      }),
      // The embedded registry's token cannot reach them either.
      await deliver(notification(plain.host, 'team-a/app', digest), {
        authorization: `Bearer ${running.embeddedEventsToken}`,
      }),
      await deliver(
        {
          type: 'PUSH_ARTIFACT',
          occur_at: 1586922308,
          operator: 'admin',
          event_data: {
            resources: [{ digest, tag: 'v1', resource_url: `https://localhost:${named.port}/team-a/app:v1` }],
            repository: {
              name: 'app',
              namespace: 'team-a',
              repo_full_name: 'team-a/app',
              repo_type: 'private',
            },
          },
        },
        { authorization: `Bearer ${EVENTS_TOKEN}` },
        '/events/harbor',
      ),
    ];
    for (const { status, json } of answers) {
      expect(status).toBe(200);
      expect(json.accepted).toEqual([]);
      expect(json.ignored).toEqual([expect.objectContaining({ reason: 'registry not configured' })]);
    }
    await settle();
    expect(plain.connections()).toBe(0);
    expect(named.connections()).toBe(0);
    expect(reports.filter((r) => r.digest === digest)).toEqual([]);
  });
});

describe('when 250 unauthenticated clients each send a 3 MiB body at once', () => {
  it('answers every one 401 and the service holds none of those bodies in memory', async () => {
    const routes: [string, Record<string, string>][] = [
      ['/events/distribution', {}],
      ['/events/harbor', { authorization: 'Bearer not-the-events-token-000000' }],
      [`/${SECRET_PATH}/admission`, {}],
      ['/verify', { authorization: `Bearer ${EVENTS_TOKEN}` }],
      ['/wrong-secret/admission', { authorization: `Bearer ${WEBHOOK_TOKEN}` }],
    ];
    const sampler = startRssSampler(50);
    const answers = await Promise.all(
      Array.from({ length: 250 }, (_, i) => {
        const [path, headers] = routes[i % routes.length]!;
        return rawPost(running.port, path, { bodyBytes: 3 * MiB, chunked: i % 2 === 1, headers });
      }),
    );
    const { idle, peak } = sampler.stop();

    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s !== 401)).toEqual([]);
    expect(answers.every((a) => a.head.includes('connection: close'))).toBe(true);
    // 250 x 3 MiB is 786 MB; the bodies were never read, so the service's memory barely moves.
    expect((peak - idle) / MB).toBeLessThan(100);
    // And it still serves.
    expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
  });
});

describe('when slow admissions hold every slot (server.maxInFlight: 4)', () => {
  let stalling: HostileServer;
  let slow: RunningService;
  let slowDir: string;

  beforeAll(async () => {
    slowDir = await mkdtemp(join(tmpdir(), 'signet-inflight-'));
    // A registry that accepts connections and never answers.
    stalling = await startHostileServer(() => undefined);
    const yaml = `
registries:
  - host: ${stalling.host}
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
policies:
  - name: stalled
    enabled: true
    images: ["${stalling.host}/**"]
    attestors:
      - witnesses: [release]
admission:
  deadlineSeconds: 3
server:
  maxInFlight: 4
`;
    const config = parseConfig(yaml, { baseDir: slowDir, source: join(slowDir, 'signet.yaml') });
    slow = await startService(config, { logger: jsonLogger('silent'), port: 0 });
  });

  afterAll(async () => {
    await slow?.stop();
    await stalling?.close();
    await rm(slowDir, { recursive: true, force: true });
  });

  function podOf(image: string): Json {
    const review = fixture('pod-create');
    review.request.object.spec.containers = [{ name: 'app', image }];
    review.request.object.spec.initContainers = [];
    return review;
  }

  it('answers extra requests 503 with Retry-After, then serves again once the slow ones are denied', async () => {
    const started = Date.now();
    const held = [0, 1, 2, 3].map((i) =>
      post(`${slow.url}/admission`, podOf(`${stalling.host}/team-a/app-${i}:v1`)),
    );
    // Each holds its slot while its tag resolution (one HEAD) hangs.
    await waitUntil('four admissions are at the registry', () => stalling.requests.length >= 4);

    const extra = await Promise.all(
      [0, 1, 2].map(() => post(`${slow.url}/admission`, podOf(`${stalling.host}/team-a/extra:v1`))),
    );
    for (const answer of extra) {
      expect(answer.status).toBe(503);
      expect(answer.json.error.code).toBe('OVERLOADED');
      expect(answer.headers.get('retry-after')).toBe('1');
    }

    const denied = await Promise.all(held);
    for (const answer of denied) {
      expect(answer.status).toBe(200);
      expect(answer.json.response.allowed).toBe(false);
    }
    // Answered by the 3 s deadline, not held until the registry gives up.
    expect(Date.now() - started).toBeLessThan(3_000 + 2_000);

    const again = await post(`${slow.url}/admission`, podOf(`${stalling.host}/team-a/again:v1`));
    expect(again.status).toBe(200);
    expect(again.json.response.allowed).toBe(false);
  });
});

describe('when a Pod has only metadata.generateName (created by a controller)', () => {
  it('names it generateName* in the denial', async () => {
    const review = fixture('pod-create', embeddedHost);
    review.request.name = '';
    delete review.request.object.metadata.name;
    review.request.object.metadata.generateName = 'web-7c9d8f6b5-';
    review.request.object.spec.containers = [{ name: 'web', image: `${embeddedHost}/team-a/unsigned:v1` }];
    review.request.object.spec.initContainers = [];
    const { status, json } = await post(`${running.url}/${SECRET_PATH}/admission`, review, {
      authorization: `Bearer ${WEBHOOK_TOKEN}`,
    });
    expect(status).toBe(200);
    expect(json.response.allowed).toBe(false);
    expect(json.response.status.message).toContain('Pod production/web-7c9d8f6b5-*');
  });
});

describe('what the service logs', () => {
  const secrets = (): string[] => [
    EVENTS_TOKEN,
    WEBHOOK_TOKEN,
    SECRET_PATH,
    running.embeddedEventsToken ?? 'unset',
  ];

  it('never contains a token or the secret path, whatever callers send', async () => {
    const wrong = { authorization: 'Bearer wrong-token-00000000000000' };
    await post(`${running.url}/${SECRET_PATH}/admission`, fixture('pod-create'), wrong);
    await post(`${running.url}/${SECRET_PATH}/admission`, fixture('pod-create'));
    await post(
      `${running.url}/wrong-secret/verify`,
      { image: 'nginx' },
      { authorization: `Bearer ${WEBHOOK_TOKEN}` },
    );
    await post(`${running.url}/${SECRET_PATH}x/verify`, { image: 'nginx' }, wrong);
    await post(
      `${running.url}/${SECRET_PATH}/verify`,
      { image: 'nginx' },
      { authorization: `Basic ${WEBHOOK_TOKEN}` },
    );
    await deliver(notification(embeddedHost, 'team-a/app', `sha256:${'f'.repeat(64)}`), wrong);
    await deliver(notification(embeddedHost, 'team-a/app', `sha256:${'f'.repeat(64)}`), {
      authorization: `Bearer ${WEBHOOK_TOKEN}`,
    });
    // The requests were logged (as refused), and every earlier test's traffic is in `lines` too.
    expect(
      lines.filter((l) => l.includes('unauthorized verification request')).length,
    ).toBeGreaterThanOrEqual(4);
    expect(lines.filter((l) => l.includes('unauthorized event delivery')).length).toBeGreaterThanOrEqual(2);
    const log = lines.join('\n');
    for (const secret of secrets()) expect(log).not.toContain(secret);
  });

  it('does not contain the secret path after a request for /<secretPath>', async () => {
    const from = lines.length;
    await post(`${running.url}/${SECRET_PATH}`, fixture('pod-create'), {
      authorization: `Bearer ${WEBHOOK_TOKEN}`,
    });
    const log = lines.slice(from).join('\n');
    expect(log).toContain('unauthorized verification request');
    expect(log).not.toContain(SECRET_PATH);
  });
});
