/**
 * The Sigstore bundle format, both sides: what Signet writes (statement, DSSE bundle, referrer
 * manifest) is what it reads back, and what sigstore's own schema helpers accept.
 */
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { bundleFromJSON, isBundleWithDsseEnvelope } from '@sigstore/bundle';
import { isBundleType, parseBundle } from '../../lib/cosign/bundle';
import {
  BUNDLE_ANNOTATIONS,
  bundleReferrerManifest,
  dsseBundle,
  EMPTY_CONFIG,
} from '../../lib/cosign/bundle-writer';
import {
  COSIGN_SIGN_PREDICATE,
  cosignSignStatement,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_V1,
  preAuthEncoding,
} from '../../lib/cosign/dsse';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe('cosignSignStatement', () => {
  it('is an in-toto v1 statement with cosign’s predicate, naming the image by repository', () => {
    expect(JSON.parse(cosignSignStatement('registry.example.com/team-a/app', DIGEST).toString())).toEqual({
      _type: IN_TOTO_STATEMENT_V1,
      subject: [{ name: 'registry.example.com/team-a/app', digest: { sha256: 'ab'.repeat(32) } }],
      predicateType: COSIGN_SIGN_PREDICATE,
      predicate: {},
    });
  });
});

describe('dsseBundle', () => {
  const statement = cosignSignStatement('registry.example.com/team-a/app', DIGEST);
  const signature = sign('sha256', preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, statement), key.privateKey);
  const bytes = dsseBundle(statement, signature, 'release-hint');
  const json = JSON.parse(bytes.toString()) as Record<string, unknown>;

  it('is a v0.3 bundle with one DSSE signature, the key hint and no transparency-log entry', () => {
    const bundle = bundleFromJSON(json);
    expect(isBundleWithDsseEnvelope(bundle)).toBe(true);
    expect(json).toMatchObject({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { publicKey: { hint: 'release-hint' } },
      dsseEnvelope: { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: statement.toString('base64') },
    });
    expect(bundle.verificationMaterial.tlogEntries).toEqual([]);
  });

  it('reads back as evidence whose signed data verifies under the key', () => {
    const parsed = parseBundle(bytes);
    if (typeof parsed === 'string') throw new Error(parsed);
    expect(parsed.claims).toEqual({
      digests: [DIGEST],
      identity: undefined,
      subjects: [{ digest: DIGEST, name: 'registry.example.com/team-a/app' }],
      tag: undefined,
    });
    expect(verify('sha256', parsed.signedData, key.publicKey, parsed.signature)).toBe(true);
    expect(parsed.certificate).toBeUndefined();
  });
});

describe('bundleReferrerManifest', () => {
  it('names the bundle, the empty config and the image as subject, as cosign v3 does', () => {
    const bundle = Buffer.from('{"bundle":true}');
    const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: DIGEST, size: 42 };
    const created = new Date('2026-01-02T03:04:05.000Z');
    expect(JSON.parse(bundleReferrerManifest(subject, bundle, created).toString())).toEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(EMPTY_CONFIG), size: 2 },
      layers: [
        {
          mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
          digest: sha256(bundle),
          size: bundle.length,
        },
      ],
      subject,
      annotations: { ...BUNDLE_ANNOTATIONS, 'org.opencontainers.image.created': created.toISOString() },
    });
  });
});

describe('isBundleType', () => {
  it.each([
    ['application/vnd.dev.sigstore.bundle.v0.3+json', true],
    ['application/vnd.dev.sigstore.bundle+json;version=0.2', true],
    ['application/vnd.dev.cosign.simplesigning.v1+json', false],
    [undefined, false],
  ])('%s → %s', (type, expected) => {
    expect(isBundleType(type)).toBe(expected);
  });
});
