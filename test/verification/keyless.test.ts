/**
 * Keyless witnesses through the whole verifier: the real keyless cosign signature the public-good
 * instance made for `docker.io/salrashid123/server_image@sha256:c05263d2…` (test/fixtures/sigstore),
 * served by the in-memory registry and checked offline against the pinned public-good root; then
 * tampered copies, each denied with its own reason code, and the claims (digest, repository) that
 * still apply to a signature whose certificate is valid.
 */
import { pem } from '@sigstore/core';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeylessSubject, Policy, SignedIdentity, Witness } from '../../lib/config/types';
import { KeyRing } from '../../lib/keys/keyring';
import { isOperationalFailure } from '../../lib/verification/reasons';
import { ImageVerifier } from '../../lib/verification/verifier';
import { MemoryRegistries, MemoryRegistry, policy, testKey, verificationConfig } from './helpers';
import {
  ANNOTATION,
  CA,
  CONFORMANCE,
  KEYLESS,
  editRekorBundle,
  flipBase64,
  flipByte,
  keylessLayer,
  storeSignatures,
  timestampAnnotation,
} from './sigstore-fixtures';

const HOST = 'docker.io';
const IMAGE = `${HOST}/${KEYLESS.repository}@${KEYLESS.digest}`;

const keyless = (
  name: string,
  overrides: { subject?: KeylessSubject; issuer?: string; trustedRootPath?: string } = {},
): Witness => ({
  name,
  description: undefined,
  key: {
    $case: 'keyless',
    issuer: overrides.issuer ?? KEYLESS.issuer,
    subject: overrides.subject ?? { $case: 'exact', subject: KEYLESS.subject },
    trustedRootPath: overrides.trustedRootPath,
    github: undefined,
  },
});

const ci = keyless('ci');
let registries: MemoryRegistries;
let registry: MemoryRegistry;

beforeEach(() => {
  registries = new MemoryRegistries();
  registry = registries.add(HOST);
});

const serverImage = (overrides: Partial<Policy> = {}): Policy =>
  policy({
    name: 'server-image',
    images: [`${HOST}/salrashid123/**`, `${HOST}/evil/**`],
    attestors: [{ witnesses: ['ci'], count: 1 }],
    ...overrides,
  });

function verifier(
  witnesses: readonly Witness[] = [ci],
  policies: readonly Policy[] = [serverImage()],
): ImageVerifier {
  return new ImageVerifier({
    config: verificationConfig(witnesses, policies),
    registries,
    keys: new KeyRing({ witnesses, baseDir: '/nonexistent' }),
    signatures: { bundles: false },
  });
}

const codeOf = async (v: ImageVerifier, image = IMAGE): Promise<string | undefined> =>
  (await v.verify(image)).reason?.code;

