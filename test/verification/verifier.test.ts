import { RegistryError } from '../../lib/core/errors';
import { KeyRing } from '../../lib/keys/keyring';
import type { Policy, Witness } from '../../lib/config/types';
import { MAX_WARNING_LENGTH } from '../../lib/verification/decision';
import { ImageVerifier } from '../../lib/verification/verifier';
import {
  MemoryRegistries,
  MemoryRegistry,
  policy,
  testKey,
  verificationConfig,
  type TestKey,
} from './helpers';

const HOST = 'registry.example.com';
const REPO = 'team-a/app';

let registries: MemoryRegistries;
let registry: MemoryRegistry;
let release: TestKey;
let security: TestKey;
let other: TestKey;
let digest: string;

beforeAll(() => {
  release = testKey('release');
  security = testKey('security', 'rsa-2048');
  other = testKey('other');
});

beforeEach(async () => {
  registries = new MemoryRegistries();
  registry = registries.add(HOST);
  digest = await registry.pushImage(REPO, 'v1');
});

function verifier(
  policies: readonly Policy[],
  admission: Parameters<typeof verificationConfig>[2] = {},
  witnesses: readonly Witness[] = [release.witness, security.witness, other.witness],
  now?: () => number,
): ImageVerifier {
  const config = verificationConfig(witnesses, policies, admission);
  return new ImageVerifier({
    config,
    registries,
    keys: new KeyRing({ witnesses, baseDir: '/nonexistent' }),
    signatures: { bundles: false },
    ...(now !== undefined ? { now } : {}),
  });
}

const teamA = (overrides: Partial<Policy> = {}): Policy =>
  policy({
    name: 'team-a',
    images: [`${HOST}/team-a/**`],
    attestors: [{ witnesses: ['release'], count: 1 }],
    ...overrides,
  });

