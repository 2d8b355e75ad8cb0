/**
 * Sigstore bundles for keyless witnesses. Message-signature bundles from real Sigstore instances
 * (the conformance suite's, test/fixtures/sigstore/conformance) read by Signet's bundle reader and
 * checked by `checkWitness`, with tampered copies each denied by its own reason code; DSSE bundles
 * from a private instance; and message-signature referrers read from the in-memory registry (the
 * signed artifact is the image manifest, fetched by digest).
 *
 * No public bundle signs an image manifest (their artifacts are `a.txt` and npm packages), so no
 * bundle fixture can be a referrer of an image a registry would store: the reader's registry side
 * is tested with a bundle made here with a key, the Sigstore side with the real bundles.
 */
import { sign } from 'node:crypto';
import { join } from 'node:path';
import type { SignedIdentity, Witness } from '../../lib/config/types';
import { bundleEvidence, parseBundle } from '../../lib/cosign/bundle';
import type { SignatureEvidence } from '../../lib/cosign/evidence';
import { IN_TOTO_PAYLOAD_TYPE, preAuthEncoding } from '../../lib/cosign/dsse';
import { KeyRing } from '../../lib/keys/keyring';
import { ImageVerifier } from '../../lib/verification/verifier';
import { checkWitness } from '../../lib/verification/witness-check';
import { MemoryRegistries, MemoryRegistry, policy, testKey, verificationConfig } from './helpers';
import {
  A_TXT,
  BEACON,
  CONFORMANCE,
  conformanceBundle,
  flipBase64,
  loaded,
  sha256,
} from './sigstore-fixtures';

/** A keyless witness for the conformance suite's signer, against `trustedRoot` (default public-good). */
const beacon = (trustedRoot?: string): Witness => ({
  name: 'beacon',
  description: undefined,
  key: {
    $case: 'keyless',
    issuer: BEACON.issuer,
    subject: { $case: 'exact', subject: BEACON.subject },
    trustedRootPath: trustedRoot === undefined ? undefined : join(CONFORMANCE, trustedRoot),
    github: undefined,
  },
});

const A_TXT_DIGEST = sha256(A_TXT);
const MATCH_DIGEST: SignedIdentity = { type: 'matchDigest' };

/** Evidence from a message-signature bundle over a.txt, as the referrer reader makes it. */
function messageEvidence(doc: Record<string, unknown>, artifact = A_TXT): SignatureEvidence {
  const parsed = bundleEvidence(doc, artifact);
  if (typeof parsed === 'string') throw new Error(parsed);
  return { ...parsed, id: 'sha256:bundle-manifest' };
}

async function check(
  evidence: SignatureEvidence,
  witness: Witness = beacon(),
  identity: SignedIdentity = MATCH_DIGEST,
  digest = A_TXT_DIGEST,
) {
  return checkWitness(witness, new KeyRing({ witnesses: [witness], baseDir: '/' }), loaded([evidence]), {
    digest,
    tag: undefined,
    repository: 'registry.example/team-a/app',
    identity,
  });
}

const codeOf = async (...args: Parameters<typeof check>): Promise<string> => {
  const result = await check(...args);
  return result.valid ? 'VALID' : (result.reason?.code ?? 'INVALID');
};

/** A deep copy of a bundle with `edit` applied. */
const edited = (name: string, edit: (doc: BundleJson) => void): Record<string, unknown> => {
  const doc = conformanceBundle(name) as unknown as BundleJson;
  edit(doc);
  return doc as unknown as Record<string, unknown>;
};
interface BundleJson {
  messageSignature: { signature: string; messageDigest: { algorithm: string; digest: string } };
  verificationMaterial: {
    certificate: { rawBytes: string };
    tlogEntries: { inclusionProof: { hashes: string[] } }[];
  };
}

