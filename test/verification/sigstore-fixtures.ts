/**
 * The real Sigstore material of test/fixtures/sigstore (see its SOURCES.md files) as verification
 * tests use it: the keyless cosign `.sig` layer the public-good instance made for
 * `index.docker.io/salrashid123/server_image@sha256:c05263d2…`, the private-CA certificate
 * signatures with their RFC 3161 timestamps, conformance bundles, and tampered copies of each.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SignatureEvidence } from '../../lib/cosign/evidence';
import type { LoadedSignatures } from '../../lib/verification/signatures';
import { cosignConfig, type LayerDescriptor } from '../support/cosign-writer';
import type { MemoryRegistry } from '../support/memory-registry';

export const FIXTURES = join(__dirname, '../fixtures/sigstore');
export const CONFORMANCE = join(FIXTURES, 'conformance');
export const PRIVATE_CA = join(FIXTURES, 'private-ca');

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
export const signatureTag = (digest: string): string => `${digest.replace(':', '-')}.sig`;

/** cosign's annotation names. */
export const ANNOTATION = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  rekorBundle: 'dev.sigstore.cosign/bundle',
  rfc3161Timestamp: 'dev.sigstore.cosign/rfc3161timestamp',
} as const;

/** The keyless cosign signature from the public-good instance. */
export const KEYLESS = (() => {
  const manifestBytes = readFileSync(join(FIXTURES, 'cosign-keyless-sig-manifest.json'));
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as { layers: LayerDescriptor[] };
  const layer = manifest.layers[0] as LayerDescriptor;
  const chain = layer.annotations?.[ANNOTATION.chain] ?? '';
  return {
    /** As in the payload's docker-reference, canonical. */
    repository: 'salrashid123/server_image',
    digest: 'sha256:c05263d2ff654c3a94243662440913f045075d59c436e2c69e9145ec2b87a321',
    manifestBytes,
    layer,
    annotations: layer.annotations ?? {},
    payload: readFileSync(join(FIXTURES, 'cosign-keyless-payload.json')),
    issuer: 'https://token.actions.githubusercontent.com',
    subject:
      'https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30',
    integratedTime: new Date(1772216446 * 1000),
    /** The Fulcio root (the last certificate of the chain annotation), PEM. */
    fulcioRoot: chain.slice(chain.lastIndexOf('-----BEGIN CERTIFICATE-----')),
  };
})();

/** Flips one bit of `bytes` (at `index`, counted from the end when negative). */
export function flipByte(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  const at = index < 0 ? copy.length + index : index;
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
}

/** A base64 value with one bit flipped. */
export const flipBase64 = (value: string, index: number): string =>
  flipByte(Buffer.from(value, 'base64'), index).toString('base64');

/** Rewrites cosign's Rekor bundle annotation (`{SignedEntryTimestamp, Payload}`). */
export const editRekorBundle =
  (edit: (bundle: { SignedEntryTimestamp: string; Payload: Record<string, unknown> }) => void) =>
  (annotations: Record<string, string>): void => {
    const bundle = JSON.parse(annotations[ANNOTATION.rekorBundle] as string);
    edit(bundle);
    annotations[ANNOTATION.rekorBundle] = JSON.stringify(bundle);
  };

/** cosign's RFC 3161 annotation for a DER timestamp response. */
export const timestampAnnotation = (der: Buffer): string =>
  JSON.stringify({ SignedRFC3161Timestamp: der.toString('base64') });

/**
 * Stores one `.sig` manifest for `digest` in `repository`: the keyless fixture verbatim (its
 * exact manifest bytes) when `layers` is not given, else those layers, whose payload blobs it
 * stores too.
 */
export function storeSignatures(
  registry: MemoryRegistry,
  repository: string,
  digest: string,
  layers?: readonly { readonly layer: LayerDescriptor; readonly payload: Buffer }[],
): void {
  if (layers === undefined) {
    registry.storeBlob(repository, KEYLESS.payload);
    registry.store(repository, signatureTag(digest), KEYLESS.manifestBytes, OCI_MANIFEST);
    return;
  }
  for (const { payload } of layers) registry.storeBlob(repository, payload);
  const descriptors = layers.map((l) => l.layer);
  const config = cosignConfig(descriptors);
  registry.storeBlob(repository, config);
  registry.store(
    repository,
    signatureTag(digest),
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          size: config.length,
          digest: sha256(config),
        },
        layers: descriptors,
      }),
    ),
    OCI_MANIFEST,
  );
}

/** The keyless layer with `edit` applied to a copy of its annotations (and another payload, if given). */
export function keylessLayer(
  edit: (annotations: Record<string, string>) => void = () => {},
  payload: Buffer = KEYLESS.payload,
): { readonly layer: LayerDescriptor; readonly payload: Buffer } {
  const annotations = { ...KEYLESS.annotations };
  edit(annotations);
  return {
    layer: { ...KEYLESS.layer, size: payload.length, digest: sha256(payload), annotations },
    payload,
  };
}

/** The private CA's files (test/fixtures/sigstore/private-ca/SOURCES.md). */
export const CA = {
  text: (name: string): string => readFileSync(join(PRIVATE_CA, name), 'utf8'),
  bytes: (name: string): Buffer => readFileSync(join(PRIVATE_CA, name)),
  /** `registry.example/team-a/app`, the repository payload.json names. */
  host: 'registry.example',
  repository: 'team-a/app',
  digest: 'sha256:4bc453b53cb3d914b45f4b250294236adba2c0e09ff6f03793949e7e39fd4cc1',
};

/**
 * A `.sig` layer signed by a private-CA leaf, as `cosign sign --certificate` with a TSA writes it:
 * the leaf's signature of payload.json, its certificate and (unless `timestamp: null`) its RFC 3161
 * timestamp.
 */
export function certificateLayer(
  leaf: string,
  options: { timestamp?: string | null; certificate?: string | null; signature?: Buffer } = {},
): { readonly layer: LayerDescriptor; readonly payload: Buffer } {
  const payload = CA.bytes('payload.json');
  const timestamp = options.timestamp === undefined ? `${leaf}.tsr` : options.timestamp;
  const certificate = options.certificate === undefined ? CA.text(`${leaf}.pem`) : options.certificate;
  const annotations: Record<string, string> = {
    [ANNOTATION.signature]: (
      options.signature ?? Buffer.from(CA.text(`${leaf}.sig`).trim(), 'base64')
    ).toString('base64'),
  };
  if (certificate !== null) annotations[ANNOTATION.certificate] = certificate;
  if (timestamp !== null) annotations[ANNOTATION.rfc3161Timestamp] = timestampAnnotation(CA.bytes(timestamp));
  return {
    layer: {
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      size: payload.length,
      digest: sha256(payload),
      annotations,
    },
    payload,
  };
}

/** A conformance bundle, parsed. */
export const conformanceBundle = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(CONFORMANCE, `${name}.sigstore.json`), 'utf8')) as Record<string, unknown>;

/** The artifact the conformance message-signature bundles sign. */
export const A_TXT = readFileSync(join(CONFORMANCE, 'a.txt'));

/** The conformance suite's signer (GitHub Actions). */
export const BEACON = {
  issuer: 'https://token.actions.githubusercontent.com',
  subject:
    'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main',
};

/** The signatures of one digest, as the loader would return them. */
export function loaded(evidence: readonly SignatureEvidence[]): LoadedSignatures {
  return {
    signatureRef: 'registry.example/bundles:sha256-….sig',
    evidence,
    rejected: [],
    notes: [],
    bundleError: undefined,
    referrersApi: true,
    unread: 0,
  };
}
