import { KeyRing } from '../../lib/keys/keyring';
import { signatureTag } from '../../lib/core/reference';
import { parseBundle } from '../../lib/cosign/bundle';
import { preAuthEncoding } from '../../lib/cosign/dsse';
import { identityTag } from '../../lib/cosign/payload';
import { loadSignatures } from '../../lib/verification/signatures';
import { ImageVerifier } from '../../lib/verification/verifier';
import { cosignPayload } from '../support/cosign-writer';
import { MemoryRegistries, MemoryRegistry, policy, testKey, verificationConfig } from './helpers';

const HOST = 'registry.example.com';
const REPO = 'team-a/app';
const release = testKey('release');

let registries: MemoryRegistries;
let registry: MemoryRegistry;
let digest: string;

beforeEach(async () => {
  registries = new MemoryRegistries();
  registry = registries.add(HOST);
  digest = await registry.pushImage(REPO, 'v1');
});

describe('preAuthEncoding', () => {
  it('follows the DSSE v1 example', () => {
    expect(preAuthEncoding('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });
});

describe('identityTag', () => {
  it.each([
    ['registry.example.com/team-a/app', undefined],
    ['registry.example.com/team-a/app:v1', 'v1'],
    ['127.0.0.1:5000/team-a/app', undefined],
    ['127.0.0.1:5000/team-a/app:1.2.3', '1.2.3'],
    ['index.docker.io/library/nginx:latest@sha256:' + 'a'.repeat(64), 'latest'],
  ])('%s → %s', (identity, tag) => {
    expect(identityTag(identity)).toBe(tag);
  });
});

describe('loadSignatures', () => {
  it('reads each cosign layer into signed bytes, signature and claims', async () => {
    await registry.sign(REPO, digest, release.privateKey, { tag: 'v1' });
    const loaded = await loadSignatures(registry, REPO, digest, {
      bundles: false,
      maxLayers: 10,
      maxBundles: 10,
    });
    expect(loaded.signatureRef).toBe(`${HOST}/${REPO}:${signatureTag(digest)}`);
    expect(loaded.rejected).toEqual([]);
    expect(loaded.evidence).toHaveLength(1);
    expect(loaded.evidence[0]).toMatchObject({
      source: 'cosign',
      claims: { digests: [digest], identity: `${HOST}/${REPO}:v1`, tag: 'v1' },
    });
  });

  it('rejects layers it cannot read, saying why', async () => {
    const good = await registry.sign(REPO, digest, release.privateKey);
    const notCosign = cosignPayload(`${HOST}/${REPO}`, digest)
      .toString()
      .replace('cosign container image signature', 'other');
    await registry.sign(REPO, digest, release.privateKey, { payload: Buffer.from(notCosign) });
    const layers = registry.signatureLayers(REPO, digest);
    await registry.putSignatureLayers(REPO, digest, [...layers, { ...good, size: 1_000_000 }]);
    const loaded = await loadSignatures(registry, REPO, digest, {
      bundles: false,
      maxLayers: 10,
      maxBundles: 10,
    });
    expect(loaded.evidence).toHaveLength(1);
    expect(loaded.rejected.map((r) => r.problem)).toEqual([
      expect.stringContaining('critical.type'),
      expect.stringContaining('is over'),
    ]);
  });

  it('reads at most maxLayers layers', async () => {
    for (let i = 0; i < 3; i++) await registry.sign(REPO, digest, testKey(`k${i}`).privateKey);
    const loaded = await loadSignatures(registry, REPO, digest, {
      bundles: false,
      maxLayers: 2,
      maxBundles: 10,
    });
    expect(loaded.evidence).toHaveLength(2);
    expect(loaded.notes[0]).toContain('1 layers beyond the first 2');
  });
});

describe('Sigstore bundles', () => {
  const verifier = () =>
    new ImageVerifier({
      config: verificationConfig(
        [release.witness],
        [policy({ name: 'p', images: [`${HOST}/**`], attestors: [{ witnesses: ['release'], count: 1 }] })],
      ),
      registries,
      keys: new KeyRing({ witnesses: [release.witness], baseDir: '/' }),
    });

  it.each([
    ['through the referrers API', true],
    ['through the sha256-<hex> fallback tag', false],
  ])('verifies a DSSE bundle found %s', async (_how, api) => {
    registry.referrersApi = api;
    await registry.attachBundle(REPO, digest, release.privateKey);
    const decision = await verifier().verify(`${HOST}/${REPO}:v1`);
    expect(decision.allowed).toBe(true);
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature?.source).toBe('bundle');
  });

  it('denies a bundle whose statement names another digest', async () => {
    const other = await registry.pushImage(REPO, 'v0');
    await registry.attachBundle(REPO, digest, release.privateKey, { subjectDigest: other });
    const decision = await verifier().verify(`${HOST}/${REPO}:v1`);
    expect(decision.reason).toMatchObject({ code: 'DIGEST_MISMATCH', signed: [other] });
  });

  it('does not take an attestation for a signature', async () => {
    await registry.attachBundle(REPO, digest, release.privateKey, {
      predicateType: 'https://slsa.dev/provenance/v1',
    });
    const decision = await verifier().verify(`${HOST}/${REPO}:v1`);
    expect(decision.reason?.code).toBe('UNTRUSTED_SIGNER');
  });

  it('denies a bundle whose signature is not over the PAE', async () => {
    await registry.attachBundle(REPO, digest, release.privateKey, {
      signedBytes: Buffer.from('something else'),
    });
    expect((await verifier().verify(`${HOST}/${REPO}:v1`)).reason?.code).toBe('UNTRUSTED_SIGNER');
  });

  it('treats a registry that refuses the referrers API as having no bundles, even under failurePolicy: allow', async () => {
    const { RegistryError } = await import('../../lib/core/errors');
    registry.fail = (call) =>
      call.startsWith('GET referrers') ? new RegistryError('NOT_ALLOWED', HOST, 'HTTP 405') : undefined;
    const lenient = new ImageVerifier({
      config: verificationConfig(
        [release.witness],
        [
          policy({
            name: 'p',
            images: [`${HOST}/**`],
            attestors: [{ witnesses: ['release'], count: 1 }],
            failurePolicy: 'allow',
          }),
        ],
      ),
      registries,
      keys: new KeyRing({ witnesses: [release.witness], baseDir: '/' }),
    });
    const decision = await lenient.verify(`${HOST}/${REPO}:v1`);
    expect(decision).toMatchObject({ allowed: false, reason: { code: 'NO_SIGNATURES' } });
    expect(decision.reason?.message).toContain('bundle referrers unreadable');
  });

  it('reports a throttled referrers API when no cosign signature satisfies the witness', async () => {
    const { RegistryError } = await import('../../lib/core/errors');
    registry.fail = (call) =>
      call.startsWith('GET referrers') ? new RegistryError('RATE_LIMITED', HOST, 'HTTP 429') : undefined;
    expect((await verifier().verify(`${HOST}/${REPO}:v1`)).reason?.code).toBe('REGISTRY_RATE_LIMITED');
    await registry.sign(REPO, digest, release.privateKey);
    expect((await verifier().verify(`${HOST}/${REPO}:v1`)).allowed).toBe(true);
  });

  it.each([
    ['{', 'not JSON'],
    ['{"mediaType":"application/json"}', 'not a Sigstore bundle'],
    [
      '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","messageSignature":{}}',
      'no SHA2_256 message digest',
    ],
    ['{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}', 'neither a dsseEnvelope nor'],
  ])('parseBundle rejects %s', (text, problem) => {
    expect(parseBundle(Buffer.from(text))).toEqual(expect.stringContaining(problem));
  });
});