describe('parseBundle with a message-signature bundle', () => {
  const doc = JSON.stringify(conformanceBundle('happy-path-v0.3'));

  it('reads the digest it signs (never a repository) and keeps the bundle for the Sigstore checks', () => {
    const parsed = parseBundle(Buffer.from(doc), A_TXT);
    if (typeof parsed === 'string') throw new Error(parsed);
    expect(parsed).toMatchObject({
      source: 'bundle',
      signedData: A_TXT,
      claims: {
        digests: [A_TXT_DIGEST],
        subjects: [{ digest: A_TXT_DIGEST, name: undefined }],
        tag: undefined,
      },
      certificate: expect.stringContaining('-----BEGIN CERTIFICATE-----'),
      material: { $case: 'sigstore-bundle', artifact: A_TXT },
    });
  });

  it.each<[string, Buffer | undefined, string]>([
    ['without the artifact', undefined, 'needs the manifest it signs'],
    ['with another artifact', Buffer.from('another'), 'is not the digest of the signed manifest'],
  ])('rejects it %s', (_case, artifact, problem) => {
    expect(parseBundle(Buffer.from(doc), artifact)).toEqual(expect.stringContaining(problem));
  });

  it('rejects a digest other than SHA2_256', () => {
    const other = edited('happy-path-v0.3', (d) => (d.messageSignature.messageDigest.algorithm = 'SHA2_384'));
    expect(bundleEvidence(other, A_TXT)).toEqual(expect.stringContaining('SHA2_256'));
  });
});

describe('a keyless witness with a message-signature bundle from the public-good instance', () => {
  it('is satisfied, at the log time, when the policy only asks for the digest', async () => {
    const result = await check(messageEvidence(conformanceBundle('happy-path-v0.3')));
    expect(result).toMatchObject({
      valid: true,
      signature: {
        source: 'bundle',
        algorithm: 'ECDSA_SHA_256',
        signer: `keyless:${BEACON.issuer}#${BEACON.subject}`,
        signedAt: new Date(1710869186 * 1000).toISOString(),
        timeSource: 'tlog',
      },
    });
  });

  it('names no repository: IDENTITY_MISMATCH under matchRepository', async () => {
    const result = await check(messageEvidence(conformanceBundle('happy-path-v0.3')), beacon(), {
      type: 'matchRepository',
    });
    expect(result.reason).toMatchObject({ code: 'IDENTITY_MISMATCH', signed: ['(no repository)'] });
  });

  it('denies another digest with DIGEST_MISMATCH', async () => {
    const other = `sha256:${'0'.repeat(64)}`;
    expect(
      await codeOf(messageEvidence(conformanceBundle('happy-path-v0.3')), beacon(), MATCH_DIGEST, other),
    ).toBe('DIGEST_MISMATCH');
  });

  it.each<[string, string, (doc: BundleJson) => void]>([
    [
      'a changed signature',
      'SIGNATURE_INVALID',
      (d) => (d.messageSignature.signature = flipBase64(d.messageSignature.signature, 10)),
    ],
    [
      'a changed certificate',
      'CERT_CHAIN_UNTRUSTED',
      (d) => {
        const der = Buffer.from(d.verificationMaterial.certificate.rawBytes, 'base64');
        d.verificationMaterial.certificate.rawBytes = flipBase64(
          d.verificationMaterial.certificate.rawBytes,
          der.length - 1,
        );
      },
    ],
    [
      'a changed inclusion proof',
      'TLOG_INVALID',
      (d) => {
        const proof = d.verificationMaterial.tlogEntries[0]?.inclusionProof;
        if (proof !== undefined) proof.hashes[0] = flipBase64(proof.hashes[0] as string, 5);
      },
    ],
    ['no log entry', 'TLOG_MISSING', (d) => (d.verificationMaterial.tlogEntries = [])],
  ])('denies %s with %s', async (_case, code, edit) => {
    expect(await codeOf(messageEvidence(edited('happy-path-v0.3', edit)))).toBe(code);
  });

  it('denies another identity with SIGNER_IDENTITY_MISMATCH', async () => {
    const other: Witness = {
      ...beacon(),
      key: {
        ...(beacon().key as Extract<Witness['key'], { $case: 'keyless' }>),
        issuer: 'https://accounts.google.com',
      },
    };
    expect(await codeOf(messageEvidence(conformanceBundle('happy-path-v0.3')), other)).toBe(
      'SIGNER_IDENTITY_MISMATCH',
    );
  });

  it('denies a certificate with an SCT from an untrusted CT log with SCT_INVALID', async () => {
    expect(
      await codeOf(
        messageEvidence(conformanceBundle('invalid-ct-key_fail')),
        beacon('trusted_root.invalid-ct-key.json'),
      ),
    ).toBe('SCT_INVALID');
  });

  it('denies a bundle from the staging instance with TLOG_INVALID', async () => {
    expect(await codeOf(messageEvidence(conformanceBundle('bundle-from-wrong-instance_fail')))).toBe(
      'TLOG_INVALID',
    );
  });
});

