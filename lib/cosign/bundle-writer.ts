/**
 * Writing Sigstore bundles (v0.3) as cosign v3 does with `--new-bundle-format`: a DSSE envelope
 * over an in-toto statement with cosign's signing predicate, no transparency-log entry, stored as
 * an OCI referrer of the image (an image manifest with `artifactType` the bundle media type, the
 * empty config, the bundle as its one layer and the image as its `subject`).
 */
import { bundleToJSON, toDSSEBundle } from '@sigstore/bundle';
import type { Descriptor } from '../registry/types';
import { MEDIA_TYPES } from '../registry/types';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE } from './dsse';
import { sha256Digest } from './payload';

/** The empty config (`application/vnd.oci.empty.v1+json`) every referrer manifest names. */
export const EMPTY_CONFIG = Buffer.from('{}');

/** On the referrer manifest and on its entry in the fallback index, as cosign writes them. */
export const BUNDLE_ANNOTATIONS = {
  'dev.sigstore.bundle.content': 'dsse-envelope',
  'dev.sigstore.bundle.predicateType': COSIGN_SIGN_PREDICATE,
} as const;

/** The bytes of a v0.3 bundle holding one DSSE signature over `statement` and the key hint. */
export function dsseBundle(statement: Buffer, signature: Buffer, keyHint: string | undefined): Buffer {
  // What @sigstore/sign's DSSEBundleBuilder does with no transparency-log witness, without
  // importing the package's index (which brings Fulcio, Rekor and TSA clients into the Lambda
  // bundles: 0.66 MB → 1.6 MB).
  const bundle = toDSSEBundle({
    artifact: statement,
    artifactType: IN_TOTO_PAYLOAD_TYPE,
    signature,
    keyHint,
    certificateChain: false,
  });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)), 'utf8');
}

/** The referrer manifest that carries one bundle, with `subject` the image. */
export function bundleReferrerManifest(subject: Descriptor, bundle: Buffer, created: Date): Buffer {
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType: MEDIA_TYPES.sigstoreBundle,
    config: {
      mediaType: MEDIA_TYPES.ociEmpty,
      digest: sha256Digest(EMPTY_CONFIG),
      size: EMPTY_CONFIG.length,
    },
    layers: [{ mediaType: MEDIA_TYPES.sigstoreBundle, digest: sha256Digest(bundle), size: bundle.length }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { ...BUNDLE_ANNOTATIONS, 'org.opencontainers.image.created': created.toISOString() },
  };
  return Buffer.from(JSON.stringify(manifest), 'utf8');
}
