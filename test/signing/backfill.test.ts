/**
 * Bulk backfill (`signet sign --all`) over an in-memory registry and real local keys: the pattern,
 * what is found signed already, what default and simple rules write, conditions, retries of what
 * may pass, failures that will not, and an abort that leaves the rest for the next run. What was
 * written is checked with node:crypto alone (fixtures.ts).
 */
import { ConfigError, InputError, RegistryError } from '../../lib/core/errors';
import { isSignatureArtifactTag, signatureTag } from '../../lib/core/reference';
import type { ScanResult } from '../../lib/events/types';
import type { InventoryImage, RegistryInventory } from '../../lib/registry/catalog';
import type { ReadOptions } from '../../lib/registry/types';
import {
  backfill,
  parseBackfillPattern,
  type BackfillOptions,
  type BackfillProgress,
  type BackfillResult,
  type BackfillSummary,
} from '../../lib/signing/backfill';
import type { SigningPipeline } from '../../lib/signing/pipeline';
import type { MemoryRegistry } from '../support/memory-registry';
import { HOST, PRIVATE_KEYS, readSignatures, signingFixture, type SigningFixture } from './fixtures';

const RULES = `
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
  - name: team-a-rsa
    namespaces: [team-a]
    witness: release-rsa
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
    signatureType: simple
  - name: scanned
    namespaces: [scanned]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: simple
    conditions:
      scan: { maxSeverity: HIGH }
  - name: by-ci
    namespaces: [ci]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      pushedBy: [ci]
  - name: switched-off
    namespaces: [off]
    witness: release
    algorithm: ECDSA_SHA_256
    enabled: false
  - name: broken
    namespaces: [broken]
    witness: missing
    algorithm: ECDSA_SHA_256
`;

const counts = (severity: Partial<Record<'CRITICAL' | 'HIGH' | 'MEDIUM' | 'LOW', number>>): ScanResult => ({
  $case: 'complete',
  scanner: 'harbor',
  counts: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, ...severity },
  fixable: undefined,
});

/**
 * The in-memory registry's repositories and tagged images, as a catalog lists them: repositories
 * in lexical order, tags grouped by digest, signature artifacts left out.
 */
class MemoryInventory implements RegistryInventory {
  failImages: ((repository: string) => Error | undefined) | undefined;
  failCatalog: Error | undefined;
  /** Digests listed though the registry does not hold them (deleted since they were listed). */
  readonly ghosts: { repository: string; image: InventoryImage }[] = [];

  constructor(private readonly registry: MemoryRegistry) {}

  async *repositories(options: ReadOptions = {}): AsyncIterable<string> {
    if (this.failCatalog !== undefined) throw this.failCatalog;
    const names = new Set([...this.registry.manifests.keys()].map((key) => key.slice(0, key.indexOf(':'))));
    for (const name of [...names].sort()) {
      if (options.signal?.aborted === true) throw new RegistryError('ABORTED', HOST, 'catalog: aborted');
      yield name;
    }
  }

  images(repository: string): Promise<InventoryImage[]> {
    const error = this.failImages?.(repository);
    if (error !== undefined) return Promise.reject(error);
    const byDigest = new Map<string, string[]>();
    for (const [key, stored] of this.registry.manifests) {
      const colon = key.indexOf(':');
      const reference = key.slice(colon + 1);
      if (key.slice(0, colon) !== repository || reference.startsWith('sha256:')) continue;
      if (isSignatureArtifactTag(reference)) continue;
      byDigest.set(stored.digest, [...(byDigest.get(stored.digest) ?? []), reference]);
    }
    const ghosts = this.ghosts.filter((g) => g.repository === repository).map((g) => g.image);
    return Promise.resolve([...[...byDigest].map(([digest, tags]) => ({ digest, tags })), ...ghosts]);
  }
}

let fixture: SigningFixture;
let registry: MemoryRegistry;
let inventory: MemoryInventory;
let pipeline: SigningPipeline;
const scans = new Map<string, ScanResult>();

beforeEach(async () => {
  fixture = await signingFixture(RULES, undefined, { registries: `  - host: ${HOST}\n    kind: harbor\n` });
  registry = fixture.registry;
  inventory = new MemoryInventory(registry);
  scans.clear();
  pipeline = fixture.pipeline({
    scans: { scanResult: (_registry, _repository, digest) => Promise.resolve(scans.get(digest)) },
  });
});
afterEach(() => fixture.cleanup());