describe('a keyless witness with a private trusted root (the staging instance, Rekor v2 and a TSA)', () => {
  const staging = beacon('trusted_root.staging.json');

  it('is satisfied at the TSA time', async () => {
    const result = await check(messageEvidence(conformanceBundle('rekor2-happy-path')), staging);
    expect(result).toMatchObject({ valid: true, signature: { timeSource: 'tsa' } });
  });

  it.each([
    ['rekor2-no-timestamp_fail', 'TIMESTAMP_MISSING'],
    ['rekor2-timestamp-payload-mismatch_fail', 'TIMESTAMP_INVALID'],
    ['rekor2-timestamp-with-incorrect-time_fail', 'CERT_EXPIRED_AT_SIGNING'],
  ])('denies %s with %s', async (name, code) => {
    expect(await codeOf(messageEvidence(conformanceBundle(name)), staging)).toBe(code);
  });
});

describe('a keyless witness with DSSE bundles from a private Sigstore instance', () => {
  const privateRoot = beacon('trusted_root.private.json');
  /**
   * The evidence of a DSSE bundle. These bundles carry SLSA provenance for `d.txt`, not cosign's
   * image-signing statement, so Signet's reader refuses them as image signatures; the claims are
   * written here as if the statement named an image, to check the Sigstore side of DSSE.
   */
  const dsse = (name: string): SignatureEvidence => {
    const doc = conformanceBundle(name) as {
      dsseEnvelope: { payload: string; signatures: { sig: string }[] };
    };
    const payload = Buffer.from(doc.dsseEnvelope.payload, 'base64');
    return {
      source: 'bundle',
      id: 'sha256:dsse-bundle-manifest',
      signedData: preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload),
      signature: Buffer.from(doc.dsseEnvelope.signatures[0]?.sig ?? '', 'base64'),
      claims: { digests: [A_TXT_DIGEST], identity: undefined, subjects: [], tag: undefined },
      certificate: 'present',
      material: { $case: 'sigstore-bundle', bundle: doc, artifact: undefined },
    };
  };

  it('is not an image signature to the bundle reader (SLSA provenance, not cosign’s predicate)', () => {
    const text = JSON.stringify(conformanceBundle('intoto-with-custom-trust-root'));
    expect(parseBundle(Buffer.from(text))).toEqual(expect.stringContaining('predicateType'));
  });

  it('is satisfied by the valid bundle', async () => {
    expect(await codeOf(dsse('intoto-with-custom-trust-root'), privateRoot)).toBe('VALID');
  });

  it.each([
    ['intoto-set-outside-signing-cert-validity_fail', 'CERT_EXPIRED_AT_SIGNING'],
    ['intoto-tsa-timestamp-outside-cert-validity_fail', 'CERT_EXPIRED_AT_SIGNING'],
  ])('denies %s with %s', async (name, code) => {
    expect(await codeOf(dsse(name), privateRoot)).toBe(code);
  });

  it('denies it against the public-good root with TIMESTAMP_INVALID (its TSA is unknown there)', async () => {
    expect(await codeOf(dsse('intoto-with-custom-trust-root'))).toBe('TIMESTAMP_INVALID');
  });
});

