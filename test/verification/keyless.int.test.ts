/**
 * Keyless and certificate witnesses against the real distribution registry (2.8, no referrers
 * API), with real public-good material: the `.sig` manifest cosign wrote keyless from GitHub
 * Actions for `index.docker.io/salrashid123/server_image@sha256:c05263d2…` (test/fixtures/sigstore/
 * SOURCES.md) is pushed byte for byte, with its payload and its config blob (rebuilt exactly: it
 * hashes to the digest the manifest names), under the tag `sha256-c05263d2….sig`. The image itself
 * cannot be pushed (no one has its bytes), so it is verified by digest reference, which Signet
 * never resolves; the signature names `index.docker.io/salrashid123/server_image`, so the policy
 * says so with `signedIdentity: exactRepository`.
 *
 * No public Sigstore bundle signs an image manifest, so none can be a referrer of an image this
 * registry stores: the last case pushes a message-signature bundle made here with a key, to show
 * the referrer path (fallback index, the signed manifest fetched by digest) on a real registry.
 * The public-good bundles are verified at the unit level (test/verification/bundles.test.ts).
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import { createSignet, type Signet } from '../../lib/signet';
import type { ImageDecision } from '../../lib/verification/decision';
import { cosignConfig } from '../support/cosign-writer';
import { pushBlobOverHttp, pushImageOverHttp } from '../support/oci-http';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  ANNOTATION,
  CA,
  KEYLESS,
  editRekorBundle,
  flipBase64,
  keylessLayer,
  signatureTag,
} from './sigstore-fixtures';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

let registry: TestRegistry;
let dir: string;
let signet: Signet;
const vendorKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

async function putManifest(repository: string, reference: string, bytes: Buffer, mediaType = OCI_MANIFEST) {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType },
    body: new Uint8Array(bytes),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT ${repository}:${reference}: HTTP ${res.status} ${text}`);
}

/** Pushes a `.sig` manifest for the fixture's digest: verbatim, or with these (edited) layers. */
async function pushSignatures(
  repository: string,
  layers?: readonly ReturnType<typeof keylessLayer>[],
): Promise<void> {
  const written = layers ?? [{ layer: KEYLESS.layer, payload: KEYLESS.payload }];
  for (const { payload } of written) await pushBlobOverHttp(registry.url, repository, payload);
  const config = cosignConfig(written.map((l) => l.layer));
  await pushBlobOverHttp(registry.url, repository, config);
  const manifest =
    layers === undefined
      ? KEYLESS.manifestBytes
      : Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: {
              mediaType: 'application/vnd.oci.image.config.v1+json',
              size: config.length,
              digest: sha256(config),
            },
            layers: written.map((l) => l.layer),
          }),
        );
  await putManifest(repository, signatureTag(KEYLESS.digest), manifest);
}

const at = (repository: string): string => `${registry.host}/${repository}@${KEYLESS.digest}`;
const verify = (image: string): Promise<ImageDecision> => signet.verifier.verifyWithin(image);

beforeAll(async () => {
  registry = await startTestRegistry();
  dir = await mkdtemp(join(tmpdir(), 'signet-keyless-int-'));
  await writeFile(join(dir, 'fulcio-root.pem'), KEYLESS.fulcioRoot);
  await writeFile(join(dir, 'vendor.pub'), vendorKey.publicKey.export({ type: 'spki', format: 'pem' }));
  const exact = `{type: exactRepository, dockerRepository: docker.io/salrashid123/server_image}`;
  const config = parseConfig(
    `
registries:
  - host: ${registry.host}
    insecure: true
witnesses:
  - name: ci
    keyless:
      issuer: ${KEYLESS.issuer}
      subjectRegExp: 'https://github\\.com/salrashid123/go-bazel-github-workflow/\\.github/workflows/release\\.yaml@refs/tags/v.+'
      github: {repository: salrashid123/go-bazel-github-workflow, trigger: push}
  - name: other-ci
    keyless:
      issuer: ${KEYLESS.issuer}
      subject: https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/heads/main
  - name: fulcio-certificates
    roots: [file://fulcio-root.pem]
    requireSignedTime: true
  - name: vendor
    publicKey: file://vendor.pub
policies:
  - name: keyless
    enabled: true
    images: ["${registry.host}/salrashid123/**", "${registry.host}/tampered/**"]
    signedIdentity: ${exact}
    attestors: [{witnesses: [ci]}]
  - name: keyless-default-identity
    enabled: true
    images: ["${registry.host}/default-identity/**"]
    attestors: [{witnesses: [ci]}]
  - name: other-identity
    enabled: true
    images: ["${registry.host}/other-identity/**"]
    signedIdentity: ${exact}
    attestors: [{witnesses: [other-ci]}]
  - name: certificate
    enabled: true
    images: ["${registry.host}/certificate/**"]
    signedIdentity: ${exact}
    attestors: [{witnesses: [fulcio-certificates]}]
  - name: bundles
    enabled: true
    images: ["${registry.host}/bundles/**"]
    signedIdentity: {type: matchDigest}
    attestors: [{witnesses: [vendor]}]
`,
    { baseDir: dir, source: join(dir, 'signet.yaml') },
  );
  signet = createSignet(config, { logger: silentLogger });
});

