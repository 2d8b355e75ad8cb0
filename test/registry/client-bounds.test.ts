/**
 * The registry client's bounds without a network: address kinds, the redirect and realm checks
 * (with a resolver passed in), byte budgets, and the reads refused before any request.
 */
import type { LookupAddress } from 'node:dns';
import { InputError, RegistryError } from '../../lib/core/errors';
import { withRetry } from '../../lib/core/retry';
import { ByteBudget } from '../../lib/registry/budget';
import { HttpRegistryClient } from '../../lib/registry/client';
import { RegistryHttp, addressKind, type HostLookup } from '../../lib/registry/http';

const DIGEST = `sha256:${'a'.repeat(64)}`;

/** A resolver from a fixed table; unknown names fail as getaddrinfo would. */
const table =
  (entries: Readonly<Record<string, readonly string[]>>): HostLookup =>
  async (hostname) => {
    const addresses = entries[hostname];
    if (addresses === undefined)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

const httpFor = (baseUrl: string, lookup: HostLookup = table({})): RegistryHttp =>
  new RegistryHttp({ host: new URL(baseUrl).host, baseUrl, timeoutMs: 1_000, userAgent: 'test', lookup });

const check = (http: RegistryHttp, target: string, from: string = http.origin): Promise<void> =>
  http.checkTarget(new URL(target), new URL(from), 'redirect', 'GET blob', {});

describe('addressKind', () => {
  it.each([
    ['169.254.169.254', 'link-local'],
    ['169.254.0.1', 'link-local'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['[::ffff:a9fe:a9fe]', 'link-local'],
    ['fe80::1', 'link-local'],
    ['[febf::1]', 'link-local'],
    ['fd00:ec2::254', 'link-local'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0.0.0.0', 'loopback'],
    ['::', 'loopback'],
    ['192.0.2.10', 'routable'],
    ['169.255.0.1', 'routable'],
    ['fec0::1', 'routable'],
    ['2001:db8::1', 'routable'],
  ])('calls %s %s', (address, kind) => {
    expect(addressKind(address)).toBe(kind);
  });

  it('leaves names to the resolver', () => {
    expect(addressKind('localhost')).toBeUndefined();
    expect(addressKind('registry.example.com')).toBeUndefined();
  });
});

describe('when a redirect is checked', () => {
  const remote = httpFor('https://registry.example.com', table({ 'cdn.example.net': ['198.51.100.4'] }));

  it("lets the registry's own origin through without asking the resolver", async () => {
    await expect(
      check(httpFor('https://registry.example.com'), 'https://registry.example.com/x'),
    ).resolves.toBeUndefined();
  });

  it('lets https storage on a routable address through', async () => {
    await expect(check(remote, 'https://cdn.example.net/blob?sig=1')).resolves.toBeUndefined();
  });

  it('refuses to step down from https to http, naming the origin only', async () => {
    const error = await check(remote, 'http://cdn.example.net/blob?sig=secret').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe('PROTOCOL');
    expect((error as RegistryError).message).toContain('http://cdn.example.net');
    expect((error as RegistryError).message).not.toContain('secret');
  });

  it('allows http to https', async () => {
    await expect(
      check(remote, 'https://cdn.example.net/blob', 'http://registry.example.com'),
    ).resolves.toBeUndefined();
  });

  it('refuses schemes other than http and https', async () => {
    await expect(check(remote, 'file:///etc/passwd')).toThrowWithCode(RegistryError, 'PROTOCOL');
    await expect(check(remote, 'ftp://cdn.example.net/x')).toThrowWithCode(RegistryError, 'PROTOCOL');
  });

  it('refuses a name with any link-local address among its addresses', async () => {
    const http = httpFor(
      'https://registry.example.com',
      table({ 'evil.example': ['198.51.100.4', 'fe80::9'] }),
    );
    await expect(check(http, 'https://evil.example/x')).toThrowWithCode(RegistryError, 'PROTOCOL');
  });

  it('refuses loopback targets from a registry that is not on loopback', async () => {
    const http = httpFor(
      'https://registry.example.com',
      table({ 'registry.example.com': ['192.0.2.1'], 'me.example': ['127.0.0.1'] }),
    );
    for (const target of [
      'https://127.0.0.1/x',
      'https://[::1]/x',
      'https://localhost/x',
      'https://a.localhost/x',
      'https://me.example/x',
    ]) {
      await expect(check(http, target)).toThrowWithCode(RegistryError, 'PROTOCOL');
    }
  });

  it('lets loopback targets through from a registry on loopback, by address or by name', async () => {
    await expect(check(httpFor('http://127.0.0.1:5000'), 'http://127.0.0.1:9000/x')).resolves.toBeUndefined();
    const named = httpFor('http://registry.local:5000', table({ 'registry.local': ['127.0.0.1', '::1'] }));
    await expect(check(named, 'http://localhost:9000/x')).resolves.toBeUndefined();
  });

  it('still refuses link-local targets from a registry on loopback', async () => {
    await expect(check(httpFor('http://127.0.0.1:5000'), 'http://169.254.169.254/x')).toThrowWithCode(
      RegistryError,
      'PROTOCOL',
    );
  });

  it('calls an unresolvable name UNREACHABLE', async () => {
    await expect(check(remote, 'https://nowhere.example/x')).toThrowWithCode(RegistryError, 'UNREACHABLE');
  });
});

describe('when a token realm is checked', () => {
  const realm = (http: RegistryHttp, url: string): Promise<void> =>
    http.checkRealm(new URL(url), 'GET token', {});
  const registry = httpFor(
    'http://registry.example.com:5000',
    table({ 'auth.example.com': ['198.51.100.9'] }),
  );

  it("accepts the registry's own origin, even over http", async () => {
    await expect(realm(registry, 'http://registry.example.com:5000/token')).resolves.toBeUndefined();
  });

  it('accepts https on a routable address', async () => {
    await expect(realm(registry, 'https://auth.example.com/token')).resolves.toBeUndefined();
  });

  it('refuses http anywhere else, the same host on another port included', async () => {
    for (const url of ['http://auth.example.com/token', 'http://registry.example.com:5001/token']) {
      const error = await realm(registry, url).catch((err: unknown) => err);
      expect((error as RegistryError).code).toBe('PROTOCOL');
      expect((error as RegistryError).message).toContain('insecure token realm');
    }
  });

  it('refuses https to link-local, and to loopback from a registry that is not on loopback', async () => {
    const remote = httpFor('https://registry.example.com', table({ 'registry.example.com': ['192.0.2.1'] }));
    await expect(realm(remote, 'https://169.254.169.254/token')).toThrowWithCode(RegistryError, 'PROTOCOL');
    await expect(realm(remote, 'https://127.0.0.1/token')).toThrowWithCode(RegistryError, 'PROTOCOL');
  });
});

describe('ByteBudget', () => {
  it('allows reads up to its limit and refuses the one that passes it, then every later one', () => {
    const budget = new ByteBudget(10, 'ghcr.io');
    budget.take(4, 'GET a');
    budget.take(6, 'GET b');
    expect(budget.remaining).toBe(0);
    expect(() => budget.take(1, 'GET c')).toThrowWithCode(RegistryError, 'BUDGET_EXCEEDED');
    expect(() => budget.take(1, 'GET d')).toThrowWithCode(RegistryError, 'BUDGET_EXCEEDED');
    expect(budget.used).toBe(12);
  });

  it('names the host it was given and what was being read', () => {
    const error = (() => {
      try {
        new ByteBudget(0, 'ghcr.io').take(1, 'GET blob team-a/app@sha256:x');
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect((error as RegistryError).registry).toBe('ghcr.io');
    expect((error as RegistryError).message).toContain('GET blob team-a/app@sha256:x');
    expect((error as RegistryError).retryable).toBe(false);
  });

  it('refuses a limit that is not a non-negative integer', () => {
    expect(() => new ByteBudget(-1)).toThrow(RangeError);
    expect(() => new ByteBudget(1.5)).toThrow(RangeError);
  });
});

describe('withRetry with a signal', () => {
  it('ends a backoff wait at once with the reason, and starts no other attempt', async () => {
    const controller = new AbortController();
    let attempts = 0;
    const op = async (): Promise<never> => {
      attempts++;
      setTimeout(() => controller.abort(new Error('deadline')), 1);
      throw new RegistryError('RATE_LIMITED', 'r', 'slow down', { retryAfterMs: 3_600_000 });
    };
    await expect(
      withRetry(op, { attempts: 3, baseDelayMs: 1, maxDelayMs: 3_600_000 }, { signal: controller.signal }),
    ).rejects.toThrow('deadline');
    expect(attempts).toBe(1);
  });
});

describe('when a read is refused before any request', () => {
  const client = new HttpRegistryClient(
    { host: 'r.invalid', insecure: false, auth: { $case: 'anonymous' } },
    { maxBlobBytes: 1024 },
  );

  it('refuses a size that is no size', async () => {
    await expect(client.getBlob('team-a/app', DIGEST, { size: -1 })).toThrowWithCode(
      InputError,
      'REFERENCE_INVALID',
    );
    await expect(client.getBlob('team-a/app', DIGEST, { size: 0.5 })).toThrowWithCode(
      InputError,
      'REFERENCE_INVALID',
    );
  });

  it('refuses a descriptor size over the blob limit as TOO_LARGE', async () => {
    await expect(client.getBlob('team-a/app', DIGEST, { size: 1025 })).toThrowWithCode(
      RegistryError,
      'TOO_LARGE',
    );
  });

  it('answers ABORTED for a signal aborted already, naming the read', async () => {
    const read = client.getManifest('team-a/app', 'v1', { signal: AbortSignal.abort() });
    await expect(read).toThrowWithCode(RegistryError, 'ABORTED');
    await expect(read).rejects.toThrow('GET manifest team-a/app:v1');
    await expect(client.headManifest('team-a/app', 'v1', { signal: AbortSignal.abort() })).toThrowWithCode(
      RegistryError,
      'ABORTED',
    );
  });
});
