/**
 * HttpRegistryClient against the real CNCF distribution registry (2.8), images pushed with skopeo.
 * Faults (5xx, 429, tampered bodies, hangs) come from a proxy in front of the real registry
 * (test/support/fault-proxy.ts).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RegistryAuth } from '../../lib/config/types';
import { RegistryError } from '../../lib/core/errors';
import type { RetryPolicy } from '../../lib/core/retry';
import { HttpRegistryClient, type RegistryClientOptions } from '../../lib/registry/client';
import { EcrAuthorizationTokens } from '../../lib/registry/ecr-auth';
import { MEDIA_TYPES, type ImageIndex, type ImageManifest } from '../../lib/registry/types';
import { AwsFault, startAwsJsonEndpoint } from '../support/aws-endpoint';
import { startFaultProxy as startProxy, type FaultProxy as Proxy } from '../support/fault-proxy';
import { startSameOriginFront, type HostileServer } from '../support/hostile-server';
import { makeImage, makeMultiArchImage, skopeoCopy } from '../support/images';
import { startTestRegistry, type TestRegistry } from '../support/registry';

const FAST_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 1, maxDelayMs: 20 };
const ANONYMOUS: RegistryAuth = { $case: 'anonymous' };
const sha256 = (bytes: Buffer | string): string =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

let dir: string;
let registry: TestRegistry;
let image: string;
let multi: Awaited<ReturnType<typeof makeMultiArchImage>>;

function clientFor(host: string, auth: RegistryAuth = ANONYMOUS, options: RegistryClientOptions = {}) {
  return new HttpRegistryClient({ host, insecure: true, auth }, { retry: FAST_RETRY, ...options });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-client-int-'));
  registry = await startTestRegistry();
  image = await makeImage(join(dir, 'image'), { seed: 'client-int', layers: 2 });
  await skopeoCopy(join(dir, 'image'), `${registry.host}/team-a/app:v1`);
  multi = await makeMultiArchImage(join(dir, 'multi'), { seed: 'client-int-multi' });
  await skopeoCopy(join(dir, 'multi'), `${registry.host}/team-a/multi:v1`);
});

afterAll(async () => {
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('when reading an image pushed with skopeo', () => {
  it('heads the manifest by tag and by digest', async () => {
    const client = clientFor(registry.host);
    const byTag = await client.headManifest('team-a/app', 'v1');
    expect(byTag).toEqual({ digest: image, mediaType: MEDIA_TYPES.ociManifest, size: expect.any(Number) });
    expect(await client.headManifest('team-a/app', image)).toEqual(byTag);
  });

  it('gets the manifest, whose bytes hash to its digest', async () => {
    const client = clientFor(registry.host);
    const fetched = await client.getManifest('team-a/app', 'v1');
    expect(fetched?.digest).toBe(image);
    expect(sha256(fetched!.bytes)).toBe(image);
    expect(fetched?.mediaType).toBe(MEDIA_TYPES.ociManifest);
    expect((fetched?.manifest as ImageManifest).layers).toHaveLength(2);
    expect((await client.getManifest('team-a/app', image))?.bytes).toEqual(fetched?.bytes);
  });

  it('gets the config and layer blobs, digests checked', async () => {
    const client = clientFor(registry.host);
    const manifest = (await client.getManifest('team-a/app', image))!.manifest as ImageManifest;
    const config = JSON.parse((await client.getBlob('team-a/app', manifest.config.digest)).toString());
    expect(config.architecture).toBe('amd64');
    for (const layer of manifest.layers) {
      expect(sha256(await client.getBlob('team-a/app', layer.digest))).toBe(layer.digest);
    }
  });

  it('gets an OCI index and its children', async () => {
    const client = clientFor(registry.host);
    const fetched = await client.getManifest('team-a/multi', 'v1');
    expect(fetched?.digest).toBe(multi.digest);
    expect(fetched?.mediaType).toBe(MEDIA_TYPES.ociIndex);
    const index = fetched!.manifest as ImageIndex;
    expect(index.manifests.map((m) => m.digest)).toEqual(multi.children.map((c) => c.digest));
    expect((await client.headManifest('team-a/multi', 'v1'))?.mediaType).toBe(MEDIA_TYPES.ociIndex);
    for (const child of multi.children) {
      expect((await client.getManifest('team-a/multi', child.digest))?.mediaType).toBe(
        MEDIA_TYPES.ociManifest,
      );
    }
  });
});

describe('when a manifest or blob does not exist', () => {
  const missing = sha256('nothing here');

  it('answers undefined for manifests (unknown tag, digest or repository)', async () => {
    const client = clientFor(registry.host);
    expect(await client.headManifest('team-a/app', 'nope')).toBeUndefined();
    expect(await client.getManifest('team-a/app', 'nope')).toBeUndefined();
    expect(await client.getManifest('team-a/app', missing)).toBeUndefined();
    expect(await client.headManifest('team-z/none', 'v1')).toBeUndefined();
  });

  it('throws NOT_FOUND for a blob', async () => {
    await expect(clientFor(registry.host).getBlob('team-a/app', missing)).toThrowWithCode(
      RegistryError,
      'NOT_FOUND',
    );
  });
});

describe('when writing an OCI manifest with a config and a layer', () => {
  it('round-trips through putManifest and getManifest', async () => {
    const client = clientFor(registry.host);
    const configBytes = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    );
    const layerBytes = Buffer.from('signet round trip layer');
    const config = {
      mediaType: MEDIA_TYPES.ociConfig,
      digest: await client.pushBlob('team-b/rt', configBytes),
      size: configBytes.length,
    };
    const layer = {
      mediaType: 'application/octet-stream',
      digest: await client.pushBlob('team-b/rt', layerBytes),
      size: layerBytes.length,
    };
    expect(config.digest).toBe(sha256(configBytes));
    const bytes = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config, layers: [layer] }),
    );

    const digest = await client.putManifest('team-b/rt', 'v1', bytes, MEDIA_TYPES.ociManifest);

    expect(digest).toBe(sha256(bytes));
    const fetched = await client.getManifest('team-b/rt', 'v1');
    expect(fetched?.bytes.equals(bytes)).toBe(true);
    expect(fetched?.digest).toBe(digest);
    expect(await client.putManifest('team-b/rt', digest, bytes, MEDIA_TYPES.ociManifest)).toBe(digest);
    expect(await client.getBlob('team-b/rt', layer.digest)).toEqual(layerBytes);
  });

  it('refuses to put bytes under a digest they do not have', async () => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    await expect(
      clientFor(registry.host).putManifest('team-b/rt', sha256('other'), bytes, MEDIA_TYPES.ociIndex),
    ).toThrowWithCode(RegistryError, 'DIGEST_MISMATCH');
  });

  it('calls a manifest naming a blob the repository lacks BLOB_UNKNOWN, without retrying', async () => {
    const retries: unknown[] = [];
    const client = clientFor(registry.host, ANONYMOUS, { onRetry: (info) => retries.push(info) });
    const missing = { mediaType: 'application/octet-stream', digest: sha256('never uploaded'), size: 14 };
    const configBytes = Buffer.from('{}');
    const config = {
      mediaType: MEDIA_TYPES.ociConfig,
      digest: await client.pushBlob('team-b/rt', configBytes),
      size: configBytes.length,
    };
    const bytes = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config, layers: [missing] }),
    );
    const put = client.putManifest('team-b/rt', 'orphan', bytes, MEDIA_TYPES.ociManifest);
    await expect(put).toThrowWithCode(RegistryError, 'BLOB_UNKNOWN');
    await expect(put).rejects.toThrow(/MANIFEST_BLOB_UNKNOWN/);
    expect(retries).toHaveLength(0);
  });

  it('refuses a manifest over the size cap', async () => {
    const client = clientFor(registry.host, ANONYMOUS, { maxManifestBytes: 64 });
    await expect(client.getManifest('team-a/app', 'v1')).toThrowWithCode(RegistryError, 'TOO_LARGE');
    await expect(
      client.putManifest('team-b/rt', 'big', Buffer.alloc(65, 0x20), MEDIA_TYPES.ociManifest),
    ).toThrowWithCode(RegistryError, 'TOO_LARGE');
  });
});

describe('when pushing a blob the registry already has', () => {
  it('checks with HEAD and does not upload again', async () => {
    const proxy = await startProxy(registry.host);
    try {
      const client = clientFor(proxy.host);
      const blob = Buffer.from(`idempotent ${Date.now()}`);
      const uploads = (): number =>
        proxy.requests.filter((r) => r.method === 'POST' || r.method === 'PUT').length;

      const first = await client.pushBlob('team-c/blobs', blob);
      expect(uploads()).toBe(2); // POST uploads/ + PUT ?digest=
      const second = await client.pushBlob('team-c/blobs', blob);

      expect(second).toBe(first);
      expect(uploads()).toBe(2);
      expect(proxy.requests.filter((r) => r.method === 'HEAD')).toHaveLength(2);
    } finally {
      await proxy.close();
    }
  });
});

describe('when the registry (distribution 2.8) has no referrers API', () => {
  it('answers undefined', async () => {
    expect(await clientFor(registry.host).getReferrers('team-a/app', image)).toBeUndefined();
    expect(
      await clientFor(registry.host).getReferrers('team-a/app', image, MEDIA_TYPES.sigstoreBundle),
    ).toBeUndefined();
  });

  it('asks once, then takes the registry not to have it until the probe TTL passes', async () => {
    const proxy = await startProxy(registry.host);
    try {
      const client = clientFor(proxy.host, ANONYMOUS, { referrersProbeTtlMs: 300 });
      const asked = () => proxy.requests.filter((r) => r.path.includes('/referrers/')).length;
      expect(await client.getReferrers('team-a/app', image)).toBeUndefined();
      expect(await client.getReferrers('team-b/other', image)).toBeUndefined();
      expect(asked()).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 350));
      expect(await client.getReferrers('team-a/app', image)).toBeUndefined();
      expect(asked()).toBe(2);
    } finally {
      await proxy.close();
    }
  });
});

describe('when the content does not match its digest', () => {
  it('throws DIGEST_MISMATCH for manifests by digest and by tag, and for blobs', async () => {
    const proxy = await startProxy(registry.host);
    proxy.tamper = true;
    try {
      const client = clientFor(proxy.host);
      await expect(client.getManifest('team-a/app', image)).toThrowWithCode(RegistryError, 'DIGEST_MISMATCH');
      // By tag the bytes are the truth, but they contradict Docker-Content-Digest.
      await expect(client.getManifest('team-a/app', 'v1')).toThrowWithCode(RegistryError, 'DIGEST_MISMATCH');
      const manifest = (await clientFor(registry.host).getManifest('team-a/app', image))!
        .manifest as ImageManifest;
      await expect(client.getBlob('team-a/app', manifest.config.digest)).toThrowWithCode(
        RegistryError,
        'DIGEST_MISMATCH',
      );
    } finally {
      await proxy.close();
    }
  });
});

describe('when the registry requires Basic auth', () => {
  let basic: TestRegistry;
  const credentials = { username: 'AWS', password: 'open-sesame' };

  beforeAll(async () => {
    basic = await startTestRegistry({ basicAuth: credentials });
    await skopeoCopy(join(dir, 'image'), `${basic.host}/team-a/app:v1`, { creds: credentials });
  });
  afterAll(() => basic?.stop());

  it('answers the challenge with the credentials', async () => {
    const client = clientFor(basic.host, { $case: 'basic', ...credentials });
    expect((await client.headManifest('team-a/app', 'v1'))?.digest).toBe(image);
    expect((await client.getManifest('team-a/app', 'v1'))?.digest).toBe(image);
  });

  it('throws UNAUTHORIZED for a wrong password', async () => {
    const client = clientFor(basic.host, { $case: 'basic', username: 'AWS', password: 'wrong' });
    await expect(client.getManifest('team-a/app', 'v1')).toThrowWithCode(RegistryError, 'UNAUTHORIZED');
  });

  it('throws UNAUTHORIZED without credentials', async () => {
    await expect(clientFor(basic.host).headManifest('team-a/app', 'v1')).toThrowWithCode(
      RegistryError,
      'UNAUTHORIZED',
    );
  });

  it('follows a blob redirect to storage without sending the credentials there', async () => {
    const front = await startProxy(basic.host);
    const storage = await startProxy(registry.host);
    front.redirectBlobs = `http://${storage.host}`;
    try {
      const client = clientFor(front.host, { $case: 'basic', ...credentials });
      const manifest = (await client.getManifest('team-a/app', image))!.manifest as ImageManifest;
      const config = await client.getBlob('team-a/app', manifest.config.digest);
      expect(sha256(config)).toBe(manifest.config.digest);
      expect(storage.requests).toHaveLength(1);
      expect(storage.requests[0]?.authorization).toBeUndefined();
      expect(front.requests.at(-1)?.authorization).toMatch(/^Basic /);
    } finally {
      await front.close();
      await storage.close();
    }
  });

  describe('and the credentials come from ECR GetAuthorizationToken', () => {
    const ecrAuth: RegistryAuth = { $case: 'ecr', region: 'us-east-1', endpoint: undefined };
    let aws: Awaited<ReturnType<typeof startAwsJsonEndpoint>>;
    let answer: 'token' | 'denied' | 'flaky' = 'token';
    let failures = 0;

    beforeAll(async () => {
      aws = await startAwsJsonEndpoint({
        targetPrefix: 'AmazonEC2ContainerRegistry_V20150921',
        handlers: {
          GetAuthorizationToken: () => {
            if (answer === 'denied')
              throw new AwsFault('UnrecognizedClientException', 'The security token is invalid');
            if (answer === 'flaky' && failures++ === 0)
              throw new AwsFault('ServerException', 'try again', 500);
            return {
              authorizationData: [
                {
                  authorizationToken: Buffer.from(`AWS:${credentials.password}`).toString('base64'),
                  expiresAt: Math.floor(Date.now() / 1000) + 12 * 3600,
                  proxyEndpoint: `https://${basic.host}`,
                },
              ],
            };
          },
        },
      });
    });
    afterAll(() => aws?.close());

    const ecrClient = (options: RegistryClientOptions = {}) =>
      clientFor(
        basic.host,
        { ...ecrAuth, endpoint: aws.url },
        {
          ecrCredentials: new EcrAuthorizationTokens({
            clientConfig: {
              credentials: { accessKeyId: 'AKIDSIGNETTEST', secretAccessKey: 'signet-test-secret' },
            },
          }),
          ...options,
        },
      );
    const tokenCalls = () => aws.calls.filter((c) => c.target.endsWith('GetAuthorizationToken')).length;

    it('uses the decoded token as Basic credentials, calling ECR once', async () => {
      answer = 'token';
      const before = tokenCalls();
      const client = ecrClient();
      expect((await client.headManifest('team-a/app', 'v1'))?.digest).toBe(image);
      expect((await client.getManifest('team-a/app', 'v1'))?.digest).toBe(image);
      await client.pushBlob('team-a/app', Buffer.from('pushed with ECR credentials'));
      expect(tokenCalls() - before).toBe(1);
    });

    it('throws UNAUTHORIZED when ECR rejects the AWS credentials', async () => {
      answer = 'denied';
      await expect(ecrClient().headManifest('team-a/app', 'v1')).toThrowWithCode(
        RegistryError,
        'UNAUTHORIZED',
      );
    });

    it('retries an ECR server error', async () => {
      answer = 'flaky';
      failures = 0;
      const retries: unknown[] = [];
      const client = ecrClient({ onRetry: (info) => retries.push(info.error) });
      expect((await client.headManifest('team-a/app', 'v1'))?.digest).toBe(image);
      expect(retries).toHaveLength(1);
      expect(retries[0]).toBeInstanceOf(RegistryError);
      expect((retries[0] as RegistryError).code).toBe('UNAVAILABLE');
    });
  });
});

describe('when the registry requires bearer tokens', () => {
  let tokens: TestRegistry;
  // The test registry's realm is plain http on another port, which the client refuses; through
  // the front, the realm is on the registry's own origin.
  let front: HostileServer;

  beforeAll(async () => {
    tokens = await startTestRegistry({ tokenAuth: true });
    await skopeoCopy(join(dir, 'image'), `${tokens.host}/team-a/app:v1`);
    front = await startSameOriginFront(tokens.host, tokens.tokenRealm!);
  });
  afterAll(async () => {
    await front?.close();
    await tokens?.stop();
  });

  it('refuses a realm that is plain http on another origin, asking it nothing', async () => {
    const before = tokens.tokenRequests.length;
    const client = clientFor(tokens.host, { $case: 'basic', username: 'signer', password: 'hunter2' });
    await expect(client.headManifest('team-a/app', 'v1')).toThrowWithCode(RegistryError, 'PROTOCOL');
    await expect(client.getManifest('team-a/app', 'v1')).rejects.toThrow(/insecure token realm/);
    expect(tokens.tokenRequests.length).toBe(before);
  });

  it('fetches a pull token once and reuses it', async () => {
    const before = tokens.tokenRequests.length;
    const client = clientFor(front.host);
    const head = await client.headManifest('team-a/app', 'v1');
    const fetched = await client.getManifest('team-a/app', 'v1');
    await client.getBlob('team-a/app', (fetched!.manifest as ImageManifest).config.digest);
    expect(head?.digest).toBe(image);
    const asked = tokens.tokenRequests.slice(before);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toEqual({
      service: 'signet-test-registry',
      scopes: ['repository:team-a/app:pull'],
      username: undefined,
    });
  });

  it('asks for push and pull when writing, once', async () => {
    const before = tokens.tokenRequests.length;
    const client = clientFor(front.host);
    await client.pushBlob('team-a/app', Buffer.from('one'));
    await client.pushBlob('team-a/app', Buffer.from('two'));
    expect(await client.getManifest('team-a/app', 'v1')).toBeDefined();
    expect(tokens.tokenRequests.slice(before).map((r) => r.scopes)).toEqual([
      ['repository:team-a/app:pull,push'],
    ]);
  });

  it('shares tokens among concurrent requests', async () => {
    const before = tokens.tokenRequests.length;
    const client = clientFor(front.host);
    await Promise.all(Array.from({ length: 5 }, () => client.headManifest('team-a/app', 'v1')));
    expect(tokens.tokenRequests.length - before).toBe(1);
  });

  describe('and the token server wants credentials', () => {
    let guarded: TestRegistry;
    let guardedFront: HostileServer;
    const credentials = { username: 'signer', password: 'hunter2' };

    beforeAll(async () => {
      guarded = await startTestRegistry({ tokenAuth: true, basicAuth: credentials });
      guardedFront = await startSameOriginFront(guarded.host, guarded.tokenRealm!);
    });
    afterAll(async () => {
      await guardedFront?.close();
      await guarded?.stop();
    });

    it('sends them with the token request', async () => {
      const client = clientFor(guardedFront.host, { $case: 'basic', ...credentials });
      expect(await client.headManifest('team-a/app', 'v1')).toBeUndefined();
      expect(guarded.tokenRequests.at(-1)?.username).toBe('signer');
    });

    it('throws UNAUTHORIZED when the token server refuses them', async () => {
      const client = clientFor(guardedFront.host, { $case: 'basic', username: 'signer', password: 'wrong' });
      await expect(client.headManifest('team-a/app', 'v1')).toThrowWithCode(RegistryError, 'UNAUTHORIZED');
    });
  });
});

describe('when a registry is not marked insecure', () => {
  it('speaks https only, and fails rather than falling back to http', async () => {
    const proxy = await startProxy(registry.host);
    try {
      const client = new HttpRegistryClient(
        { host: proxy.host, insecure: false, auth: ANONYMOUS },
        { retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } },
      );
      expect(client.baseUrl).toBe(`https://${proxy.host}`);
      const error = await client.headManifest('team-a/app', 'v1').then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(RegistryError);
      expect(['UNREACHABLE', 'PROTOCOL']).toContain((error as RegistryError).code);
      expect(proxy.requests).toHaveLength(0);
    } finally {
      await proxy.close();
    }
  });
});

describe('when the registry throttles or fails', () => {
  let proxy: Proxy;
  let retries: { attempt: number; delayMs: number; error: unknown }[];
  let client: HttpRegistryClient;

  beforeEach(async () => {
    proxy = await startProxy(registry.host);
    retries = [];
    client = clientFor(proxy.host, ANONYMOUS, { onRetry: (info) => retries.push(info) });
  });
  afterEach(() => proxy.close());

  it('retries 503s and succeeds', async () => {
    proxy.fail(2, 503);
    expect((await client.getManifest('team-a/app', 'v1'))?.digest).toBe(image);
    expect(retries.map((r) => (r.error as RegistryError).code)).toEqual(['UNAVAILABLE', 'UNAVAILABLE']);
    expect(proxy.requests).toHaveLength(3);
  });

  it('retries 429 with Retry-After, waiting as asked up to the policy maximum', async () => {
    proxy.fail(
      1,
      429,
      { 'retry-after': '1' },
      { errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] },
    );
    expect((await client.getManifest('team-a/app', 'v1'))?.digest).toBe(image);
    expect(retries).toHaveLength(1);
    const error = retries[0]!.error as RegistryError;
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.retryAfterMs).toBe(1000);
    expect(error.message).toContain('TOOMANYREQUESTS: slow down');
    expect(retries[0]!.delayMs).toBe(FAST_RETRY.maxDelayMs);
  });

  it('gives up after the policy attempts with the last error', async () => {
    proxy.fail(100, 503);
    await expect(client.getBlob('team-a/app', image)).toThrowWithCode(RegistryError, 'UNAVAILABLE');
    expect(proxy.requests).toHaveLength(FAST_RETRY.attempts);
    expect(retries).toHaveLength(FAST_RETRY.attempts - 1);
  });

  it('does not retry what another attempt cannot fix', async () => {
    proxy.fail(
      1,
      403,
      {},
      { errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] },
    );
    await expect(client.getManifest('team-a/app', 'v1')).toThrowWithCode(RegistryError, 'DENIED');
    proxy.fail(1, 405);
    await expect(client.getManifest('team-a/app', 'v1')).toThrowWithCode(RegistryError, 'NOT_ALLOWED');
    expect(retries).toHaveLength(0);
  });

  it('times out a request that never answers, as UNREACHABLE', async () => {
    proxy.hang = true;
    const impatient = clientFor(proxy.host, ANONYMOUS, {
      timeoutMs: 200,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
      onRetry: (info) => retries.push(info),
    });
    await expect(impatient.headManifest('team-a/app', 'v1')).toThrowWithCode(RegistryError, 'UNREACHABLE');
    expect(retries).toHaveLength(1);
  });

  it('calls a refused connection UNREACHABLE', async () => {
    await proxy.close();
    await expect(client.headManifest('team-a/app', 'v1')).toThrowWithCode(RegistryError, 'UNREACHABLE');
    expect(retries).toHaveLength(FAST_RETRY.attempts - 1);
  });
});
