import type { Descriptor, FetchedManifest, ImageManifest } from '../registry/types';
import { MEDIA_TYPES } from '../registry/types';
import { sha256Digest } from './payload';

/** The layer annotation holding the base64 signature over the payload blob. */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** Annotations cosign's keyless flow adds; Signet preserves them and reads them when verifying. */
export const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
export const BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';

/** Artifact and layer types that mark a manifest as a signature, attestation or bundle. */
export const SIGNATURE_ARTIFACT_TYPES: readonly string[] = [
  MEDIA_TYPES.cosignSimpleSigning,
  MEDIA_TYPES.sigstoreBundle,
  'application/vnd.dsse.envelope.v1+json',
  'application/vnd.in-toto+json',
  'application/vnd.dev.cosign.artifact.sig.v1+json',
  'application/vnd.dev.cosign.artifact.sbom.v1+json',
  'application/vnd.cncf.notary.signature',
];

/** True for media and artifact types of signatures, attestations, SBOM attachments and bundles. */
export const isSignatureArtifactType = (type: string | undefined): boolean =>
  type !== undefined &&
  (SIGNATURE_ARTIFACT_TYPES.includes(type) ||
    type.startsWith('application/vnd.dev.sigstore.bundle') ||
    type.startsWith('application/vnd.dev.cosign.') ||
    type.startsWith('application/vnd.in-toto'));

/**
 * True for manifests that are themselves signatures, attestations or Sigstore bundles: cosign's
 * `.sig`/`.att` images (every layer a signature type) and OCI referrers of those artifact types.
 * Signet never signs these, or a `**` rule would loop forever.
 */
export function isSignatureArtifact(manifest: FetchedManifest['manifest']): boolean {
  if (isSignatureArtifactType(manifest.artifactType)) return true;
  if (!('layers' in manifest)) return false;
  if (isSignatureArtifactType(manifest.config?.mediaType)) return true;
  return (
    manifest.layers.length > 0 && manifest.layers.every((layer) => isSignatureArtifactType(layer.mediaType))
  );
}

/** A cosign signature layer: the payload blob and its signature. */
export interface SignatureLayerInput {
  readonly payload: Buffer;
  readonly signature: Buffer;
  /** Extra layer annotations (certificate, chain, Signet's own). */
  readonly annotations?: Readonly<Record<string, string>>;
}

export function signatureLayerDescriptor(layer: SignatureLayerInput): Descriptor {
  return {
    mediaType: MEDIA_TYPES.cosignSimpleSigning,
    size: layer.payload.length,
    digest: sha256Digest(layer.payload),
    annotations: { ...layer.annotations, [SIGNATURE_ANNOTATION]: layer.signature.toString('base64') },
  };
}

/**
 * The config blob go-containerregistry (and so cosign) writes for a signature image: an empty
 * image config whose rootfs lists the (uncompressed) payload layers.
 */
export function signatureConfigBlob(layers: readonly Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
      config: {},
    }),
    'utf8',
  );
}

/** The `.sig` manifest for a list of layers (config descriptor computed from the config blob). */
export function signatureManifest(layers: readonly Descriptor[], config: Buffer): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, size: config.length, digest: sha256Digest(config) },
    layers,
  };
}

/** Decodes a layer's signature annotation; undefined when absent or not base64. */
export function layerSignature(layer: Descriptor): Buffer | undefined {
  const value = layer.annotations?.[SIGNATURE_ANNOTATION];
  if (typeof value !== 'string' || value.length === 0 || value.length > 16_384) return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return undefined;
  return Buffer.from(value, 'base64');
}