describe('a keyless witness, with the real keyless cosign signature from the public-good instance', () => {
  it('admits the image it signs, offline, naming the signer and the log time', async () => {
    storeSignatures(registry, KEYLESS.repository, KEYLESS.digest);
    const decision = await verifier().verify(IMAGE);
    expect(decision).toMatchObject({ allowed: true, verdict: 'allow', digest: KEYLESS.digest });
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]).toEqual({
      witness: 'ci',
      valid: true,
      reason: undefined,
      signature: {
        source: 'cosign',
        id: KEYLESS.layer.digest,
        identity: 'index.docker.io/salrashid123/server_image',
        algorithm: 'ECDSA_SHA_256',
        signer: `keyless:${KEYLESS.issuer}#${KEYLESS.subject}`,
        certificateSubject: KEYLESS.subject,
        signedAt: KEYLESS.integratedTime.toISOString(),
        timeSource: 'tlog',
      },
    });
  });

  it('admits it by a subject pattern and the GitHub workflow claims', async () => {
    storeSignatures(registry, KEYLESS.repository, KEYLESS.digest);
    const witness: Witness = {
      name: 'ci',
      description: undefined,
      key: {
        $case: 'keyless',
        issuer: KEYLESS.issuer,
        subject: {
          $case: 'pattern',
          pattern: String.raw`https://github\.com/salrashid123/[^/]+/\.github/workflows/.+`,
        },
        trustedRootPath: undefined,
        github: {
          repository: 'salrashid123/go-bazel-github-workflow',
          ref: 'refs/tags/v0.0.30',
          trigger: 'push',
        },
      },
    };
    expect((await verifier([witness]).verify(IMAGE)).allowed).toBe(true);
  });

  describe('when the certificate is for another identity', () => {
    it.each<[string, Witness]>([
      ['another issuer', keyless('ci', { issuer: 'https://accounts.google.com' })],
      [
        'another subject',
        keyless('ci', {
          subject: { $case: 'exact', subject: KEYLESS.subject.replace('v0.0.30', 'v0.0.31') },
        }),
      ],
      [
        'a pattern that matches only a prefix of the subject',
        keyless('ci', {
          subject: { $case: 'pattern', pattern: String.raw`https://github\.com/salrashid123/` },
        }),
      ],
      [
        'another workflow repository',
        {
          ...ci,
          key: {
            ...(ci.key as Extract<Witness['key'], { $case: 'keyless' }>),
            github: { repository: 'salrashid123/other', ref: undefined, trigger: undefined },
          },
        },
      ],
    ])('denies %s with SIGNER_IDENTITY_MISMATCH', async (_case, witness) => {
      storeSignatures(registry, KEYLESS.repository, KEYLESS.digest);
      const decision = await verifier([witness]).verify(IMAGE);
      expect(decision).toMatchObject({
        allowed: false,
        reason: { code: 'SIGNER_IDENTITY_MISMATCH', witness: 'ci', signature: KEYLESS.layer.digest },
      });
    });
  });

  describe('when the signature is tampered with', () => {
    const foreignChain = (): string => CA.text('intermediate.pem') + CA.text('root.pem');
    it.each<[string, string, (a: Record<string, string>) => void]>([
      [
        'a changed certificate signature',
        'CERT_CHAIN_UNTRUSTED',
        (a) =>
          (a[ANNOTATION.certificate] = pem.fromDER(
            flipByte(pem.toDER(a[ANNOTATION.certificate] as string), -1),
          )),
      ],
      ['a chain from another CA', 'CERT_CHAIN_UNTRUSTED', (a) => (a[ANNOTATION.chain] = foreignChain())],
      [
        'a certificate that does not parse',
        'SIGNATURE_MALFORMED',
        (a) => (a[ANNOTATION.certificate] = 'not a certificate'),
      ],
      [
        'a changed signature',
        'SIGNATURE_INVALID',
        (a) => (a[ANNOTATION.signature] = flipBase64(a[ANNOTATION.signature] as string, -1)),
      ],
      [
        'a changed SET',
        'TLOG_INVALID',
        editRekorBundle((b) => (b.SignedEntryTimestamp = flipBase64(b.SignedEntryTimestamp, 10))),
      ],
      [
        'a changed integrated time',
        'TLOG_INVALID',
        editRekorBundle((b) => (b.Payload['integratedTime'] = (b.Payload['integratedTime'] as number) - 60)),
      ],
      ['no Rekor bundle', 'TLOG_MISSING', (a) => delete a[ANNOTATION.rekorBundle]],
      [
        'a timestamp annotation that is not cosign JSON',
        'TIMESTAMP_INVALID',
        (a) => (a[ANNOTATION.rfc3161Timestamp] = 'MIIC'),
      ],
      [
        'a real timestamp over another signature, from a TSA the root does not list',
        'TIMESTAMP_INVALID',
        (a) => (a[ANNOTATION.rfc3161Timestamp] = timestampAnnotation(CA.bytes('leaf.tsr'))),
      ],
    ])('denies %s with %s', async (_case, code, edit) => {
      storeSignatures(registry, KEYLESS.repository, KEYLESS.digest, [keylessLayer(edit)]);
      const decision = await verifier().verify(IMAGE);
      expect(decision).toMatchObject({ allowed: false, verdict: 'deny', reason: { code, witness: 'ci' } });
      expect(decision.message).toContain(`policy "server-image"`);
    });

    it('denies a changed payload (another digest, same signature) with SIGNATURE_INVALID', async () => {
      const other = Buffer.from(KEYLESS.payload.toString('utf8').replace('c05263d2', 'c05263d3'));
      storeSignatures(registry, KEYLESS.repository, KEYLESS.digest, [keylessLayer(undefined, other)]);
      expect(await codeOf(verifier())).toBe('SIGNATURE_INVALID');
    });

    it('never waives these failures, even under failurePolicy: allow', async () => {
      storeSignatures(registry, KEYLESS.repository, KEYLESS.digest, [
        keylessLayer((a) => delete a[ANNOTATION.rekorBundle]),
      ]);
      const decision = await verifier([ci], [serverImage({ failurePolicy: 'allow' })]).verify(IMAGE);
      expect(decision.verdict).toBe('deny');
      expect(isOperationalFailure(decision.reason as NonNullable<typeof decision.reason>)).toBe(false);
    });

    it('explains with the signature that came closest to passing', async () => {
      storeSignatures(registry, KEYLESS.repository, KEYLESS.digest, [
        keylessLayer((a) => (a[ANNOTATION.certificate] = 'not a certificate')),
        keylessLayer(),
      ]);
      const other = keyless('ci', { subject: { $case: 'exact', subject: 'someone else' } });
      expect(await codeOf(verifier([other]))).toBe('SIGNER_IDENTITY_MISMATCH');
    });
  });

  describe('when the witness names a private trusted root', () => {
    it('no longer trusts the public-good log: TLOG_INVALID', async () => {
      storeSignatures(registry, KEYLESS.repository, KEYLESS.digest);
      const witness = keyless('ci', { trustedRootPath: join(CONFORMANCE, 'trusted_root.private.json') });
      expect(await codeOf(verifier([witness]))).toBe('TLOG_INVALID');
    });

    it('denies with KEY_UNAVAILABLE when the trusted root cannot be read', async () => {
      storeSignatures(registry, KEYLESS.repository, KEYLESS.digest);
      const witness = keyless('ci', { trustedRootPath: '/nonexistent/trusted_root.json' });
      expect((await verifier([witness]).verify(IMAGE)).reason).toMatchObject({
        code: 'KEY_UNAVAILABLE',
        witness: 'ci',
        keyCode: 'KEY_UNREADABLE',
      });
    });
  });

  describe('when the valid signature names something else than the image admitted', () => {
    it('denies the signature copied to another repository with IDENTITY_MISMATCH', async () => {
      storeSignatures(registry, 'evil/server_image', KEYLESS.digest);
      const decision = await verifier().verify(`${HOST}/evil/server_image@${KEYLESS.digest}`);
      expect(decision.reason).toMatchObject({
        code: 'IDENTITY_MISMATCH',
        required: 'docker.io/evil/server_image',
        signed: ['index.docker.io/salrashid123/server_image'],
      });
    });

    it.each<[string, SignedIdentity]>([
      [
        'exactRepository',
        { type: 'exactRepository', dockerRepository: 'docker.io/salrashid123/server_image' },
      ],
      ['matchDigest', { type: 'matchDigest' }],
    ])('admits the copy under signedIdentity %s', async (_name, signedIdentity) => {
      storeSignatures(registry, 'evil/server_image', KEYLESS.digest);
      const decision = await verifier([ci], [serverImage({ signedIdentity })]).verify(
        `${HOST}/evil/server_image@${KEYLESS.digest}`,
      );
      expect(decision.allowed).toBe(true);
    });

    it('denies the signature replayed onto another digest with DIGEST_MISMATCH', async () => {
      const other = await registry.pushImage(KEYLESS.repository, 'other');
      storeSignatures(registry, KEYLESS.repository, other);
      const decision = await verifier().verify(`${HOST}/${KEYLESS.repository}:other`);
      expect(decision.reason).toMatchObject({
        code: 'DIGEST_MISMATCH',
        expected: other,
        signed: [KEYLESS.digest],
      });
    });
  });

  describe('next to signatures made with keys', () => {
    it('ignores them: an image signed only with a key is UNTRUSTED_SIGNER for the keyless witness', async () => {
      const release = testKey('release');
      const digest = await registry.pushImage(KEYLESS.repository, 'v1');
      await registry.sign(KEYLESS.repository, digest, release.privateKey);
      expect(await codeOf(verifier([ci, release.witness]), `${HOST}/${KEYLESS.repository}:v1`)).toBe(
        'UNTRUSTED_SIGNER',
      );
    });

    it('satisfies a policy that needs both a key and the keyless identity', async () => {
      const release = testKey('release');
      storeSignatures(registry, KEYLESS.repository, KEYLESS.digest);
      await registry.sign(KEYLESS.repository, KEYLESS.digest, release.privateKey, {
        payload: KEYLESS.payload,
      });
      const both = serverImage({ attestors: [{ witnesses: ['ci', 'release'], count: 2 }] });
      const decision = await verifier([ci, release.witness], [both]).verify(IMAGE);
      expect(decision.allowed).toBe(true);
      expect(decision.policies[0]?.attestors[0]).toMatchObject({ valid: 2, passed: true });
    });
  });

  it('counts two witnesses for one keyless identity as one signer (N of M)', async () => {
    storeSignatures(registry, KEYLESS.repository, KEYLESS.digest);
    const pattern = keyless('ci-pattern', {
      subject: { $case: 'pattern', pattern: 'https://github\\.com/salrashid123/.+' },
    });
    const twoOf = serverImage({ attestors: [{ witnesses: ['ci', 'ci-pattern'], count: 2 }] });
    const decision = await verifier([ci, pattern], [twoOf]).verify(IMAGE);
    expect(decision.reason).toMatchObject({ code: 'INSUFFICIENT_WITNESSES', required: 2, valid: 1 });
  });
});

describe('a certificate witness with the Fulcio root as its root', () => {
  it('admits the keyless signature: the ten-minute certificate was valid at the Rekor time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'signet-fulcio-'));
    await writeFile(join(dir, 'fulcio.pem'), KEYLESS.fulcioRoot);
    const witness: Witness = {
      name: 'ci',
      description: undefined,
      key: {
        $case: 'certificate',
        certificatePath: undefined,
        chainPath: undefined,
        rootPaths: [join(dir, 'fulcio.pem')],
        trustedRootPath: undefined,
        requireSignedTime: true,
      },
    };
    storeSignatures(registry, KEYLESS.repository, KEYLESS.digest);
    const decision = await verifier([witness]).verify(IMAGE);
    await rm(dir, { recursive: true, force: true });
    expect(decision.allowed).toBe(true);
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature).toMatchObject({
      signedAt: KEYLESS.integratedTime.toISOString(),
      timeSource: 'tlog',
      certificateSubject: KEYLESS.subject,
    });
  });
});
