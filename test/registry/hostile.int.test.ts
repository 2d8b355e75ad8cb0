/**
 * HttpRegistryClient against hostile registries: node:http(s) servers on loopback, started here,
 * that send endless bodies, lie about lengths, stall, throttle forever, name token realms they
 * should not, and redirect to cloud metadata, loopback and plain http.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { RegistryAuth } from '../../lib/config/types';
import { RegistryError } from '../../lib/core/errors';
import type { RetryPolicy } from '../../lib/core/retry';
import { ByteBudget } from '../../lib/registry/budget';
import { HttpRegistryClient, type HostLookup, type RegistryClientOptions } from '../../lib/registry/client';
import { DistributionInventory } from '../../lib/registry/catalog';
import { systemLookup } from '../../lib/registry/http';
import { MEDIA_TYPES } from '../../lib/registry/types';
import {
  makeLoopbackCertificate,
  startHostileServer,
  streamEndlessly,
  type HostileServer,
  type LoopbackCertificate,
} from '../support/hostile-server';
import type { TlsChildSpec } from './tls-child';

const REPO = 'team-a/app';
const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = Buffer.alloc(16 * KiB, 0x61);
const FAST_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 1, maxDelayMs: 20 };
const ANONYMOUS: RegistryAuth = { $case: 'anonymous' };
const CREDENTIALS = { username: 'signer', password: 'hunter2' };
const BASIC: RegistryAuth = { $case: 'basic', ...CREDENTIALS };
const BASIC_HEADER = `Basic ${Buffer.from('signer:hunter2').toString('base64')}`;
const ROOT = resolve(__dirname, '..', '..');
const CHILD = join(__dirname, 'tls-child.ts');

const sha256 = (bytes: Buffer | string): string =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: sha256('{}'), size: 2 },
    layers: [],
  }),
);

function clientFor(
  host: string,
  auth: RegistryAuth = ANONYMOUS,
  options: RegistryClientOptions = {},
): HttpRegistryClient {
  return new HttpRegistryClient({ host, insecure: true, auth }, { retry: FAST_RETRY, ...options });
}

/** A resolver that says `localhost` is a routable address: the registry then counts as remote. */
const remoteLocalhost =
  (extra: Readonly<Record<string, string>> = {}): HostLookup =>
  async (hostname) => {
    const answers: Record<string, string> = { localhost: '192.0.2.10', ...extra };
    const address = answers[hostname];
    return address !== undefined ? [{ address, family: 4 }] : systemLookup(hostname);
  };

/** `127.0.0.1:<port>` as `localhost:<port>`: the same server, reached by a name. */
const byName = (server: HostileServer): string => server.host.replace('127.0.0.1', 'localhost');

function answerManifest(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': MEDIA_TYPES.ociManifest,
    'content-length': String(MANIFEST.length),
    'docker-content-digest': sha256(MANIFEST),
  });
  res.end(MANIFEST);
}

function answerToken(res: ServerResponse, body: unknown = { token: 'good-token', expires_in: 300 }): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const redirect = (res: ServerResponse, location: string): void => {
  res.writeHead(307, { location });
  res.end();
};

/** The rejection of `promise` (which must reject), and how long it took from now. */
async function rejectionOf(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => ({ error, ms: Date.now() - started }),
  );
}

const codeOf = (error: unknown): string | undefined =>
  error instanceof RegistryError ? error.code : undefined;

const servers: HostileServer[] = [];
async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  cert?: LoopbackCertificate,
) {
  const server = await startHostileServer(handler, cert ? { tls: cert } : {});
  servers.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

let dir: string;
let cert: LoopbackCertificate;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-hostile-'));
  cert = await makeLoopbackCertificate(dir);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Runs one read in a child process that trusts the test certificate (see tls-child.ts). */
async function readTrusting(
  spec: TlsChildSpec,
): Promise<{ value?: unknown; error?: { code?: string; message: string } }> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['-r', '@swc-node/register', CHILD, JSON.stringify(spec)],
    { cwd: ROOT, env: { ...process.env, NODE_EXTRA_CA_CERTS: cert.certPath } },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
    value?: unknown;
    error?: { code?: string; message: string };
  };
}

