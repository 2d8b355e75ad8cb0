/**
 * Reading the Sigstore material of a cosign `.sig` layer from its annotations, as cosign writes
 * them for keyless (and `--certificate`) signatures.
 */
import { isObject } from '../core/json';
import { failure, type SignatureMaterial, type SigstoreFailure } from './types';

/** The layer annotations cosign writes next to the signature. */
export const COSIGN_ANNOTATIONS = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  rekorBundle: 'dev.sigstore.cosign/bundle',
  rfc3161Timestamp: 'dev.sigstore.cosign/rfc3161timestamp',
} as const;

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim().length === 0 ? undefined : value;

/**
 * The material of one `.sig` layer: its blob (`payload`) and annotations. The RFC 3161 annotation
 * is cosign's JSON `{"SignedRFC3161Timestamp": "<base64 DER>"}`. Never throws: a layer without a
 * signature is MATERIAL_INVALID, an unreadable timestamp annotation TIMESTAMP_INVALID.
 */
export function materialFromCosignLayer(
  payload: Buffer,
  annotations: Readonly<Record<string, string>>,
): SignatureMaterial | SigstoreFailure {
  const signature = nonEmpty(annotations[COSIGN_ANNOTATIONS.signature]);
  if (signature === undefined) return failure('MATERIAL_INVALID', 'the layer has no signature annotation');
  let rfc3161Timestamp: Buffer | undefined;
  const timestamp = nonEmpty(annotations[COSIGN_ANNOTATIONS.rfc3161Timestamp]);
  if (timestamp !== undefined) {
    let doc: unknown;
    try {
      doc = JSON.parse(timestamp);
    } catch {
      return failure('TIMESTAMP_INVALID', 'the RFC 3161 timestamp annotation is not JSON');
    }
    const encoded = isObject(doc) ? doc['SignedRFC3161Timestamp'] : undefined;
    if (typeof encoded !== 'string' || encoded.length === 0) {
      return failure('TIMESTAMP_INVALID', 'the RFC 3161 timestamp annotation has no SignedRFC3161Timestamp');
    }
    rfc3161Timestamp = Buffer.from(encoded, 'base64');
  }
  return {
    $case: 'cosign-layer',
    payload,
    signature: Buffer.from(signature, 'base64'),
    certificatePem: nonEmpty(annotations[COSIGN_ANNOTATIONS.certificate]),
    chainPem: nonEmpty(annotations[COSIGN_ANNOTATIONS.chain]),
    rekorBundle: nonEmpty(annotations[COSIGN_ANNOTATIONS.rekorBundle]),
    rfc3161Timestamp,
  };
}
