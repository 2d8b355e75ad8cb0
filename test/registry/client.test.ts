import fc from 'fast-check';
import type { RegistryConfig } from '../../lib/config/types';
import { InputError } from '../../lib/core/errors';
import { RegistryClients } from '../../lib/registry/clients';
import {
  HttpRegistryClient,
  parseChallenges,
  parseRetryAfter,
  registryBaseUrl,
  resolveRegistry,
  uploadUrl,
} from '../../lib/registry/client';

describe('parseChallenges', () => {
  it('reads a distribution Bearer challenge whose scope holds a comma', () => {
    const header =
      'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team-a/app:pull,push"';
    expect(parseChallenges(header)).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example.com/token',
          service: 'registry.example.com',
          scope: 'repository:team-a/app:pull,push',
        },
      },
    ]);
  });

  it('reads a Basic challenge', () => {
    expect(parseChallenges('Basic realm="Registry Realm"')).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
    ]);
  });

  it('reads several challenges in one header, with spaces around = and unquoted values', () => {
    expect(parseChallenges('Basic realm = "a, b" ,  BEARER Realm=https://x/token , Service=reg')).toEqual([
      { scheme: 'basic', params: { realm: 'a, b' } },
      { scheme: 'bearer', params: { realm: 'https://x/token', service: 'reg' } },
    ]);
  });

  it('unescapes backslashes in quoted values', () => {
    expect(parseChallenges('Bearer realm="a \\"quoted\\" \\\\ realm"')[0]?.params['realm']).toBe(
      'a "quoted" \\ realm',
    );
  });

  it('skips a token68 challenge without taking it for the next scheme', () => {
    expect(parseChallenges('Negotiate abc+/def==, Bearer realm="r"')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'bearer', params: { realm: 'r' } },
    ]);
  });

  it('answers nothing for an empty or garbage header, without throwing', () => {
    expect(parseChallenges('')).toEqual([]);
    expect(() => parseChallenges('"=,,==" Bearer realm="unterminated')).not.toThrow();
  });

  it('round-trips any quoted parameter value', () => {
    const quote = (v: string): string => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (realm, service, scope) => {
        const header = `Bearer realm=${quote(realm)},service=${quote(service)}, scope=${quote(scope)}`;
        expect(parseChallenges(header)).toEqual([{ scheme: 'bearer', params: { realm, service, scope } }]);
      }),
    );
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads delta seconds', () => {
    expect(parseRetryAfter('7', now)).toBe(7_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });

  it('reads an HTTP date relative to now', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
  });

  it('never answers a negative delay for a date in the past', () => {
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
  });

  it('ignores a missing or unreadable value', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter('-3', now)).toBeUndefined();
  });
});

describe('scheme choice', () => {
  it('uses https unless the registry is marked insecure', () => {
    expect(registryBaseUrl('registry.example.com', false)).toBe('https://registry.example.com');
    expect(registryBaseUrl('127.0.0.1:5000', false)).toBe('https://127.0.0.1:5000');
    expect(registryBaseUrl('localhost:5000', false)).toBe('https://localhost:5000');
    expect(registryBaseUrl('127.0.0.1:5000', true)).toBe('http://127.0.0.1:5000');
  });

  it("talks to Docker Hub's API host", () => {
    expect(registryBaseUrl('docker.io', false)).toBe('https://registry-1.docker.io');
  });

  it('builds clients with the chosen scheme', () => {
    const registries: RegistryConfig[] = [
      {
        host: 'LOCAL:5000',
        kind: 'distribution',
        embedded: true,
        insecure: true,
        auth: { $case: 'anonymous' },
        dataDir: '/tmp/x',
      },
    ];
    const clients = new RegistryClients(registries);
    expect(clients.client('local:5000').baseUrl).toBe('http://LOCAL:5000');
    expect(clients.client('local:5000')).toBe(clients.client('LOCAL:5000'));
    expect(clients.client('ghcr.io').baseUrl).toBe('https://ghcr.io');
  });
});

describe('resolveRegistry', () => {
  const registries: RegistryConfig[] = [
    {
      host: 'registry.example.com',
      kind: 'distribution',
      embedded: false,
      insecure: false,
      auth: { $case: 'basic', username: 'u', password: 'p' },
      dataDir: '/tmp/x',
    },
  ];

  it('uses the configured registry, host compared case-insensitively', () => {
    expect(resolveRegistry('Registry.Example.com', registries).auth).toEqual({
      $case: 'basic',
      username: 'u',
      password: 'p',
    });
  });

  describe('when the host is not configured', () => {
    it('uses ECR auth with the region of an ECR host', () => {
      expect(resolveRegistry('123456789012.dkr.ecr.eu-west-3.amazonaws.com', registries)).toEqual({
        host: '123456789012.dkr.ecr.eu-west-3.amazonaws.com',
        insecure: false,
        auth: { $case: 'ecr', region: 'eu-west-3', endpoint: undefined },
      });
    });

    it('is anonymous over https for any other host', () => {
      expect(resolveRegistry('ghcr.io', registries)).toEqual({
        host: 'ghcr.io',
        insecure: false,
        auth: { $case: 'anonymous' },
      });
    });

    it('does not take a look-alike host for ECR', () => {
      expect(resolveRegistry('123456789012.dkr.ecr.eu-west-3.amazonaws.com.evil.io', []).auth.$case).toBe(
        'anonymous',
      );
    });
  });
});

describe('uploadUrl', () => {
  const digest = 'sha256:' + 'a'.repeat(64);
  const request = 'https://r.example.com/v2/team-a/app/blobs/uploads/';

  it('resolves a relative Location against the request', () => {
    expect(uploadUrl('/v2/team-a/app/blobs/uploads/abc', request, digest)).toBe(
      `https://r.example.com/v2/team-a/app/blobs/uploads/abc?digest=sha256%3A${'a'.repeat(64)}`,
    );
  });

  it('keeps an absolute Location on another host', () => {
    expect(uploadUrl('https://upload.example.net/x/abc', request, digest)).toBe(
      `https://upload.example.net/x/abc?digest=sha256%3A${'a'.repeat(64)}`,
    );
  });

  it("appends to a Location's query without re-encoding the registry's state", () => {
    expect(uploadUrl('/v2/team-a/app/blobs/uploads/abc?_state=x%2By%3D%3D&a=1', request, digest)).toBe(
      `https://r.example.com/v2/team-a/app/blobs/uploads/abc?_state=x%2By%3D%3D&a=1&digest=sha256%3A${'a'.repeat(64)}`,
    );
  });
});

describe('when a caller passes a malformed name', () => {
  const client = new HttpRegistryClient({ host: 'r.invalid', insecure: false, auth: { $case: 'anonymous' } });

  it('rejects it before any request', async () => {
    await expect(client.getManifest('../../etc', 'v1')).toThrowWithCode(InputError, 'REFERENCE_INVALID');
    await expect(client.getManifest('team-a/app', 'v1/../x')).toThrowWithCode(
      InputError,
      'REFERENCE_INVALID',
    );
    await expect(client.getBlob('team-a/app', 'sha256:nothex')).toThrowWithCode(
      InputError,
      'REFERENCE_INVALID',
    );
  });
});