describe('when a blob body never ends', () => {
  it('stops at the first chunk past the descriptor size, so the server could send little', async () => {
    let sent: Promise<number> | undefined;
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      sent = streamEndlessly(res, CHUNK);
    });
    const client = clientFor(server.host);

    await expect(client.getBlob(REPO, sha256('small'), { size: 64 * KiB })).toThrowWithCode(
      RegistryError,
      'TOO_LARGE',
    );

    expect(await sent).toBeLessThan(1 * MiB);
    expect(server.requests).toHaveLength(1);
  });

  it('stops at the client blob limit when no size is given', async () => {
    let sent: Promise<number> | undefined;
    const server = await serve((_req, res) => {
      res.writeHead(200);
      sent = streamEndlessly(res, CHUNK);
    });
    const client = clientFor(server.host, ANONYMOUS, { maxBlobBytes: 128 * KiB });

    await expect(client.getBlob(REPO, sha256('small'))).toThrowWithCode(RegistryError, 'TOO_LARGE');

    expect(await sent).toBeLessThan(1 * MiB);
  });
});

describe('when Content-Length contradicts the descriptor size', () => {
  it('refuses a larger Content-Length before reading the body', async () => {
    let sent: Promise<number> | undefined;
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': String(4 * MiB) });
      sent = streamEndlessly(res, CHUNK);
    });

    await expect(clientFor(server.host).getBlob(REPO, sha256('small'), { size: 1 * KiB })).toThrowWithCode(
      RegistryError,
      'TOO_LARGE',
    );

    expect(await sent).toBeLessThan(1 * MiB);
  });

  it('refuses a smaller Content-Length, and a chunked body that ends short', async () => {
    const blob = Buffer.from('twenty bytes of blob');
    const server = await serve((req, res) => {
      if (req.url?.endsWith('short-declared')) {
        res.writeHead(200, { 'content-length': '10' });
        res.end(blob.subarray(0, 10));
      } else {
        res.writeHead(200);
        res.write(blob.subarray(0, 10));
        res.end();
      }
    });
    const client = clientFor(server.host);
    // The path tells the server which lie to tell; the digest is the blob's either way.
    const get = (how: string): Promise<Buffer> =>
      client.getBlob(`${REPO}/${how}`, sha256(blob), { size: blob.length });

    await expect(get('short-declared')).toThrowWithCode(RegistryError, 'PROTOCOL');
    await expect(get('short-chunked')).toThrowWithCode(RegistryError, 'PROTOCOL');
  });

  it('reads a body of exactly the descriptor size', async () => {
    const blob = Buffer.from('{"architecture":"amd64"}');
    const server = await serve((_req, res) => {
      res.writeHead(200);
      res.end(blob);
    });

    const read = await clientFor(server.host).getBlob(REPO, sha256(blob), { size: blob.length });

    expect(read.equals(blob)).toBe(true);
  });

  it('refuses a descriptor size over the client blob limit without asking', async () => {
    const server = await serve((_req, res) => res.end());
    const client = clientFor(server.host, ANONYMOUS, { maxBlobBytes: 1 * MiB });

    await expect(client.getBlob(REPO, sha256('x'), { size: 2 * MiB })).toThrowWithCode(
      RegistryError,
      'TOO_LARGE',
    );
    expect(server.requests).toHaveLength(0);
  });
});