describe('ImageVerifier', () => {
  describe('when the image is signed by the witness in cosign format', () => {
    it('allows it, resolving the tag with one HEAD', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const decision = await verifier([teamA()]).verify(`${HOST}/${REPO}:v1`, { namespace: 'prod' });
      expect(decision).toMatchObject({
        allowed: true,
        verdict: 'allow',
        digest,
        reason: undefined,
        warnings: [],
      });
      expect(decision.policies[0]).toMatchObject({
        policy: 'team-a',
        verified: true,
        effect: 'pass',
        cached: false,
      });
      expect(decision.policies[0]?.attestors[0]?.witnesses[0]).toMatchObject({
        witness: 'release',
        valid: true,
        signature: { source: 'cosign', algorithm: 'ECDSA_SHA_256', identity: `${HOST}/${REPO}` },
      });
      expect(registry.count('HEAD')).toBe(1);
    });

    it.each([
      ['RSA PKCS#1 v1.5', 'rsa-2048', {}, 'RSASSA_PKCS1_V1_5_SHA_256'],
      [
        'RSA-PSS with a hash-length salt',
        'rsa-2048',
        { padding: 'pss', saltLength: 32 },
        'RSASSA_PSS_SHA_256',
      ],
      [
        'RSA-PSS with the largest salt',
        'rsa-2048',
        { padding: 'pss', saltLength: 256 - 32 - 2 },
        'RSASSA_PSS_SHA_256',
      ],
      ['ECDSA P-384 / SHA-384', 'ec-p384', { hash: 'sha384' }, 'ECDSA_SHA_384'],
    ] as const)('accepts %s signatures', async (_name, kind, options, algorithm) => {
      const key = testKey('release', kind);
      await registry.sign(REPO, digest, key.privateKey, options);
      const decision = await verifier([teamA()], {}, [key.witness]).verify(`${HOST}/${REPO}@${digest}`);
      expect(decision.allowed).toBe(true);
      expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature?.algorithm).toBe(algorithm);
    });
  });

  describe('when the image is not signed', () => {
    it('denies with NO_SIGNATURES, naming the image and the policy', async () => {
      const decision = await verifier([teamA()]).verify(`${HOST}/${REPO}:v1`);
      expect(decision).toMatchObject({ allowed: false, verdict: 'deny', reason: { code: 'NO_SIGNATURES' } });
      expect(decision.reference).toBe(`${HOST}/${REPO}:v1`);
      expect(decision.message).toContain('policy "team-a"');
      expect(decision.message).toContain(`${HOST}/${REPO}:sha256-`);
    });
  });

  describe('when only another key signed', () => {
    it('denies with UNTRUSTED_SIGNER', async () => {
      await registry.sign(REPO, digest, other.privateKey);
      const decision = await verifier([teamA()]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.reason).toMatchObject({ code: 'UNTRUSTED_SIGNER', witness: 'release', signatures: 1 });
    });
  });

  describe('when the witness signed a payload naming another digest', () => {
    it('denies with DIGEST_MISMATCH', async () => {
      const otherDigest = await registry.pushImage(REPO, 'v0');
      await registry.sign(REPO, digest, release.privateKey, { payloadDigest: otherDigest });
      const decision = await verifier([teamA()]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.reason).toMatchObject({
        code: 'DIGEST_MISMATCH',
        expected: digest,
        signed: [otherDigest],
      });
    });
  });

  describe('when the stored payload is not what was signed', () => {
    it('denies with UNTRUSTED_SIGNER', async () => {
      const { cosignPayload } = await import('../support/cosign-writer');
      await registry.sign(REPO, digest, release.privateKey, {
        signedBytes: cosignPayload(`${HOST}/x`, digest),
      });
      const decision = await verifier([teamA()]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.reason?.code).toBe('UNTRUSTED_SIGNER');
    });
  });

  describe('when a default-mode signature names tag v1', () => {
    beforeEach(async () => {
      await registry.putManifest(
        REPO,
        'v2',
        registry.manifests.get(`${REPO}:v1`)!.bytes,
        'application/vnd.oci.image.manifest.v1+json',
      );
      await registry.sign(REPO, digest, release.privateKey, { tag: 'v1' });
    });

    it('allows the image admitted as :v1', async () => {
      expect((await verifier([teamA()]).verify(`${HOST}/${REPO}:v1`)).allowed).toBe(true);
    });

    it('denies the same digest admitted as :v2 with TAG_NOT_SIGNED', async () => {
      const decision = await verifier([teamA()]).verify(`${HOST}/${REPO}:v2`);
      expect(decision.reason).toMatchObject({ code: 'TAG_NOT_SIGNED', tag: 'v2', signedTags: ['v1'] });
    });

    it('allows the digest reference, whatever the identity tag', async () => {
      expect((await verifier([teamA()]).verify(`${HOST}/${REPO}@${digest}`)).allowed).toBe(true);
    });
  });

  describe('signed identity', () => {
    /** The digest of team-a/app, copied with its `.sig` (signed for team-a/app) into `repository` on `host`. */
    async function copiedWithSignature(host: string, repository: string): Promise<string> {
      const target = host === HOST ? registry : registries.add(host);
      const copied = await target.pushImage(repository, 'v1');
      const { cosignPayload } = await import('../support/cosign-writer');
      await target.sign(repository, copied, release.privateKey, {
        payload: cosignPayload(`${HOST}/${REPO}`, copied),
      });
      return copied;
    }

    describe('under matchRepository (the default)', () => {
      it('denies a signature copied with the image into another repository, naming both', async () => {
        await copiedWithSignature(HOST, 'prod/app');
        const decision = await verifier([teamA({ images: [`${HOST}/prod/**`] })]).verify(
          `${HOST}/prod/app:v1`,
        );
        expect(decision.allowed).toBe(false);
        expect(decision.reason).toMatchObject({
          code: 'IDENTITY_MISMATCH',
          witness: 'release',
          required: `${HOST}/prod/app`,
          signed: [`${HOST}/${REPO}`],
        });
        expect(decision.message).toContain(`${HOST}/${REPO}`);
      });

      it('denies a replica under another host', async () => {
        await copiedWithSignature('mirror.example.com', REPO);
        const decision = await verifier([teamA({ images: ['mirror.example.com/**'] })]).verify(
          `mirror.example.com/${REPO}:v1`,
        );
        expect(decision.reason?.code).toBe('IDENTITY_MISMATCH');
      });

      it('compares hosts canonically: case and the HTTPS default port do not matter', async () => {
        await registry.sign(REPO, digest, release.privateKey);
        const upper = await verifier([teamA()]).verify(`REGISTRY.Example.com:443/${REPO}:v1`);
        expect(upper).toMatchObject({ allowed: true, reference: `${HOST}/${REPO}:v1` });
      });
    });

    it('admits a replica under remapIdentity (prefix checked as signedPrefix)', async () => {
      await copiedWithSignature('mirror.example.com', REPO);
      const remapped = teamA({
        images: ['mirror.example.com/**'],
        signedIdentity: { type: 'remapIdentity', prefix: 'mirror.example.com', signedPrefix: HOST },
      });
      expect((await verifier([remapped]).verify(`mirror.example.com/${REPO}:v1`)).allowed).toBe(true);
    });

    it('admits under exactRepository only the named repository', async () => {
      await copiedWithSignature(HOST, 'prod/app');
      const exact = (dockerRepository: string): Policy =>
        teamA({ images: [`${HOST}/prod/**`], signedIdentity: { type: 'exactRepository', dockerRepository } });
      expect((await verifier([exact(`${HOST}/${REPO}`)]).verify(`${HOST}/prod/app:v1`)).allowed).toBe(true);
      const other = await verifier([exact(`${HOST}/team-b/app`)]).verify(`${HOST}/prod/app:v1`);
      expect(other.reason).toMatchObject({ code: 'IDENTITY_MISMATCH', required: `${HOST}/team-b/app` });
    });

    it('admits any repository under matchDigest', async () => {
      await copiedWithSignature(HOST, 'prod/app');
      const anywhere = teamA({ images: [`${HOST}/prod/**`], signedIdentity: { type: 'matchDigest' } });
      expect((await verifier([anywhere]).verify(`${HOST}/prod/app:v1`)).allowed).toBe(true);
    });
  });

  describe('with an attestor set of 2 of 3 witnesses', () => {
    const twoOfThree = () =>
      teamA({ attestors: [{ witnesses: ['release', 'security', 'other'], count: 2 }] });

    it('denies with INSUFFICIENT_WITNESSES when one signed', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const decision = await verifier([twoOfThree()]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.reason).toMatchObject({ code: 'INSUFFICIENT_WITNESSES', required: 2, valid: 1 });
      expect(decision.policies[0]?.attestors[0]).toMatchObject({ count: 2, valid: 1, passed: false });
    });

    it('allows when two signed', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      await registry.sign(REPO, digest, security.privateKey);
      const decision = await verifier([twoOfThree()]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.allowed).toBe(true);
      expect(decision.policies[0]?.attestors[0]).toMatchObject({ valid: 2, passed: true });
    });

    it('counts one key under two witness names once', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const alias: Witness = { ...release.witness, name: 'release-alias' };
      const decision = await verifier(
        [teamA({ attestors: [{ witnesses: ['release', 'release-alias'], count: 2 }] })],
        {},
        [release.witness, alias],
      ).verify(`${HOST}/${REPO}:v1`);
      expect(decision.reason).toMatchObject({ code: 'INSUFFICIENT_WITNESSES', required: 2, valid: 1 });
    });
  });

  describe('with two attestor sets', () => {
    const both = () =>
      teamA({
        attestors: [
          { witnesses: ['release'], count: 1 },
          { witnesses: ['security'], count: 1 },
        ],
      });

    it('denies when only the first set is satisfied', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const decision = await verifier([both()]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.allowed).toBe(false);
      expect(decision.reason).toMatchObject({ code: 'UNTRUSTED_SIGNER', witness: 'security' });
      expect(decision.policies[0]?.attestors.map((a) => a.passed)).toEqual([true, false]);
    });

    it('allows when every set is satisfied', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      await registry.sign(REPO, digest, security.privateKey);
      expect((await verifier([both()]).verify(`${HOST}/${REPO}:v1`)).allowed).toBe(true);
    });
  });

  describe('in audit mode', () => {
    it('admits an unsigned image with a warning under 120 characters', async () => {
      const decision = await verifier([teamA({ mode: 'audit' })]).verify(`${HOST}/${REPO}:v1`);
      expect(decision).toMatchObject({ allowed: true, verdict: 'warn', reason: { code: 'NO_SIGNATURES' } });
      expect(decision.warnings).toHaveLength(1);
      expect(decision.warnings[0]).toContain('team-a');
      expect(decision.warnings[0]).toContain('NO_SIGNATURES');
      expect(decision.warnings[0]!.length).toBeLessThan(120);
    });

    it('keeps warnings under 120 characters for very long references', async () => {
      const long = `${HOST}/team-a/${'very-long-name/'.repeat(12)}app:${'t'.repeat(100)}`;
      const decision = await verifier([teamA({ mode: 'audit', name: 'p'.repeat(60) })]).verify(long);
      expect(decision.warnings[0]!.length).toBeLessThanOrEqual(MAX_WARNING_LENGTH);
    });
  });

  describe('when several policies select the image', () => {
    it('denies when any enforcing policy fails', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const strict = policy({
        name: 'strict',
        images: [`${HOST}/**`],
        attestors: [{ witnesses: ['security'], count: 1 }],
      });
      const decision = await verifier([teamA(), strict]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.allowed).toBe(false);
      expect(decision.policies.map((p) => [p.policy, p.effect])).toEqual([
        ['team-a', 'pass'],
        ['strict', 'deny'],
      ]);
      expect(decision.message).toContain('policy "strict"');
    });

    it('reads the signatures once for all of them', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      await registry.sign(REPO, digest, security.privateKey);
      const strict = policy({
        name: 'strict',
        images: [`${HOST}/**`],
        attestors: [{ witnesses: ['security'], count: 1 }],
      });
      await verifier([teamA(), strict]).verify(`${HOST}/${REPO}:v1`);
      expect(registry.count('GET manifest')).toBe(1);
      // Both simple-mode payloads are byte-identical: one blob, fetched once.
      expect(registry.count('GET blob')).toBe(1);
    });

    it('looks for Sigstore bundles only for a policy the cosign signatures do not satisfy, once', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const witnesses = [release.witness, security.witness];
      const withBundles = (policies: readonly Policy[]) =>
        new ImageVerifier({
          config: verificationConfig(witnesses, policies),
          registries,
          keys: new KeyRing({ witnesses, baseDir: '/nonexistent' }),
        });
      expect((await withBundles([teamA()]).verify(`${HOST}/${REPO}:v1`)).allowed).toBe(true);
      expect(registry.count('GET referrers')).toBe(0);

      const strict = policy({
        name: 'strict',
        images: [`${HOST}/**`],
        attestors: [{ witnesses: ['security'], count: 1 }],
      });
      const other = policy({
        name: 'other',
        images: [`${HOST}/**`],
        attestors: [{ witnesses: ['security'], count: 1 }],
      });
      registry.calls.length = 0;
      const decision = await withBundles([teamA(), strict, other]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.policies.map((p) => [p.policy, p.effect])).toEqual([
        ['team-a', 'pass'],
        ['strict', 'deny'],
        ['other', 'deny'],
      ]);
      expect(registry.count('GET referrers')).toBe(1);
      // The .sig manifest, and the referrers fallback tag of a registry without the API: once each.
      expect(registry.count('GET manifest')).toBe(2);
    });
  });

  describe('when no policy selects the image', () => {
    it.each([
      ['deny', false, 'deny', 0],
      ['allow', true, 'allow', 0],
      ['warn', true, 'warn', 1],
    ] as const)('noMatchingPolicy %s: allowed=%s', async (noMatchingPolicy, allowed, verdict, warnings) => {
      const decision = await verifier([teamA()], { noMatchingPolicy }).verify(`${HOST}/team-b/app:v1`);
      expect(decision).toMatchObject({ allowed, verdict, reason: { code: 'NO_MATCHING_POLICY' } });
      expect(decision.warnings).toHaveLength(warnings);
      expect(registries.requested).toEqual([]);
    });

    it('never asks for a client of a registry no policy covers', async () => {
      const decision = await verifier([teamA()], { noMatchingPolicy: 'allow' }).verify(
        'evil.example.net:8443/x/y:v1',
      );
      expect(decision.allowed).toBe(true);
      expect(registries.requested).toEqual([]);
    });

    it('does not select policies of other namespaces or clusters', async () => {
      const scoped = teamA({ namespaces: ['prod-*'], clusters: ['eu-1'] });
      const v = verifier([scoped]);
      expect((await v.verify(`${HOST}/${REPO}:v1`, { namespace: 'dev', cluster: 'eu-1' })).reason?.code).toBe(
        'NO_MATCHING_POLICY',
      );
      expect(
        (await v.verify(`${HOST}/${REPO}:v1`, { namespace: 'prod-a', cluster: 'us-1' })).reason?.code,
      ).toBe('NO_MATCHING_POLICY');
      expect(
        (await v.verify(`${HOST}/${REPO}:v1`, { namespace: 'prod-a', cluster: 'eu-1' })).reason?.code,
      ).toBe('NO_SIGNATURES');
      expect(registries.requested).toEqual([HOST, HOST]);
    });

    it('ignores disabled policies', async () => {
      const decision = await verifier([teamA({ enabled: false })]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.reason?.code).toBe('NO_MATCHING_POLICY');
      expect(registries.requested).toEqual([]);
    });
  });

  describe('in an excluded namespace', () => {
    it('admits without any work', async () => {
      const decision = await verifier([teamA()], { excludeNamespaces: ['kube-system'] }).verify(
        'not a reference!',
        {
          namespace: 'kube-system',
        },
      );
      expect(decision).toMatchObject({ allowed: true, verdict: 'allow' });
      expect(registries.requested).toEqual([]);
    });
  });

  describe('when the reference is malformed', () => {
    it('denies with INVALID_REFERENCE naming the field', async () => {
      const decision = await verifier([teamA()], { noMatchingPolicy: 'allow' }).verify(
        `${HOST}/Team-A/App:v1`,
        {},
        'spec.containers[1].image',
      );
      expect(decision).toMatchObject({
        allowed: false,
        reason: { code: 'INVALID_REFERENCE', field: 'spec.containers[1].image' },
      });
      expect(decision.message).toContain('spec.containers[1].image');
    });
  });

  describe('when the tag does not exist', () => {
    it('denies with IMAGE_NOT_FOUND', async () => {
      const decision = await verifier([teamA()]).verify(`${HOST}/${REPO}:nope`);
      expect(decision.reason).toMatchObject({ code: 'IMAGE_NOT_FOUND', image: `${HOST}/${REPO}:nope` });
    });
  });

  describe('when the registry fails', () => {
    it.each([
      ['UNREACHABLE', 'REGISTRY_UNREACHABLE'],
      ['UNAVAILABLE', 'REGISTRY_UNREACHABLE'],
      ['RATE_LIMITED', 'REGISTRY_RATE_LIMITED'],
      ['UNAUTHORIZED', 'REGISTRY_ERROR'],
    ] as const)('denies %s with %s (not NO_SIGNATURES)', async (registryCode, code) => {
      await registry.sign(REPO, digest, release.privateKey);
      registry.fail = (call) =>
        call.startsWith('GET manifest') ? new RegistryError(registryCode, HOST, 'failed') : undefined;
      const decision = await verifier([teamA()]).verify(`${HOST}/${REPO}:v1`);
      expect(decision).toMatchObject({ allowed: false, reason: { code, registry: HOST } });
    });

    it('admits with a warning when the policy says failurePolicy: allow', async () => {
      registry.fail = () => new RegistryError('UNREACHABLE', HOST, 'connect ECONNREFUSED');
      const decision = await verifier([teamA({ failurePolicy: 'allow' })]).verify(`${HOST}/${REPO}:v1`);
      expect(decision).toMatchObject({
        allowed: true,
        verdict: 'warn',
        reason: { code: 'REGISTRY_UNREACHABLE' },
      });
      expect(decision.warnings[0]).toContain('unverified');
    });

    it('denies in audit mode too: audit admits unverified images, not outages', async () => {
      registry.fail = () => new RegistryError('UNREACHABLE', HOST, 'connect ECONNREFUSED');
      const decision = await verifier([teamA({ mode: 'audit' })]).verify(`${HOST}/${REPO}:v1`);
      expect(decision).toMatchObject({
        allowed: false,
        verdict: 'deny',
        reason: { code: 'REGISTRY_UNREACHABLE' },
      });
    });

    it('admits with an "unverified" warning in audit mode under failurePolicy: allow', async () => {
      registry.fail = () => new RegistryError('RATE_LIMITED', HOST, 'HTTP 429');
      const decision = await verifier([teamA({ mode: 'audit', failurePolicy: 'allow' })]).verify(
        `${HOST}/${REPO}:v1`,
      );
      expect(decision).toMatchObject({
        allowed: true,
        verdict: 'warn',
        reason: { code: 'REGISTRY_RATE_LIMITED' },
      });
      expect(decision.warnings[0]).toContain('unverified');
    });

    it('still denies a missing signature under failurePolicy: allow', async () => {
      const decision = await verifier([teamA({ failurePolicy: 'allow' })]).verify(`${HOST}/${REPO}:v1`);
      expect(decision).toMatchObject({ allowed: false, reason: { code: 'NO_SIGNATURES' } });
    });

    it('does not waive malformed content under failurePolicy: allow', async () => {
      registry.fail = (call) =>
        call.startsWith('GET manifest') ? new RegistryError('PROTOCOL', HOST, 'not JSON') : undefined;
      const decision = await verifier([teamA({ failurePolicy: 'allow' })]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.allowed).toBe(false);
    });

    it('denies an unexpected exception with INTERNAL_ERROR, even under failurePolicy: allow', async () => {
      registry.fail = (call) => (call.startsWith('GET manifest') ? new TypeError('boom') : undefined);
      const decision = await verifier([teamA({ failurePolicy: 'allow' })]).verify(`${HOST}/${REPO}:v1`);
      expect(decision).toMatchObject({ allowed: false, reason: { code: 'INTERNAL_ERROR' } });
    });
  });

  describe('when a witness key cannot be loaded', () => {
    const missing: Witness = {
      name: 'release',
      key: { $case: 'publicKeyFile', path: '/nonexistent/release.pub' },
      description: undefined,
    };

    it('denies with KEY_UNAVAILABLE', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const decision = await verifier([teamA()], {}, [missing]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.reason).toMatchObject({ code: 'KEY_UNAVAILABLE', witness: 'release' });
    });

    it('still denies under failurePolicy: allow (a missing key file is a mistake, not an outage)', async () => {
      const decision = await verifier([teamA({ failurePolicy: 'allow' })], {}, [missing]).verify(
        `${HOST}/${REPO}:v1`,
      );
      expect(decision).toMatchObject({
        verdict: 'deny',
        reason: { code: 'KEY_UNAVAILABLE', keyCode: 'KEY_UNREADABLE' },
      });
    });
  });

  describe('with a keyless witness', () => {
    it('does not take signatures made with keys for keyless ones: UNTRUSTED_SIGNER', async () => {
      const keyless: Witness = {
        name: 'ci',
        key: {
          $case: 'keyless',
          issuer: 'https://token.actions.githubusercontent.com',
          subject: { $case: 'exact', subject: 'repo:x' },
          trustedRootPath: undefined,
          github: undefined,
        },
        description: undefined,
      };
      await registry.sign(REPO, digest, release.privateKey);
      const decision = await verifier([teamA({ attestors: [{ witnesses: ['ci'], count: 1 }] })], {}, [
        keyless,
      ]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.reason).toMatchObject({ code: 'UNTRUSTED_SIGNER', witness: 'ci' });
    });
  });

  describe('with malformed signature layers next to a good one', () => {
    it('skips them and verifies the good one', async () => {
      const good = await registry.sign(REPO, digest, release.privateKey);
      const noSignature = { ...good, annotations: {} };
      const wrongType = { ...good, mediaType: 'application/octet-stream' };
      const missingBlob = { ...good, digest: `sha256:${'0'.repeat(64)}` };
      await registry.putSignatureLayers(REPO, digest, [noSignature, wrongType, missingBlob, good]);
      const decision = await verifier([teamA()]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.allowed).toBe(true);
    });

    it('counts them as signatures that do not verify', async () => {
      const good = await registry.sign(REPO, digest, release.privateKey);
      await registry.putSignatureLayers(REPO, digest, [{ ...good, annotations: {} }]);
      const decision = await verifier([teamA()]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.reason).toMatchObject({ code: 'UNTRUSTED_SIGNER', signatures: 1 });
    });
  });

  describe('mutateDigest', () => {
    it('pins an admitted tag reference as written, plus @digest', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const decision = await verifier([teamA({ mutateDigest: true })]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.mutatedImage).toBe(`${HOST}/${REPO}:v1@${digest}`);
    });

    it('leaves digest references alone', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const decision = await verifier([teamA({ mutateDigest: true })]).verify(`${HOST}/${REPO}@${digest}`);
      expect(decision.mutatedImage).toBeUndefined();
      expect(registry.count('HEAD')).toBe(0);
    });

    it('does not pin denied images', async () => {
      const decision = await verifier([teamA({ mutateDigest: true })]).verify(`${HOST}/${REPO}:v1`);
      expect(decision.mutatedImage).toBeUndefined();
    });
  });

  describe('caching', () => {
    it('reuses a positive result without reading signatures again', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const v = verifier([teamA()]);
      await v.verify(`${HOST}/${REPO}:v1`);
      const again = await v.verify(`${HOST}/${REPO}:v1`);
      expect(again.allowed).toBe(true);
      expect(again.policies[0]?.cached).toBe(true);
      // The tag is resolved again (one HEAD per request); the signatures are not read again.
      expect(registry.count('HEAD')).toBe(2);
      expect(registry.count('GET manifest')).toBe(1);
      const byDigest = await v.verify(`${HOST}/${REPO}@${digest}`);
      expect(byDigest.allowed).toBe(true);
    });

    it('does not cache failures', async () => {
      const v = verifier([teamA()]);
      expect((await v.verify(`${HOST}/${REPO}:v1`)).allowed).toBe(false);
      await registry.sign(REPO, digest, release.privateKey);
      expect((await v.verify(`${HOST}/${REPO}:v1`)).allowed).toBe(true);
    });

    it('keys default-mode results by the admitted tag', async () => {
      await registry.putManifest(
        REPO,
        'v2',
        registry.manifests.get(`${REPO}:v1`)!.bytes,
        'application/vnd.oci.image.manifest.v1+json',
      );
      await registry.sign(REPO, digest, release.privateKey, { tag: 'v1' });
      const v = verifier([teamA()]);
      expect((await v.verify(`${HOST}/${REPO}:v1`)).allowed).toBe(true);
      expect((await v.verify(`${HOST}/${REPO}:v2`)).allowed).toBe(false);
    });

    it('expires results after cacheTtlSeconds', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      let now = 1_000_000;
      const v = verifier([teamA()], { cacheTtlSeconds: 60 }, undefined, () => now);
      await v.verify(`${HOST}/${REPO}@${digest}`);
      now += 59_000;
      expect((await v.verify(`${HOST}/${REPO}@${digest}`)).policies[0]?.cached).toBe(true);
      now += 2_000;
      expect((await v.verify(`${HOST}/${REPO}@${digest}`)).policies[0]?.cached).toBe(false);
    });

    it('runs concurrent identical verifications once', async () => {
      await registry.sign(REPO, digest, release.privateKey);
      const v = verifier([teamA()]);
      const results = await Promise.all([1, 2, 3, 4].map(() => v.verify(`${HOST}/${REPO}@${digest}`)));
      expect(results.every((r) => r.allowed)).toBe(true);
      expect(registry.count('GET manifest')).toBe(1);
    });

    describe('resolving a tag', () => {
      /** Holds every HEAD until `release()`; what the registry answers is decided after. */
      function holdHeads(): { release: () => void } {
        let release = (): void => undefined;
        const held = new Promise<void>((resolve) => (release = resolve));
        registry.before = (call) => (call.startsWith('HEAD') ? held : undefined);
        return { release };
      }

      it('shares one HEAD between concurrent reviews of the same tag', async () => {
        await registry.sign(REPO, digest, release.privateKey);
        const v = verifier([teamA()]);
        const gate = holdHeads();
        const pending = [1, 2, 3].map(() => v.verify(`${HOST}/${REPO}:v1`));
        gate.release();
        const results = await Promise.all(pending);
        expect(results.map((r) => r.allowed)).toEqual([true, true, true]);
        expect(registry.count('HEAD')).toBe(1);
      });

      it('resolves the tag again for a later review: a moved tag is seen', async () => {
        await registry.sign(REPO, digest, release.privateKey);
        const v = verifier([teamA()]);
        expect((await v.verify(`${HOST}/${REPO}:v1`)).digest).toBe(digest);
        const moved = await registry.pushImage(REPO, 'v1', 'another image');
        expect((await v.verify(`${HOST}/${REPO}:v1`)).digest).toBe(moved);
        expect(registry.count('HEAD')).toBe(2);
      });

      it("does its own HEAD when the shared one ended by another review's deadline", async () => {
        await registry.sign(REPO, digest, release.privateKey);
        const v = verifier([teamA()]);
        const gate = holdHeads();
        const deadline = new AbortController();
        const first = v.verify(`${HOST}/${REPO}:v1`, {}, 'image', { signal: deadline.signal });
        const second = v.verify(`${HOST}/${REPO}:v1`);
        deadline.abort();
        gate.release();
        expect((await first).allowed).toBe(false);
        expect(await second).toMatchObject({ allowed: true, digest });
        expect(registry.count('HEAD')).toBe(2);
      });
    });
  });

  describe('verifyAll', () => {
    it('verifies each distinct image once, whatever its spelling', async () => {
      const hub = registries.add('docker.io');
      const hubDigest = await hub.pushImage('library/nginx', 'latest');
      await hub.sign('library/nginx', hubDigest, release.privateKey);
      const v = verifier([
        policy({
          name: 'hub',
          images: ['docker.io/library/*'],
          attestors: [{ witnesses: ['release'], count: 1 }],
        }),
      ]);
      const images = [
        'nginx',
        'nginx:latest',
        'docker.io/library/nginx',
        'index.docker.io/library/nginx:latest',
        'nginx',
      ];
      const decisions = await v.verifyAll(
        images.map((image, i) => ({ image, field: `spec.containers[${i}].image` })),
      );
      expect([...decisions.keys()]).toEqual([
        'nginx',
        'nginx:latest',
        'docker.io/library/nginx',
        'index.docker.io/library/nginx:latest',
      ]);
      expect([...decisions.values()].every((d) => d.allowed && d.digest === hubDigest)).toBe(true);
      expect(hub.count('HEAD')).toBe(1);
      expect(hub.count('GET manifest')).toBe(1);
    });
  });
});
