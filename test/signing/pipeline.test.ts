/**
 * The signing pipeline over an in-memory registry and real local keys: what a push would take
 * (`plan`), what it signs, what it never signs, and what one failing rule or publish means for the
 * others. Signatures and bundles are checked with node:crypto alone (fixtures.ts).
 */
import { ConfigError, RegistryError } from '../../lib/core/errors';
import { jsonLogger } from '../../lib/core/logger';
import { parseReference } from '../../lib/core/reference';
import { BundlePublisher } from '../../lib/signing/bundle-publisher';
import { REGISTRY_NOT_CONFIGURED, reportFailed, type SigningReport } from '../../lib/signing/pipeline';
import { SignaturePublisher } from '../../lib/signing/publisher';
import {
  HOST,
  pushEvent,
  readFallbackBundles,
  readSignatures,
  signingFixture,
  type SigningFixture,
} from './fixtures';

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
  - name: platform-recursive
    namespaces: [platform]
    witness: release
    algorithm: ECDSA_SHA_256
    recursive: true
  - name: platform-flat
    namespaces: [platform]
    witness: release-rsa
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
  - name: bundled
    namespaces: [bundled]
    witness: release
    algorithm: ECDSA_SHA_256
    bundle: true
  - name: broken-missing-key
    namespaces: [broken]
    witness: missing
    algorithm: ECDSA_SHA_256
  - name: broken-algorithm
    namespaces: [broken]
    witness: release
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
  - name: broken-good
    namespaces: [broken]
    witness: release-rsa
    algorithm: RSASSA_PKCS1_V1_5_SHA_256
  - name: release-manual
    namespaces: [manual]
    witness: release
    algorithm: ECDSA_SHA_256
    trigger: manual
  - name: switched-off
    namespaces: [manual]
    witness: release
    algorithm: ECDSA_SHA_256
    enabled: false
