/**
 * Reading Sigstore bundles (v0.3) as cosign v3 writes them with `--new-bundle-format`: a DSSE
 * envelope over an in-toto statement with cosign's signing predicate. `bundle-writer.ts` builds
 * them; this side stays free of `@sigstore/bundle`, which only signing needs.
 */
import { isObject } from '../core/json';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, preAuthEncoding } from './dsse';
import type { SignatureEvidence } from './evidence';

/** Bundles larger than this are not read. */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

/** True for Sigstore bundle media and artifact types, of any version. */
export const isBundleType = (type: string | undefined): boolean =>
  type !== undefined && type.startsWith('application/vnd.dev.sigstore.bundle');

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const decodeBase64 = (value: unknown): Buffer | undefined =>
  typeof value === 'string' && value.length > 0 && BASE64.test(value)
    ? Buffer.from(value, 'base64')
    : undefined;

/**
 * Reads a Sigstore bundle holding a DSSE envelope over an in-toto statement with cosign's signing
 * predicate; returns the evidence (id left to the caller) or the problem.
 */
export function parseBundle(bytes: Buffer): Omit<SignatureEvidence, 'id'> | string {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'bundle is not JSON';
  }
  if (!isObject(json)) return 'bundle is not a JSON object';
  if (typeof json.mediaType !== 'string' || !isBundleType(json.mediaType))
    return 'bundle mediaType is not a Sigstore bundle';
  const envelope = json.dsseEnvelope;
  if (!isObject(envelope)) return 'bundle has no dsseEnvelope (message-signature bundles are not supported)';
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return `DSSE payloadType is not ${IN_TOTO_PAYLOAD_TYPE}`;
  const payload = decodeBase64(envelope.payload);
  if (payload === undefined) return 'DSSE payload is not base64';
  const signatures = Array.isArray(envelope.signatures) ? envelope.signatures : [];
  const signature =
    signatures.length === 1 && isObject(signatures[0]) ? decodeBase64(signatures[0].sig) : undefined;
  if (signature === undefined) return 'DSSE envelope must hold exactly one base64 signature';
  let statement: unknown;
  try {
    statement = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'in-toto statement is not JSON';
  }
  if (!isObject(statement)) return 'in-toto statement is not a JSON object';
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE) {
    return `predicateType ${String(statement.predicateType)} is not ${COSIGN_SIGN_PREDICATE}`;
  }
  const subjects = (Array.isArray(statement.subject) ? statement.subject : [])
    .map((s) =>
      isObject(s) && isObject(s.digest) && typeof s.digest.sha256 === 'string'
        ? { digest: `sha256:${s.digest.sha256}`, name: typeof s.name === 'string' ? s.name : undefined }
        : undefined,
    )
    .filter((s) => s !== undefined && /^sha256:[a-f0-9]{64}$/.test(s.digest)) as {
    digest: string;
    name: string | undefined;
  }[];
  const digests = subjects.map((s) => s.digest);
  if (digests.length === 0) return 'in-toto statement has no sha256 subject';
  const material = isObject(json.verificationMaterial) ? json.verificationMaterial : {};
  const rawCertificate = isObject(material.certificate)
    ? decodeBase64(material.certificate.rawBytes)
    : undefined;
  return {
    source: 'bundle',
    signedData: preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload),
    signature,
    claims: { digests, identity: undefined, subjects, tag: undefined },
    certificate:
      rawCertificate === undefined
        ? undefined
        : `-----BEGIN CERTIFICATE-----\n${rawCertificate.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`,
  };
}