function run(pattern: string, options: Partial<BackfillOptions> = {}): Promise<BackfillSummary> {
  return backfill(
    {
      pipeline,
      registries: fixture.registries,
      keys: fixture.keys,
      rules: fixture.config.signingRules,
      inventory: () => inventory,
    },
    {
      target: parseBackfillPattern(pattern, [HOST]),
      retry: { baseDelayMs: 1, maxDelayMs: 1 },
      ...options,
    },
  );
}

const resultOf = (summary: BackfillSummary, repository: string): BackfillResult | undefined =>
  summary.results.find((r) => r.repository === repository);

/** Each `.sig` layer of the digest as `witness:tag` (tag `-` when the identity names none). */
const signedAs = (repository: string, digest: string): string[] =>
  readSignatures(registry, repository, digest)
    .map(({ witness, payload }) => {
      const identity = payload.critical.identity['docker-reference'];
      const colon = identity.lastIndexOf(':');
      const tag = colon > identity.lastIndexOf('/') ? identity.slice(colon + 1) : '-';
      return `${witness ?? 'unknown'}:${tag}`;
    })
    .sort();

describe('parseBackfillPattern', () => {
  const hosts = [HOST, 'localhost:5000'];

  it.each([
    [HOST, ['team-a/app', 'x'], []],
    [`${HOST}/team-a`, ['team-a', 'team-a/app', 'team-a/x/y'], ['team-ab', 'other/team-a']],
    [`${HOST}/team-a/`, ['team-a', 'team-a/app'], ['team-ab']],
    [`${HOST}/team-a/app`, ['team-a/app', 'team-a/app/sub'], ['team-a/apps', 'team-a']],
    [`${HOST}/team-a/**`, ['team-a/app', 'team-a/x/y'], ['team-b/app']],
    [`${HOST}/*/app`, ['team-a/app', 'team-b/app'], ['team-a/x/app', 'team-a/tool']],
  ])('%s covers %j and not %j', (pattern, covered, uncovered) => {
    const target = parseBackfillPattern(pattern, hosts);
    expect(target).toMatchObject({ registry: HOST, pattern });
    for (const repository of covered) expect(target.repositories.test(repository)).toBe(true);
    for (const repository of uncovered) expect(target.repositories.test(repository)).toBe(false);
  });

  it('finds the configured host whatever its spelling (case, the HTTPS port)', () => {
    expect(parseBackfillPattern('Registry.Example.com:443/team-a', hosts).registry).toBe(HOST);
    expect(parseBackfillPattern('localhost:5000', hosts).registry).toBe('localhost:5000');
  });

  describe('when the pattern is unusable', () => {
    it.each([
      ['an unconfigured host', 'other.example.com/team-a'],
      ['no host at all', ''],
      ['a host that is not one', 'not a host/team-a'],
      ['a repository name that cannot exist', `${HOST}/Team-A`],
      ['a glob Signet does not read', `${HOST}/team-a/***`],
      ['a glob with a character class', `${HOST}/team-[ab]/*`],
    ])('refuses %s, naming --all', (_what, pattern) => {
      expect(() => parseBackfillPattern(pattern, hosts)).toThrowWithCode(InputError, 'REQUEST_INVALID');
      expect(() => parseBackfillPattern(pattern, hosts)).toThrow(
        expect.objectContaining({ field: '--all' }) as Error,
      );
    });

    it('lists the configured registries when the host is not one', () => {
      expect(() => parseBackfillPattern('other.example.com', hosts)).toThrow(
        `registries: ${HOST}, localhost:5000`,
      );
      expect(() => parseBackfillPattern('other.example.com', [])).toThrow('registries: none');
    });
  });
});