`;

let fixture: SigningFixture;
beforeEach(async () => {
  fixture = await signingFixture(RULES);
});
afterEach(() => fixture.cleanup());

const statuses = (report: SigningReport): Record<string, string> =>
  Object.fromEntries(report.outcomes.map((o) => [`${o.rule}@${o.digest.slice(7, 15)}`, o.status]));
const byRule = (report: SigningReport, rule: string) => report.outcomes.find((o) => o.rule === rule);

describe('plan', () => {
  it.each([
    ['a signature tag', { tag: `sha256-${'a'.repeat(64)}.sig` }, 'signature artifact tag'],
    ['an attestation tag', { tag: `sha256-${'a'.repeat(64)}.att` }, 'signature artifact tag'],
    [
      'a bundle artifact type',
      { artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' },
      'signature artifact type application/vnd.dev.sigstore.bundle.v0.3+json',
    ],
    [
      'a signature media type',
      { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json' },
      'signature artifact type application/vnd.dev.cosign.simplesigning.v1+json',
    ],
    ['a host outside registries[]', { registry: 'elsewhere.example.com' }, REGISTRY_NOT_CONFIGURED],
    ['a repository no rule covers', { repository: 'team-z/app' }, 'no signing rule covers this repository'],
  ])('skips %s', (_, overrides, reason) => {
    const event = pushEvent('team-a/app', `sha256:${'1'.repeat(64)}`, overrides);
    expect(fixture.pipeline().plan(event)).toEqual({ $case: 'skip', reason });
  });

  it('lists the enabled rules of the trigger that cover the repository', () => {
    const pipeline = fixture.pipeline();
    const names = (repository: string, trigger?: 'manual', rule?: string): string[] => {
      const plan = pipeline.plan(pushEvent(repository, `sha256:${'1'.repeat(64)}`), trigger, rule);
      return plan.$case === 'sign' ? plan.rules.map((r) => r.name) : [plan.reason];
    };
    expect(names('team-a/app')).toEqual(['team-a', 'team-a-rsa']);
    expect(names('manual/app')).toEqual(['no signing rule covers this repository']);
    expect(names('manual/app', 'manual')).toEqual(['release-manual']);
    expect(names('team-a/app', 'manual', 'team-a-rsa')).toEqual(['team-a-rsa']);
  });
});

describe('handlePush', () => {
  it('signs with every rule: a .sig layer per rule any cosign verifier accepts', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'v1');
    const report = await fixture.pipeline().handlePush(pushEvent('team-a/app', digest));
    expect(report.skipped).toBeUndefined();
    expect(reportFailed(report)).toBe(false);
    expect(report.outcomes).toEqual([
      expect.objectContaining({
        rule: 'team-a',
        witness: 'release',
        status: 'signed',
        signatureType: 'default',
        signatureRef: `${HOST}/team-a/app:${digest.replace(':', '-')}.sig`,
        keyId: expect.stringMatching(/^sha256:/),
      }),
      expect.objectContaining({ rule: 'team-a-rsa', status: 'signed', signatureType: 'simple' }),
    ]);
    const signatures = readSignatures(fixture.registry, 'team-a/app', digest);
    expect(signatures.map((s) => [s.witness, s.payload.critical.identity['docker-reference']])).toEqual([
      ['release', `${HOST}/team-a/app:v1`],
      ['release-rsa', `${HOST}/team-a/app`],
    ]);
    expect(signatures[0]?.payload).toMatchObject({
      critical: { image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: { tag: 'v1', 'dev.signet/rule': 'team-a', 'dev.signet/witness': 'release' },
    });
  });

  describe('when the same push is delivered again', () => {
    it('writes nothing and says already-signed', async () => {
      const digest = await fixture.registry.pushImage('team-a/app', 'v1');
      const pipeline = fixture.pipeline();
      await pipeline.handlePush(pushEvent('team-a/app', digest));
      fixture.registry.calls.length = 0;
      const again = await pipeline.handlePush(pushEvent('team-a/app', digest));
      expect(again.outcomes.map((o) => o.status)).toEqual(['already-signed', 'already-signed']);
      expect(fixture.registry.count('PUT')).toBe(0);
      expect(readSignatures(fixture.registry, 'team-a/app', digest)).toHaveLength(2);
    });
  });

  describe('when the push is an index', () => {
    it('signs the children only for rules with recursive: true', async () => {
      const amd64 = await fixture.registry.pushImage('platform/app', 'amd64');
      const arm64 = await fixture.registry.pushImage('platform/app', 'arm64');
      const index = await fixture.registry.pushIndex('platform/app', 'v1', [amd64, arm64]);
      const report = await fixture
        .pipeline()
        .handlePush(
          pushEvent('platform/app', index, { mediaType: 'application/vnd.oci.image.index.v1+json' }),
        );
      const short = (d: string): string => d.slice(7, 15);
      expect(statuses(report)).toEqual({
        [`platform-recursive@${short(index)}`]: 'signed',
        [`platform-flat@${short(index)}`]: 'signed',
        [`platform-recursive@${short(amd64)}`]: 'signed',
        [`platform-recursive@${short(arm64)}`]: 'signed',
      });
      for (const child of [amd64, arm64]) {
        expect(readSignatures(fixture.registry, 'platform/app', child).map((s) => s.witness)).toEqual([
          'release',
        ]);
      }
    });
  });

  describe('when the pushed manifest is itself a signature', () => {
    it('signs nothing: a ** rule must not loop on its own output', async () => {
      const digest = await fixture.registry.pushImage('team-a/app', 'v1');
      const pipeline = fixture.pipeline();
      await pipeline.handlePush(pushEvent('team-a/app', digest));
      // The .sig manifest pushed again under an ordinary tag, as a copy tool might.
      const sig = fixture.registry.manifests.get(`team-a/app:${digest.replace(':', '-')}.sig`);
      const copy = fixture.registry.store(
        'team-a/app',
        'copied',
        sig?.bytes ?? Buffer.alloc(0),
        sig?.mediaType ?? '',
      );
      fixture.registry.calls.length = 0;
      const report = await pipeline.handlePush(pushEvent('team-a/app', copy, { tag: 'copied' }));
      expect(report).toMatchObject({ skipped: 'signature artifact manifest', outcomes: [] });
      expect(fixture.registry.count('PUT')).toBe(0);
    });
  });

  it('skips a manifest that no longer exists', async () => {
    const report = await fixture.pipeline().handlePush(pushEvent('team-a/app', `sha256:${'9'.repeat(64)}`));
    expect(report.skipped).toBe('manifest no longer exists');
  });

  it('skips without a network call a host outside registries[]', async () => {
    const report = await fixture
      .pipeline()
      .handlePush(pushEvent('team-a/app', `sha256:${'9'.repeat(64)}`, { registry: 'elsewhere.example.com' }));
    expect(report.skipped).toBe(REGISTRY_NOT_CONFIGURED);
    expect(fixture.registries.requested).toEqual([]);
  });

  describe('when one rule cannot use its key', () => {
    it('fails that rule with its code and signs with the others', async () => {
      const digest = await fixture.registry.pushImage('broken/app', 'v1');
      const report = await fixture.pipeline().handlePush(pushEvent('broken/app', digest));
      expect(reportFailed(report)).toBe(true);
      expect(byRule(report, 'broken-missing-key')).toMatchObject({
        status: 'failed',
        errorCode: 'KEY_UNREADABLE',
      });
      expect(byRule(report, 'broken-algorithm')).toMatchObject({
        status: 'failed',
        errorCode: 'ALGORITHM_MISMATCH',
      });
      expect(byRule(report, 'broken-good')).toMatchObject({ status: 'signed' });
      expect(readSignatures(fixture.registry, 'broken/app', digest).map((s) => s.witness)).toEqual([
        'release-rsa',
      ]);
    });
  });

  describe('when the image cannot be read', () => {
    it('fails every rule with the registry error', async () => {
      fixture.registry.fail = (call) =>
        call.startsWith('GET manifest') ? new RegistryError('UNAVAILABLE', HOST, 'HTTP 503') : undefined;
      const report = await fixture.pipeline().handlePush(pushEvent('team-a/app', `sha256:${'1'.repeat(64)}`));
      expect(report.outcomes.map((o) => [o.rule, o.status, o.errorCode])).toEqual([
        ['team-a', 'failed', 'UNAVAILABLE'],
        ['team-a-rsa', 'failed', 'UNAVAILABLE'],
      ]);
    });
  });

  describe('when publishing the signatures fails', () => {
    it('fails every rule of the digest with the publish error, and logs each failure', async () => {
      const lines: string[] = [];
      await fixture.cleanup();
      fixture = await signingFixture(
        RULES,
        jsonLogger('info', (line) => lines.push(line)),
      );
      const digest = await fixture.registry.pushImage('team-a/app', 'v1');
      // Someone else's index under the signature tag: never overwritten.
      fixture.registry.store(
        'team-a/app',
        `${digest.replace(':', '-')}.sig`,
        Buffer.from('{"manifests":[]}'),
        'x',
      );
      const report = await fixture.pipeline().handlePush(pushEvent('team-a/app', digest));
      expect(report.outcomes.map((o) => o.errorCode)).toEqual([
        'SIGNATURE_MANIFEST_INVALID',
        'SIGNATURE_MANIFEST_INVALID',
      ]);
      expect(report.outcomes.every((o) => o.keyId !== undefined)).toBe(true);
      const logged = lines.map((l) => JSON.parse(l) as { message: string; rule: string; code: string });
      expect(logged.map((l) => [l.message, l.rule, l.code])).toEqual([
        ['signing failed', 'team-a', 'SIGNATURE_MANIFEST_INVALID'],
        ['signing failed', 'team-a-rsa', 'SIGNATURE_MANIFEST_INVALID'],
      ]);
    });
  });
});

describe('rules with bundle: true', () => {
  it('write the .sig layer and a Sigstore bundle, then find both present', async () => {
    const digest = await fixture.registry.pushImage('bundled/app', 'v1');
    const pipeline = fixture.pipeline();
    const first = await pipeline.handlePush(pushEvent('bundled/app', digest));
    expect(first.outcomes).toEqual([
      expect.objectContaining({
        status: 'signed',
        bundle: 'written',
        bundleRef: expect.stringMatching(new RegExp(`^${HOST}/bundled/app@sha256:`)),
      }),
    ]);
    expect(readFallbackBundles(fixture.registry, 'bundled/app', digest)).toEqual(['release']);
    const again = await pipeline.handlePush(pushEvent('bundled/app', digest));
    expect(again.outcomes).toEqual([
      expect.objectContaining({ status: 'already-signed', bundle: 'present' }),
    ]);
    expect(again.outcomes[0]?.bundleRef).toBeUndefined();
  });

  describe('when the bundle cannot be published', () => {
    it('fails the rule, keeps the cosign signature, and writes only the bundle on re-delivery', async () => {
      const digest = await fixture.registry.pushImage('bundled/app', 'v1');
      const pipeline = fixture.pipeline();
      fixture.registry.failNext('GET referrers', new RegistryError('RATE_LIMITED', HOST, 'HTTP 429'));
      const first = await pipeline.handlePush(pushEvent('bundled/app', digest));
      expect(first.outcomes).toEqual([
        expect.objectContaining({ status: 'failed', errorCode: 'RATE_LIMITED' }),
      ]);
      expect(readSignatures(fixture.registry, 'bundled/app', digest).map((s) => s.witness)).toEqual([
        'release',
      ]);

      const second = await pipeline.handlePush(pushEvent('bundled/app', digest));
      expect(second.outcomes).toEqual([expect.objectContaining({ status: 'signed', bundle: 'written' })]);
      expect(readSignatures(fixture.registry, 'bundled/app', digest)).toHaveLength(1);
      expect(readFallbackBundles(fixture.registry, 'bundled/app', digest)).toEqual(['release']);
    });

    it('fails the rule when the bundle publisher throws', async () => {
      const digest = await fixture.registry.pushImage('bundled/app', 'v1');
      const bundles = new BundlePublisher();
      jest.spyOn(bundles, 'publish').mockRejectedValue(new TypeError('boom'));
      const report = await fixture.pipeline({ bundles }).handlePush(pushEvent('bundled/app', digest));
      expect(report.outcomes).toEqual([expect.objectContaining({ status: 'failed', errorCode: 'INTERNAL' })]);
    });
  });

  it('are not attempted for a rule whose cosign signature failed', async () => {
    const digest = await fixture.registry.pushImage('bundled/app', 'v1');
    const publisher = new SignaturePublisher();
    jest.spyOn(publisher, 'publish').mockResolvedValue({
      outcomes: [{ $case: 'failed', id: 'bundled', error: new RegistryError('DENIED', HOST, 'HTTP 403') }],
      signatureTag: 'x',
      manifestDigest: undefined,
      rounds: 1,
    });
    const report = await fixture.pipeline({ publisher }).handlePush(pushEvent('bundled/app', digest));
    expect(report.outcomes).toEqual([expect.objectContaining({ status: 'failed', errorCode: 'DENIED' })]);
    expect(fixture.registry.count('GET referrers')).toBe(0);
  });
});

describe('a publisher that leaves a candidate without an outcome', () => {
  it('reports the rule failed rather than signed', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'v1');
    const publisher = new SignaturePublisher();
    jest.spyOn(publisher, 'publish').mockResolvedValue({
      outcomes: [{ $case: 'present', id: 'team-a' }],
      signatureTag: 'x',
      manifestDigest: undefined,
      rounds: 0,
    });
    const report = await fixture.pipeline({ publisher }).handlePush(pushEvent('team-a/app', digest));
    expect(report.outcomes.map((o) => [o.rule, o.status])).toEqual([
      ['team-a', 'already-signed'],
      ['team-a-rsa', 'failed'],
    ]);
  });
});

describe('signImage', () => {
  it('resolves a tag and signs with the rules of either trigger', async () => {
    const digest = await fixture.registry.pushImage('manual/app', 'v1');
    const report = await fixture.pipeline().signImage(parseReference(`${HOST}/manual/app:v1`));
    expect(report).toMatchObject({ digest, tag: 'v1', skipped: undefined });
    expect(report.outcomes.map((o) => [o.rule, o.status])).toEqual([['release-manual', 'signed']]);
  });

  it('signs with exactly the named rule', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'v1');
    const report = await fixture
      .pipeline()
      .signImage(parseReference(`${HOST}/team-a/app@${digest}`), 'team-a-rsa');
    expect(report.outcomes.map((o) => o.rule)).toEqual(['team-a-rsa']);
  });

  it.each([
    ['an unknown rule', 'nope', 'RULE_UNKNOWN'],
    ['a disabled rule', 'switched-off', 'RULE_UNKNOWN'],
  ])('refuses %s', async (_, rule, code) => {
    await expect(fixture.pipeline().signImage(parseReference(`${HOST}/manual/app:v1`), rule)).toThrowWithCode(
      ConfigError,
      code,
    );
  });

  it('refuses a tag the registry does not have', async () => {
    await expect(fixture.pipeline().signImage(parseReference(`${HOST}/team-a/app:v9`))).toThrowWithCode(
      ConfigError,
      'CONFIG_INVALID',
    );
  });
});