describe('when reads share a byte budget', () => {
  const blobs = [1, 2, 3].map((n) => Buffer.alloc(40 * KiB, n));
  const blobServer = (): Promise<HostileServer> =>
    serve((req, res) => {
      const blob = blobs.find((b) => req.url?.endsWith(sha256(b)));
      res.writeHead(blob ? 200 : 404);
      res.end(blob);
    });

  it('fails the read that passes it with BUDGET_EXCEEDED, not retried', async () => {
    const server = await blobServer();
    const client = clientFor(server.host);
    const budget = new ByteBudget(100 * KiB);
    const [first, second, third] = blobs.map((b) => sha256(b));

    await client.getBlob(REPO, first!, { budget });
    await client.getBlob(REPO, second!, { budget });
    const { error } = await rejectionOf(client.getBlob(REPO, third!, { budget }));

    expect(codeOf(error)).toBe('BUDGET_EXCEEDED');
    expect((error as RegistryError).registry).toBe(server.host);
    expect(budget.used).toBeGreaterThan(100 * KiB);
    expect(server.requests).toHaveLength(3);
  });

  it('names the registry whose read passed it when registries share it', async () => {
    const [a, b] = [await blobServer(), await blobServer()];
    const budget = new ByteBudget(60 * KiB);

    await clientFor(a.host).getBlob(REPO, sha256(blobs[0]!), { budget });
    const { error } = await rejectionOf(clientFor(b.host).getBlob(REPO, sha256(blobs[1]!), { budget }));

    expect(codeOf(error)).toBe('BUDGET_EXCEEDED');
    expect((error as RegistryError).registry).toBe(b.host);
  });

  it('charges error bodies, so endless 503 answers end the retries', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(503);
      void streamEndlessly(res, CHUNK);
    });
    const client = clientFor(server.host, ANONYMOUS, {
      retry: { attempts: 10, baseDelayMs: 1, maxDelayMs: 1 },
    });

    await expect(client.getManifest(REPO, 'v1', { budget: new ByteBudget(100 * KiB) })).toThrowWithCode(
      RegistryError,
      'BUDGET_EXCEEDED',
    );
    expect(server.requests.length).toBeLessThan(10);
  });

  it('charges token answers', async () => {
    const server = await serve((req, res) => {
      if (req.url?.startsWith('/token'))
        return answerToken(res, { token: 'good-token', padding: 'x'.repeat(60 * KiB) });
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token"` });
      res.end();
    });

    await expect(
      clientFor(server.host).getManifest(REPO, 'v1', { budget: new ByteBudget(16 * KiB) }),
    ).toThrowWithCode(RegistryError, 'BUDGET_EXCEEDED');
  });
});

describe('when the caller aborts', () => {
  const patient: RegistryClientOptions = { timeoutMs: 30_000 };
  const abortAfter = (ms: number): AbortSignal => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), ms);
    return controller.signal;
  };

  it('ends a GET the server never answers, promptly, as ABORTED', async () => {
    const server = await serve(() => undefined);
    const client = clientFor(server.host, ANONYMOUS, patient);

    const { error, ms } = await rejectionOf(client.getManifest(REPO, 'v1', { signal: abortAfter(200) }));

    expect(codeOf(error)).toBe('ABORTED');
    expect((error as Error).message).toContain(`GET manifest ${REPO}:v1`);
    expect(ms).toBeLessThan(2_000);
  });

  it('ends a HEAD the server never answers as ABORTED', async () => {
    const server = await serve(() => undefined);
    const client = clientFor(server.host, ANONYMOUS, patient);

    const { error, ms } = await rejectionOf(client.headManifest(REPO, 'v1', { signal: abortAfter(200) }));

    expect(codeOf(error)).toBe('ABORTED');
    expect(ms).toBeLessThan(2_000);
  });

  it('ends a body read in progress as ABORTED', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200);
      void streamEndlessly(res, CHUNK, 20);
    });
    const client = clientFor(server.host, ANONYMOUS, { ...patient, maxBlobBytes: 1024 * MiB });

    const { error } = await rejectionOf(client.getBlob(REPO, sha256('x'), { signal: abortAfter(200) }));

    expect(codeOf(error)).toBe('ABORTED');
  });

  it('ends a Retry-After wait as ABORTED, without another request', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(429, { 'retry-after': '30' });
      res.end();
    });
    const client = clientFor(server.host, ANONYMOUS, {
      ...patient,
      retry: { attempts: 5, baseDelayMs: 1, maxDelayMs: 60_000 },
    });

    const { error, ms } = await rejectionOf(client.getManifest(REPO, 'v1', { signal: abortAfter(200) }));

    expect(codeOf(error)).toBe('ABORTED');
    expect(ms).toBeLessThan(2_000);
    expect(server.requests).toHaveLength(1);
  });

  it('sends nothing when the signal is already aborted', async () => {
    const server = await serve((_req, res) => answerManifest(res));

    await expect(
      clientFor(server.host).getManifest(REPO, 'v1', { signal: AbortSignal.abort() }),
    ).toThrowWithCode(RegistryError, 'ABORTED');
    expect(server.requests).toHaveLength(0);
  });
});

