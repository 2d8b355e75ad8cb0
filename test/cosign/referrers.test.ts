/**
 * Reading bundle referrers from a registry (lib/cosign/referrers.ts) over an in-memory registry:
 * through the referrers API or the fallback index, bounded by `maxBundles` and by each
 * descriptor's size, content problems rejected one by one, operational errors thrown.
 */
import { generateKeyPairSync } from 'node:crypto';
import { RegistryError } from '../../lib/core/errors';
import { blobReader, isContentError, readBundleReferrers } from '../../lib/cosign/referrers';
import { MemoryRegistry } from '../support/memory-registry';

const HOST = 'registry.example.com';
const REPO = 'team-a/app';
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });

let registry: MemoryRegistry;
let digest: string;
beforeEach(async () => {
  registry = new MemoryRegistry(HOST);
  digest = await registry.pushImage(REPO, 'v1');
});

describe('readBundleReferrers', () => {
  it.each([
    ['the referrers API', true],
    ['the fallback index', false],
  ])('reads the bundles listed by %s', async (_, api) => {
    registry.referrersApi = api;
    const id = await registry.attachBundle(REPO, digest, key.privateKey);
    const found = await readBundleReferrers(registry, REPO, digest, 8);
    expect(found).toMatchObject({ referrersApi: api, rejected: [], unread: 0 });
    expect(found.evidence.map((e) => [e.id, e.claims.digests])).toEqual([[id, [digest]]]);
  });

  it('finds nothing when nobody wrote a bundle', async () => {
    expect(await readBundleReferrers(registry, REPO, digest, 8)).toEqual({
      evidence: [],
      rejected: [],
      referrersApi: false,
      unread: 0,
    });
  });

  it('reads at most maxBundles and counts the rest as unread', async () => {
    for (let i = 0; i < 3; i++) await registry.attachBundle(REPO, digest, key.privateKey);
    const found = await readBundleReferrers(registry, REPO, digest, 2);
    expect(found.evidence).toHaveLength(2);
    expect(found.unread).toBe(1);
  });

  it('rejects a bundle that names another digest, or whose predicate is not cosign’s', async () => {
    await registry.attachBundle(REPO, digest, key.privateKey, {
      predicateType: 'https://slsa.dev/provenance/v1',
    });
    const found = await readBundleReferrers(registry, REPO, digest, 8);
    expect(found.rejected).toEqual([
      expect.objectContaining({ source: 'bundle', problem: expect.stringContaining('predicateType') }),
    ]);
  });

  it('rejects a bundle whose layer is not the size its descriptor declares', async () => {
    const id = await registry.attachBundle(REPO, digest, key.privateKey);
    const stored = registry.manifestAt<{ layers: { size: number }[] }>(REPO, id);
    const layer = stored?.layers[0];
    if (stored === undefined || layer === undefined) throw new Error('no referrer');
    layer.size -= 1;
    const manifest = Buffer.from(JSON.stringify(stored));
    const tampered = registry.store(REPO, 'tampered', manifest, 'application/vnd.oci.image.manifest.v1+json');
    registry.referrersApi = true;
    registry.referrers.set(`${REPO}@${digest}`, [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: tampered,
        size: manifest.length,
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      },
    ]);
    const found = await readBundleReferrers(registry, REPO, digest, 8);
    expect(found.rejected).toEqual([
      expect.objectContaining({ id: tampered, problem: expect.stringContaining('past') }),
    ]);
  });

  it('throws an operational error: the caller decides what it means', async () => {
    registry.failNext('GET referrers', new RegistryError('UNAVAILABLE', HOST, 'HTTP 503'));
    await expect(readBundleReferrers(registry, REPO, digest, 8)).toThrowWithCode(
      RegistryError,
      'UNAVAILABLE',
    );
  });
});

describe('blobReader', () => {
  it('reads one blob once, however many layers name it', async () => {
    const payload = Buffer.from('payload');
    const blobDigest = registry.storeBlob(REPO, payload);
    const read = blobReader(registry, REPO);
    await Promise.all([read({ digest: blobDigest, size: 7 }), read({ digest: blobDigest, size: 7 })]);
    expect(registry.count('GET blob')).toBe(1);
  });

  it.each([
    [6, 'TOO_LARGE'],
    [8, 'PROTOCOL'],
  ])('refuses a blob of another size than declared (%d bytes declared)', async (size, code) => {
    const blobDigest = registry.storeBlob(REPO, Buffer.from('payload'));
    await expect(blobReader(registry, REPO)({ digest: blobDigest, size })).toThrowWithCode(
      RegistryError,
      code,
    );
  });
});

describe('isContentError', () => {
  it.each([
    ['NOT_FOUND', true],
    ['DIGEST_MISMATCH', true],
    ['PROTOCOL', true],
    ['TOO_LARGE', true],
    ['UNAVAILABLE', false],
    ['BUDGET_EXCEEDED', false],
  ] as const)('%s → %s', (code, expected) => {
    expect(isContentError(new RegistryError(code, HOST, 'x'))).toBe(expected);
  });

  it('is false for anything but a RegistryError', () => {
    expect(isContentError(new Error('x'))).toBe(false);
  });
});