afterAll(async () => {
  signet.keys.close();
  await registry.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('the keyless cosign signature from the public-good instance, in a real registry', () => {
  it('rebuilds the config blob the manifest names, byte for byte', () => {
    const manifest = JSON.parse(KEYLESS.manifestBytes.toString('utf8')) as {
      config: { mediaType: string; digest: string; size: number };
    };
    const config = cosignConfig([KEYLESS.layer]);
    expect({ mediaType: manifest.config.mediaType, digest: sha256(config), size: config.length }).toEqual(
      manifest.config,
    );
  });

  it('admits the image by digest for the keyless witness, offline against the pinned root', async () => {
    await pushSignatures('salrashid123/server_image');
    const decision = await verify(at('salrashid123/server_image'));
    expect(decision).toMatchObject({ allowed: true, verdict: 'allow', digest: KEYLESS.digest });
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature).toMatchObject({
      source: 'cosign',
      certificateSubject: KEYLESS.subject,
      signedAt: KEYLESS.integratedTime.toISOString(),
      timeSource: 'tlog',
    });
  });

  it('still checks the repository: under matchRepository this registry is not the one signed', async () => {
    await pushSignatures('default-identity/server_image');
    expect((await verify(at('default-identity/server_image'))).reason).toMatchObject({
      code: 'IDENTITY_MISMATCH',
      signed: ['index.docker.io/salrashid123/server_image'],
    });
  });

  it('denies a witness for another identity with SIGNER_IDENTITY_MISMATCH', async () => {
    await pushSignatures('other-identity/server_image');
    expect((await verify(at('other-identity/server_image'))).reason?.code).toBe('SIGNER_IDENTITY_MISMATCH');
  });

  it.each<[string, string, (a: Record<string, string>) => void]>([
    [
      'a changed SET',
      'TLOG_INVALID',
      editRekorBundle((b) => (b.SignedEntryTimestamp = flipBase64(b.SignedEntryTimestamp, 10))),
    ],
    ['no Rekor bundle', 'TLOG_MISSING', (a) => delete a[ANNOTATION.rekorBundle]],
    [
      'a chain from another CA',
      'CERT_CHAIN_UNTRUSTED',
      (a) => (a[ANNOTATION.chain] = CA.text('intermediate.pem') + CA.text('root.pem')),
    ],
    [
      'a changed signature',
      'SIGNATURE_INVALID',
      (a) => (a[ANNOTATION.signature] = flipBase64(a[ANNOTATION.signature] as string, -1)),
    ],
  ])('denies a tampered copy with %s with %s', async (name, code, edit) => {
    const repository = `tampered/${name.replace(/[^a-z]+/g, '-').replace(/^-|-$/g, '')}`;
    await pushSignatures(repository, [keylessLayer(edit)]);
    expect((await verify(at(repository))).reason).toMatchObject({ code, witness: 'ci' });
  });

  it('admits it for a certificate witness whose root is the Fulcio root, at the Rekor time', async () => {
    await pushSignatures('certificate/server_image');
    const decision = await verify(at('certificate/server_image'));
    expect(decision.allowed).toBe(true);
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature?.timeSource).toBe('tlog');
  });
});

describe('a message-signature bundle referrer on a registry without the referrers API', () => {
  it('is read through the fallback index, with the manifest it signs', async () => {
    const repository = 'bundles/app';
    const digest = await pushImageOverHttp(registry.url, repository, 'v1', 'bundle-seed');
    const manifest = Buffer.from(
      await (
        await fetch(`${registry.url}/v2/${repository}/manifests/${digest}`, {
          headers: { accept: OCI_MANIFEST },
        })
      ).arrayBuffer(),
    );
    const bundle = Buffer.from(
      JSON.stringify({
        mediaType: BUNDLE,
        verificationMaterial: { publicKey: { hint: 'vendor' }, tlogEntries: [] },
        messageSignature: {
          messageDigest: {
            algorithm: 'SHA2_256',
            digest: Buffer.from(digest.slice(7), 'hex').toString('base64'),
          },
          signature: sign('sha256', manifest, vendorKey.privateKey).toString('base64'),
        },
      }),
    );
    const empty = Buffer.from('{}');
    await pushBlobOverHttp(registry.url, repository, empty);
    await pushBlobOverHttp(registry.url, repository, bundle);
    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: BUNDLE,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2, digest: sha256(empty) },
        layers: [{ mediaType: BUNDLE, size: bundle.length, digest: sha256(bundle) }],
        subject: { mediaType: OCI_MANIFEST, size: manifest.length, digest },
      }),
    );
    await putManifest(repository, sha256(referrer), referrer);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, size: referrer.length, digest: sha256(referrer), artifactType: BUNDLE },
        ],
      }),
    );
    await putManifest(repository, digest.replace(':', '-'), index, OCI_INDEX);

    const decision = await verify(`${registry.host}/${repository}:v1`);
    expect(decision.allowed).toBe(true);
    expect(decision.policies[0]?.attestors[0]?.witnesses[0]?.signature).toMatchObject({
      source: 'bundle',
      id: sha256(referrer),
    });
  });
});