describe('when a Bearer challenge names its realm', () => {
  /** A registry that wants `Bearer good-token` and names `realm()`; it also serves `/token` itself. */
  const bearerRegistry = (realm: (req: IncomingMessage) => string): Promise<HostileServer> =>
    serve((req, res) => {
      if (req.url?.startsWith('/token')) return answerToken(res);
      if (req.headers.authorization === 'Bearer good-token') return answerManifest(res);
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm(req)}",service="hostile"` });
      res.end();
    });

  it('refuses a plain-http realm on another origin, and sends it no credentials', async () => {
    const tokens = await serve((_req, res) => answerToken(res));
    const registry = await bearerRegistry(() => `${tokens.url}/token`);

    const { error } = await rejectionOf(clientFor(registry.host, BASIC).getManifest(REPO, 'v1'));

    expect(codeOf(error)).toBe('PROTOCOL');
    expect((error as Error).message).toContain(`insecure token realm ${tokens.url}`);
    expect(tokens.requests).toHaveLength(0);
  });

  it("uses a realm on the registry's own http origin, with the credentials", async () => {
    const registry = await bearerRegistry((req) => `http://${req.headers.host}/token`);

    const fetched = await clientFor(registry.host, BASIC).getManifest(REPO, 'v1');

    expect(fetched?.digest).toBe(sha256(MANIFEST));
    const token = registry.requests.find((r) => r.path.startsWith('/token'));
    expect(token?.authorization).toBe(BASIC_HEADER);
    expect(registry.requests.at(-1)?.authorization).toBe('Bearer good-token');
  });

  it('uses an https realm on another origin, with the credentials', async () => {
    const tokens = await serve((_req, res) => answerToken(res), cert);
    const registry = await bearerRegistry(() => `${tokens.url}/token`);

    const answer = await readTrusting({
      registry: { host: registry.host, insecure: true, auth: BASIC },
      call: 'getManifest',
      repository: REPO,
      reference: 'v1',
    });

    expect(answer).toEqual({ value: sha256(MANIFEST) });
    expect(tokens.requests).toHaveLength(1);
    expect(tokens.requests[0]?.authorization).toBe(BASIC_HEADER);
  });

  it('refuses an https realm on a link-local address', async () => {
    const registry = await bearerRegistry(() => 'https://169.254.169.254/token');

    await expect(clientFor(registry.host, BASIC).getManifest(REPO, 'v1')).toThrowWithCode(
      RegistryError,
      'PROTOCOL',
    );
  });

  it('refuses an https realm on loopback when the registry is not on loopback', async () => {
    const tokens = await serve((_req, res) => answerToken(res), cert);
    const registry = await bearerRegistry(() => `${tokens.url}/token`);
    const client = clientFor(byName(registry), BASIC, { lookup: remoteLocalhost() });

    await expect(client.getManifest(REPO, 'v1')).toThrowWithCode(RegistryError, 'PROTOCOL');
    expect(tokens.requests).toHaveLength(0);
  });

  it('does not answer a challenge from the storage a redirect led to', async () => {
    const storage = await serve((req, res) => {
      if (req.url?.startsWith('/token')) return answerToken(res);
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token"` });
      res.end();
    });
    const registry = await serve((req, res) => redirect(res, `${storage.url}${req.url ?? ''}`));

    await expect(clientFor(registry.host, BASIC).getBlob(REPO, sha256('x'))).toThrowWithCode(
      RegistryError,
      'UNAUTHORIZED',
    );
    expect(storage.requests.map((r) => r.path)).not.toContainEqual(expect.stringMatching(/^\/token/));
    expect(storage.requests.every((r) => r.authorization === undefined)).toBe(true);
  });
});