describe('backfill', () => {
  describe('over images nobody signed', () => {
    let app: string;
    let tool: string;
    let summary: BackfillSummary;
    const progress: BackfillProgress[] = [];
    beforeEach(async () => {
      app = await registry.pushImage('team-a/app', 'v1', 'app');
      await registry.pushImage('team-a/app', 'v2', 'app');
      tool = await registry.pushImage('team-a/tool', '1.0');
      await registry.pushImage('other/app', 'v1');
      await registry.pushImage('off/app', 'v1');
      progress.length = 0;
      summary = await run(HOST, { onProgress: (p) => progress.push(p) });
    });

    it('signs each covered image: default rules under each of its tags, simple rules once', () => {
      expect(summary).toMatchObject({
        registry: HOST,
        pattern: HOST,
        dryRun: false,
        interrupted: false,
        repositories: 2,
        total: 2,
        done: 2,
        counts: { signed: 2, 'already-signed': 0, 'would-sign': 0, 'not-signed': 0, failed: 0 },
      });
      expect(signedAs('team-a/app', app)).toEqual(['release-rsa:-', 'release:v1', 'release:v2']);
      expect(signedAs('team-a/tool', tool)).toEqual(['release-rsa:-', 'release:1.0']);
      expect(resultOf(summary, 'team-a/app')).toMatchObject({
        image: `${HOST}/team-a/app@${app}`,
        digest: app,
        tags: ['v1', 'v2'],
        status: 'signed',
      });
      expect(resultOf(summary, 'team-a/app')?.rules).toEqual(
        expect.arrayContaining([
          { rule: 'team-a', tag: 'v1', status: 'signed' },
          { rule: 'team-a', tag: 'v2', status: 'signed' },
          { rule: 'team-a-rsa', tag: undefined, status: 'signed' },
        ]),
      );
    });

    it('leaves alone repositories no enabled rule covers', () => {
      expect(
        registry.signatureLayers('other/app', registry.manifests.get('other/app:v1')?.digest ?? ''),
      ).toEqual([]);
      expect(registry.count('GET manifest off/app')).toBe(0);
    });

    it('reports progress: listing, then each image, ending at the total', () => {
      expect(progress[0]?.listing).toBe(true);
      const last = progress[progress.length - 1];
      expect(last).toMatchObject({ listing: false, done: 2, total: 2 });
      expect(last?.rate).toBeGreaterThan(0);
      expect(last?.etaSeconds).toBe(0);
      expect(progress.find((p) => !p.listing && p.done === 0)?.etaSeconds).toBeUndefined();
    });

    describe('run again', () => {
      let again: BackfillSummary;
      beforeEach(async () => {
        registry.calls.length = 0;
        again = await run(HOST);
      });

      it('signs nothing new', () => {
        expect(again.counts).toMatchObject({ signed: 0, 'already-signed': 2, failed: 0 });
        expect(registry.count('PUT')).toBe(0);
        expect(signedAs('team-a/app', app)).toEqual(['release-rsa:-', 'release:v1', 'release:v2']);
      });

      it('costs one manifest read per image and no blob read (the expected payloads are found)', () => {
        expect(registry.calls).toEqual(
          expect.arrayContaining([
            `GET manifest team-a/app:${signatureTag(app)}`,
            `GET manifest team-a/tool:${signatureTag(tool)}`,
          ]),
        );
        expect(registry.calls).toHaveLength(2);
      });
    });
  });

  describe('when some witnesses signed already', () => {
    it('writes only what is missing: the other tags, the other witness', async () => {
      const digest = await registry.pushImage('team-a/app', 'v1', 'app');
      await registry.pushImage('team-a/app', 'v2', 'app');
      await registry.sign('team-a/app', digest, PRIVATE_KEYS.release, { tag: 'v1' });
      const summary = await run(`${HOST}/team-a`);
      expect(resultOf(summary, 'team-a/app')?.rules).toEqual([
        { rule: 'team-a', tag: 'v2', status: 'signed' },
        { rule: 'team-a-rsa', tag: undefined, status: 'signed' },
      ]);
      expect(signedAs('team-a/app', digest)).toEqual(['release-rsa:-', 'release:v1', 'release:v2']);
    });

    it('takes a signature without a tag as vouching under every tag', async () => {
      const digest = await registry.pushImage('team-a/app', 'v1', 'app');
      await registry.pushImage('team-a/app', 'v2', 'app');
      await registry.sign('team-a/app', digest, PRIVATE_KEYS.release);
      await registry.sign('team-a/app', digest, PRIVATE_KEYS['release-rsa'], { tag: 'v1' });
      const summary = await run(`${HOST}/team-a/app`);
      expect(summary.counts['already-signed']).toBe(1);
      expect(registry.count('PUT')).toBe(0);
    });

    it('reads the payloads it did not expect, skipping one the registry lost', async () => {
      const digest = await registry.pushImage('team-a/app', 'v1', 'app');
      const lost = await registry.sign('team-a/app', digest, PRIVATE_KEYS.release, {
        payload: Buffer.from('{"lost": true}'),
      });
      registry.deleteBlob('team-a/app', lost.digest);
      // Signed with annotations the rule would not write: found by reading the payload.
      await registry.sign('team-a/app', digest, PRIVATE_KEYS.release, { tag: 'v1' });
      await registry.sign('team-a/app', digest, PRIVATE_KEYS['release-rsa'], {
        tag: 'v1',
        payload: Buffer.from(
          JSON.stringify({
            critical: {
              identity: { 'docker-reference': `${HOST}/team-a/app` },
              image: { 'docker-manifest-digest': digest },
              type: 'cosign container image signature',
            },
            optional: { by: 'someone else' },
          }),
        ),
      });
      const summary = await run(`${HOST}/team-a/app`);
      expect(summary.counts).toMatchObject({ 'already-signed': 1, failed: 0 });
      expect(registry.count('GET blob')).toBeGreaterThan(0);
    });

    it('ignores a payload naming another digest, and signatures of other keys', async () => {
      const digest = await registry.pushImage('team-a/app', 'v1', 'app');
      const other = await registry.pushImage('team-a/app', 'other', 'other');
      await registry.sign('team-a/app', digest, PRIVATE_KEYS.release, { tag: 'v1', payloadDigest: other });
      await registry.sign('team-a/app', digest, PRIVATE_KEYS['release-rsa'], { tag: 'v1' });
      const summary = await run(`${HOST}/team-a/app`, { rule: 'team-a' });
      expect(summary.results.find((r) => r.digest === digest)?.status).toBe('signed');
    });
  });

  describe('with --dry-run', () => {
    it('lists what each rule would sign, under which tag, and writes nothing', async () => {
      const digest = await registry.pushImage('team-a/app', 'v1', 'app');
      await registry.pushImage('team-a/other', 'v1');
      await registry.sign('team-a/app', digest, PRIVATE_KEYS['release-rsa']);
      const summary = await run(`${HOST}/team-a/app`, { dryRun: true, retry: undefined });
      expect(summary).toMatchObject({ dryRun: true, counts: { 'would-sign': 1, signed: 0 } });
      expect(resultOf(summary, 'team-a/app')?.rules).toEqual([
        { rule: 'team-a', tag: 'v1', status: 'would-sign' },
      ]);
      expect(registry.count('PUT')).toBe(0);
    });
  });

  describe('with --rule', () => {
    it('signs with that rule only', async () => {
      const digest = await registry.pushImage('team-a/app', 'v1', 'app');
      await run(HOST, { rule: 'team-a-rsa' });
      expect(signedAs('team-a/app', digest)).toEqual(['release-rsa:-']);
    });

    it.each([
      ['unknown', 'nope'],
      ['disabled', 'switched-off'],
    ])('refuses a rule that is %s, before listing anything', async (_what, rule) => {
      await expect(run(HOST, { rule })).toThrowWithCode(ConfigError, 'RULE_UNKNOWN');
      expect(registry.calls).toEqual([]);
    });
  });

  describe("with rules' conditions", () => {
    it('signs what meets them and reports the rest not signed, with the reason', async () => {
      const clean = await registry.pushImage('scanned/app', 'clean');
      const critical = await registry.pushImage('scanned/app', 'critical');
      scans.set(clean, counts({ HIGH: 1 }));
      scans.set(critical, counts({ CRITICAL: 2 }));
      const ci = await registry.pushImage('ci/app', 'v1');
      const summary = await run(HOST);
      expect(summary.counts).toMatchObject({ signed: 1, 'not-signed': 2, failed: 0 });
      const byDigest = new Map(summary.results.map((r) => [r.digest, r]));
      expect(byDigest.get(clean)?.status).toBe('signed');
      expect(byDigest.get(critical)).toMatchObject({
        status: 'not-signed',
        rules: [
          { rule: 'scanned', status: 'not-signed', reason: expect.stringMatching(/^scan: /) as string },
        ],
      });
      expect(byDigest.get(ci)?.rules[0]).toMatchObject({ rule: 'by-ci', status: 'not-signed' });
      expect(signedAs('scanned/app', clean)).toEqual(['release:-']);
      expect(signedAs('scanned/app', critical)).toEqual([]);
    });

    it('finds a conditional signature by reading it: a second run writes no other', async () => {
      const clean = await registry.pushImage('scanned/app', 'clean');
      scans.set(clean, counts({}));
      await run(`${HOST}/scanned`);
      const again = await run(`${HOST}/scanned`);
      expect(again.counts['already-signed']).toBe(1);
      expect(signedAs('scanned/app', clean)).toEqual(['release:-']);
    });
  });

  describe('when the registry fails for a while', () => {
    it('attempts the image again and signs it', async () => {
      const digest = await registry.pushImage('team-a/app', 'v1', 'app');
      registry.failNext(
        `PUT manifest team-a/app:${signatureTag(digest)}`,
        new RegistryError('UNAVAILABLE', HOST, 'injected outage', { status: 503 }),
      );
      const summary = await run(HOST, { rule: 'team-a' });
      expect(resultOf(summary, 'team-a/app')?.status).toBe('signed');
      expect(registry.count(`PUT manifest team-a/app:${signatureTag(digest)}`)).toBe(2);
      expect(signedAs('team-a/app', digest)).toEqual(['release:v1']);
    });

    it('keeps what an earlier attempt signed in the result', async () => {
      const digest = await registry.pushImage('team-a/app', 'v1', 'app');
      await registry.pushImage('team-a/app', 'v2', 'app');
      let puts = 0;
      registry.fail = (call) =>
        call.startsWith('PUT manifest') && ++puts === 2
          ? new RegistryError('RATE_LIMITED', HOST, 'injected throttling', { status: 429 })
          : undefined;
      const summary = await run(HOST, { rule: 'team-a' });
      expect(resultOf(summary, 'team-a/app')).toMatchObject({ status: 'signed' });
      expect(resultOf(summary, 'team-a/app')?.rules).toEqual([
        { rule: 'team-a', tag: 'v1', status: 'signed' },
        { rule: 'team-a', tag: 'v2', status: 'signed' },
      ]);
      expect(signedAs('team-a/app', digest)).toEqual(['release:v1', 'release:v2']);
    });

    it('attempts it again when a payload it had to read could not be', async () => {
      const digest = await registry.pushImage('scanned/app', 'v1');
      scans.set(digest, counts({}));
      const layer = await registry.sign('scanned/app', digest, PRIVATE_KEYS['release-rsa']);
      registry.failNext(
        `GET blob scanned/app@${layer.digest}`,
        new RegistryError('UNREACHABLE', HOST, 'connection reset'),
      );
      const summary = await run(`${HOST}/scanned`);
      expect(resultOf(summary, 'scanned/app')?.status).toBe('signed');
      expect(registry.count(`GET blob scanned/app@${layer.digest}`)).toBe(2);
      expect(signedAs('scanned/app', digest)).toEqual(['release-rsa:-', 'release:-']);
    });

    it('gives up after its attempts, reporting the last failure', async () => {
      const digest = await registry.pushImage('team-a/app', 'v1', 'app');
      registry.failNext(
        `GET manifest team-a/app:${signatureTag(digest)}`,
        new RegistryError('UNAVAILABLE', HOST, 'injected outage', { status: 503 }),
        10,
      );
      const summary = await run(HOST, { attempts: 2 });
      expect(resultOf(summary, 'team-a/app')).toMatchObject({ status: 'failed', errorCode: 'UNAVAILABLE' });
      expect(registry.count(`GET manifest team-a/app:${signatureTag(digest)}`)).toBe(2);
    });

    it('lists a repository again; one that stays unlistable is a failed result', async () => {
      await registry.pushImage('team-a/app', 'v1', 'app');
      await registry.pushImage('team-a/tool', 'v1', 'tool');
      let listings = 0;
      await registry.pushImage('team-a/odd', 'v1', 'odd');
      inventory.failImages = (repository) =>
        repository === 'team-a/odd'
          ? new Error('not a registry error')
          : repository === 'team-a/tool' || ++listings === 1
            ? new RegistryError('UNAVAILABLE', HOST, 'injected outage', { status: 503 })
            : undefined;
      const summary = await run(HOST);
      expect(resultOf(summary, 'team-a/app')?.status).toBe('signed');
      expect(resultOf(summary, 'team-a/tool')).toMatchObject({
        image: `${HOST}/team-a/tool`,
        digest: '',
        status: 'failed',
        errorCode: 'UNAVAILABLE',
      });
      expect(resultOf(summary, 'team-a/odd')).toMatchObject({ status: 'failed', errorCode: 'INTERNAL' });
      expect(summary).toMatchObject({ total: 3, done: 3 });
    });
  });

  describe('when a failure will not pass', () => {
    it('reports it at once, with its code', async () => {
      const digest = await registry.pushImage('team-a/app', 'v1', 'app');
      registry.failNext(
        `PUT manifest team-a/app:${signatureTag(digest)}`,
        new RegistryError('DENIED', HOST, 'push denied', { status: 403 }),
        10,
      );
      const summary = await run(HOST, { rule: 'team-a' });
      expect(resultOf(summary, 'team-a/app')).toMatchObject({
        status: 'failed',
        errorCode: 'DENIED',
        error: expect.stringContaining('push denied') as string,
      });
      expect(registry.count(`PUT manifest team-a/app:${signatureTag(digest)}`)).toBe(1);
    });

    it('reports a witness whose key is unusable, and signs the other images', async () => {
      await registry.pushImage('broken/app', 'v1');
      await registry.pushImage('team-a/app', 'v1');
      const summary = await run(HOST);
      expect(resultOf(summary, 'broken/app')).toMatchObject({ status: 'failed', rules: [] });
      expect(resultOf(summary, 'broken/app')?.errorCode).toMatch(/^KEY_/);
      expect(resultOf(summary, 'team-a/app')?.status).toBe('signed');
    });

    it('throws when the repositories cannot be listed at all', async () => {
      inventory.failCatalog = new RegistryError('DENIED', HOST, 'catalog denied', { status: 403 });
      await expect(run(HOST)).toThrowWithCode(RegistryError, 'DENIED');
    });
  });

  it('reports an image deleted since it was listed as not signed, with the reason', async () => {
    await registry.pushImage('team-a/app', 'v1');
    inventory.ghosts.push({
      repository: 'team-a/app',
      image: { digest: `sha256:${'0'.repeat(64)}`, tags: ['gone'] },
    });
    const summary = await run(HOST);
    expect(summary.counts).toMatchObject({ signed: 1, 'not-signed': 1 });
    expect(summary.results.find((r) => r.tags.includes('gone'))).toMatchObject({
      status: 'not-signed',
      rules: expect.arrayContaining([
        { rule: 'team-a', tag: 'gone', status: 'skipped', reason: 'manifest no longer exists' },
      ]) as unknown,
    });
  });

  describe('when aborted', () => {
    beforeEach(async () => {
      for (let i = 0; i < 6; i++) await registry.pushImage(`team-a/app-${i}`, 'v1');
    });

    it('starts no other image, finishes those in flight, and the next run does the rest', async () => {
      const abort = new AbortController();
      const summary = await run(HOST, {
        concurrency: 2,
        signal: abort.signal,
        onResult: () => abort.abort(),
      });
      expect(summary).toMatchObject({ interrupted: true, total: 6 });
      expect(summary.done).toBeLessThanOrEqual(2);
      expect(summary.results.every((r) => r.status === 'signed')).toBe(true);
      const rest = await run(HOST);
      expect(rest.counts).toMatchObject({ signed: 6 - summary.done, 'already-signed': summary.done });
      for (let i = 0; i < 6; i++) {
        const digest = registry.manifests.get(`team-a/app-${i}:v1`)?.digest ?? '';
        expect(signedAs(`team-a/app-${i}`, digest)).toEqual(['release-rsa:-', 'release:v1']);
      }
    });

    it('while listing: an interrupted summary of nothing', async () => {
      const abort = new AbortController();
      abort.abort();
      const summary = await run(HOST, { signal: abort.signal });
      expect(summary).toMatchObject({ interrupted: true, total: 0, done: 0, repositories: 0 });
    });

    it('while waiting to attempt an image again: it stops waiting', async () => {
      registry.fail = (call) =>
        call.startsWith('PUT manifest')
          ? new RegistryError('UNAVAILABLE', HOST, 'injected outage', { status: 503 })
          : undefined;
      const abort = new AbortController();
      const started = Date.now();
      const summary = await run(HOST, {
        concurrency: 1,
        signal: abort.signal,
        retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
        onProgress: (p) => {
          if (!p.listing) setTimeout(() => abort.abort(), 20);
        },
      });
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(summary).toMatchObject({ interrupted: true, done: 1, counts: { failed: 1 } });
    });

    it('while a repository listing waits to be attempted again: no result for it', async () => {
      const abort = new AbortController();
      inventory.failImages = () => {
        setTimeout(() => abort.abort(), 5);
        return new RegistryError('UNAVAILABLE', HOST, 'injected outage', { status: 503 });
      };
      const summary = await run(HOST, {
        signal: abort.signal,
        retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
      });
      expect(summary).toMatchObject({ interrupted: true, done: 0, results: [] });
    });
  });
});