describe('message-signature bundle referrers in the registry', () => {
  const HOST = 'registry.example.com';
  const REPO = 'team-a/app';
  const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
  const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
  let registries: MemoryRegistries;
  let registry: MemoryRegistry;
  let digest: string;
  const release = testKey('release');

  beforeEach(async () => {
    registries = new MemoryRegistries();
    registry = registries.add(HOST);
    digest = await registry.pushImage(REPO, 'v1');
  });

  /** Attaches a bundle with a message signature over `signed` (default: the image manifest) by `release`. */
  function attach(options: { signed?: Buffer; subject?: string; referrersApi?: boolean } = {}): void {
    const manifest = registry.manifests.get(`${REPO}:${digest}`)?.bytes ?? Buffer.alloc(0);
    const signed = options.signed ?? manifest;
    const bundle = Buffer.from(
      JSON.stringify({
        mediaType: BUNDLE,
        verificationMaterial: { publicKey: { hint: 'release' }, tlogEntries: [] },
        messageSignature: {
          messageDigest: {
            algorithm: 'SHA2_256',
            digest: Buffer.from(sha256(signed).slice(7), 'hex').toString('base64'),
          },
          signature: sign('sha256', signed, release.privateKey).toString('base64'),
        },
      }),
    );
    const empty = Buffer.from('{}');
    registry.storeBlob(REPO, empty);
    registry.storeBlob(REPO, bundle);
    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: BUNDLE,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2, digest: sha256(empty) },
        layers: [{ mediaType: BUNDLE, size: bundle.length, digest: sha256(bundle) }],
        subject: { mediaType: OCI_MANIFEST, size: manifest.length, digest: options.subject ?? digest },
      }),
    );
    registry.store(REPO, sha256(referrer), referrer, OCI_MANIFEST);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: registry.referrers.get(`${REPO}@${options.subject ?? digest}`),
      }),
    );
    registry.store(
      REPO,
      (options.subject ?? digest).replace(':', '-'),
      index,
      'application/vnd.oci.image.index.v1+json',
    );
    registry.referrersApi = options.referrersApi ?? false;
  }

  const verifier = (signedIdentity: SignedIdentity = MATCH_DIGEST) =>
    new ImageVerifier({
      config: verificationConfig(
        [release.witness],
        [
          policy({
            name: 'team-a',
            images: [`${HOST}/team-a/**`],
            attestors: [{ witnesses: ['release'], count: 1 }],
            signedIdentity,
          }),
        ],
      ),
      registries,
      keys: new KeyRing({ witnesses: [release.witness], baseDir: '/' }),
    });

  it.each([
    ['the fallback index', false],
    ['the referrers API', true],
  ])('verifies one read through %s, fetching the manifest it signs once', async (_how, referrersApi) => {
    attach({ referrersApi });
    const decision = await verifier().verify(`${HOST}/${REPO}:v1`);
    expect(decision.allowed).toBe(true);
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature).toMatchObject({ source: 'bundle' });
    expect(registry.count(`GET manifest ${REPO}:${digest}`)).toBe(1);
  });

  it('names no repository: IDENTITY_MISMATCH under the default matchRepository', async () => {
    attach();
    expect((await verifier({ type: 'matchRepository' }).verify(`${HOST}/${REPO}:v1`)).reason?.code).toBe(
      'IDENTITY_MISMATCH',
    );
  });

  it('rejects a bundle over another manifest than its subject, without fetching anything', async () => {
    attach({ signed: Buffer.from('{"another":"manifest"}') });
    const decision = await verifier().verify(`${HOST}/${REPO}:v1`);
    expect(decision.reason).toMatchObject({ code: 'UNTRUSTED_SIGNER', signatures: 1 });
    expect(registry.count(`GET manifest ${REPO}:${digest}`)).toBe(0);
  });
});