describe('when a registry redirects', () => {
  const blob = Buffer.from('stored elsewhere');
  const storageServer = (): Promise<HostileServer> =>
    serve((_req, res) => {
      res.writeHead(200);
      res.end(blob);
    });
  const redirectingTo = (target: (req: IncomingMessage) => string, cert?: LoopbackCertificate) =>
    serve((req, res) => redirect(res, target(req)), cert);

  it('refuses cloud metadata (169.254.169.254), naming its origin but not the signed query', async () => {
    const registry = await redirectingTo(
      () => 'http://169.254.169.254/latest/meta-data/iam?X-Amz-Signature=s3cr3t',
    );

    const { error } = await rejectionOf(clientFor(registry.host).getBlob(REPO, sha256(blob)));

    expect(codeOf(error)).toBe('PROTOCOL');
    expect((error as Error).message).toContain('http://169.254.169.254');
    expect((error as Error).message).not.toContain('s3cr3t');
  });

  it('refuses link-local addresses in IPv4-mapped IPv6 and IPv6 forms', async () => {
    for (const target of [
      'http://[::ffff:169.254.169.254]/x',
      'http://[::ffff:a9fe:a9fe]/x',
      'http://[fe80::1]/x',
    ]) {
      const registry = await redirectingTo(() => target);
      await expect(clientFor(registry.host).getBlob(REPO, sha256(blob))).toThrowWithCode(
        RegistryError,
        'PROTOCOL',
      );
    }
  });

  it('refuses a name that resolves to a link-local address', async () => {
    const asked: string[] = [];
    const lookup: HostLookup = async (hostname) => {
      asked.push(hostname);
      const metadata: LookupAddress[] = [
        { address: '203.0.113.7', family: 4 },
        { address: '169.254.169.254', family: 4 },
      ];
      return hostname === 'storage.hostile.test' ? metadata : systemLookup(hostname);
    };
    const registry = await redirectingTo(() => 'http://storage.hostile.test/blob');

    await expect(clientFor(registry.host, ANONYMOUS, { lookup }).getBlob(REPO, sha256(blob))).toThrowWithCode(
      RegistryError,
      'PROTOCOL',
    );
    expect(asked).toContain('storage.hostile.test');
  });

  it('follows a redirect to loopback from a loopback registry', async () => {
    const storage = await storageServer();
    const registry = await redirectingTo((req) => `${storage.url}${req.url ?? ''}`);

    expect((await clientFor(registry.host).getBlob(REPO, sha256(blob))).equals(blob)).toBe(true);
    expect(storage.requests).toHaveLength(1);
  });

  it('refuses loopback, by address or by name, when the registry is not on loopback', async () => {
    const storage = await storageServer();
    for (const target of [storage.url, `http://${byName(storage)}`, 'http://[::1]:1', 'http://0.0.0.0:1']) {
      const registry = await redirectingTo((req) => `${target}${req.url ?? ''}`);
      const client = clientFor(byName(registry), ANONYMOUS, { lookup: remoteLocalhost() });
      await expect(client.getBlob(REPO, sha256(blob))).toThrowWithCode(RegistryError, 'PROTOCOL');
    }
    expect(storage.requests).toHaveLength(0);
  });

  it('refuses to go from https to http', async () => {
    const storage = await storageServer();
    const registry = await redirectingTo((req) => `${storage.url}${req.url ?? ''}`, cert);

    const answer = await readTrusting({
      registry: { host: registry.host, insecure: false, auth: ANONYMOUS },
      call: 'getBlob',
      repository: REPO,
      reference: sha256(blob),
    });

    expect(answer.error?.code).toBe('PROTOCOL');
    expect(answer.error?.message).toContain(`redirect to ${storage.url} refused`);
    expect(registry.requests).toHaveLength(1);
    expect(storage.requests).toHaveLength(0);
  });

  it('sends Authorization to the registry only, never to the storage', async () => {
    const storage = await storageServer();
    const registry = await serve((req, res) => {
      if (req.headers.authorization === BASIC_HEADER) return redirect(res, `${storage.url}${req.url ?? ''}`);
      res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"' });
      res.end();
    });

    expect((await clientFor(registry.host, BASIC).getBlob(REPO, sha256(blob))).equals(blob)).toBe(true);
    expect(registry.requests.at(-1)?.authorization).toBe(BASIC_HEADER);
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]?.authorization).toBeUndefined();
  });

  it('checks a referrers Link to the next page like a redirect', async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(200, {
        'content-type': MEDIA_TYPES.ociIndex,
        link: '<http://169.254.169.254/v2/next?token=s3cr3t>; rel="next"',
      });
      res.end(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] }));
    });

    const { error } = await rejectionOf(clientFor(registry.host).getReferrers(REPO, sha256('subject')));

    expect(codeOf(error)).toBe('PROTOCOL');
    expect((error as Error).message).not.toContain('s3cr3t');
  });
});

describe('when HEADs repeat', () => {
  it('reuses one keep-alive connection', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, {
        'content-type': MEDIA_TYPES.ociManifest,
        'content-length': String(MANIFEST.length),
        'docker-content-digest': sha256(MANIFEST),
      });
      res.end();
    });
    const client = clientFor(server.host);

    for (let i = 0; i < 5; i++) {
      expect(await client.headManifest(REPO, 'v1')).toEqual({
        digest: sha256(MANIFEST),
        mediaType: MEDIA_TYPES.ociManifest,
        size: MANIFEST.length,
      });
    }

    expect(server.requests.map((r) => r.method)).toEqual(Array(5).fill('HEAD'));
    expect(server.connections).toBe(1);
  });
});

describe('a hostile registry answering the listings a backfill reads', () => {
  const catalogPage = (res: ServerResponse, repositories: string[], link?: string): void => {
    res.writeHead(200, { 'content-type': 'application/json', ...(link ? { link } : {}) });
    res.end(JSON.stringify({ repositories }));
  };

  it('follows a Link to another origin without the credentials, and lists what is there', async () => {
    const elsewhere = await serve((_req, res) => catalogPage(res, ['team-b/app']));
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== BASIC_HEADER) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"' });
        res.end();
      } else {
        catalogPage(res, ['team-a/app'], `<${elsewhere.url}/v2/_catalog?last=x>; rel="next"`);
      }
    });
    const inventory = new DistributionInventory(clientFor(registry.host, BASIC));

    const listed: string[] = [];
    for await (const repository of inventory.repositories()) listed.push(repository);

    expect(listed).toEqual(['team-a/app', 'team-b/app']);
    expect(elsewhere.requests.map((r) => r.authorization)).toEqual([undefined]);
  });

  it('refuses a Link that leaves https for plain http', async () => {
    const plain = await serve((_req, res) => catalogPage(res, ['x/y']));
    const registry = await serve(
      (_req, res) => catalogPage(res, ['team-a/app'], `<${plain.url}/v2/_catalog?last=a>; rel="next"`),
      cert,
    );
    const answer = await readTrusting({
      registry: { host: registry.host, insecure: false, auth: BASIC },
      call: 'listPage',
      repository: REPO,
      reference: `/v2/_catalog?n=100`,
    });

    expect(answer.error?.code).toBe('PROTOCOL');
    expect(answer.error?.message).toContain('leaves https for http');
    expect(plain.requests).toHaveLength(0);
  });

  it('stops an endless catalog body at the manifest limit', async () => {
    let sent: Promise<number> | undefined;
    const registry = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      sent = streamEndlessly(res, CHUNK);
    });
    const client = clientFor(registry.host, ANONYMOUS, { maxManifestBytes: 256 * KiB });

    const { error } = await rejectionOf(client.listPage('/v2/_catalog?n=100', undefined));

    expect(codeOf(error)).toBe('TOO_LARGE');
    expect(await sent).toBeLessThan(4 * MiB);
  });

  it('refuses a tags answer declaring more than the limit before reading it', async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(64 * MiB) });
      res.write('{"tags":[');
    });
    const client = clientFor(registry.host, ANONYMOUS, { maxManifestBytes: 256 * KiB });

    const { error } = await rejectionOf(client.listPage(`/v2/${REPO}/tags/list?n=100`, REPO));

    expect(codeOf(error)).toBe('TOO_LARGE');
  });
});
