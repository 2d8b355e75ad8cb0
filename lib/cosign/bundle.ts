/**
 * Reading Sigstore bundles (v0.1 to v0.3) stored as referrers of an image: a DSSE envelope over an
 * in-toto statement with cosign's signing predicate (what cosign v3 writes with
 * `--new-bundle-format`), or a message signature over the image manifest itself (its message digest
 * is the image digest). `bundle-writer.ts` builds the DSSE ones; this side stays free of
 * `@sigstore/bundle`, which signing and the Sigstore checks use: here the bundle is only read far
 * enough to know what it claims, and kept whole for the witnesses that verify its material.
 */
import { createHash } from 'node:crypto';
import { isObject } from '../core/json';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, preAuthEncoding } from './dsse';
import type { SignatureEvidence } from './evidence';

/** Bundles larger than this are not read. */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

/** True for Sigstore bundle media and artifact types, of any version. */
export const isBundleType = (type: string | undefined): boolean =>
  type !== undefined && type.startsWith('application/vnd.dev.sigstore.bundle');

/** A bundle's evidence, before the caller gives it its id. */
export type BundleEvidence = Omit<SignatureEvidence, 'id'>;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const decodeBase64 = (value: unknown): Buffer | undefined =>
  typeof value === 'string' && value.length > 0 && BASE64.test(value)
    ? Buffer.from(value, 'base64')
    : undefined;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Parses a bundle's JSON and checks its media type; returns the bundle or the problem. */
export function readBundleJson(bytes: Buffer): Readonly<Record<string, unknown>> | string {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'bundle is not JSON';
  }
  if (!isObject(json)) return 'bundle is not a JSON object';
  if (typeof json.mediaType !== 'string' || !isBundleType(json.mediaType))
    return 'bundle mediaType is not a Sigstore bundle';
  return json;
}

/**
 * The digest (`sha256:<hex>`) a message-signature bundle signs, undefined for a DSSE bundle, or the
 * problem when the message signature names no SHA-256 digest.
 */
export function messageDigestOf(
  json: Readonly<Record<string, unknown>>,
): { readonly digest: string } | string | undefined {
  const message = json.messageSignature;
  if (message === undefined) return undefined;
  const messageDigest = isObject(message) ? message.messageDigest : undefined;
  if (!isObject(messageDigest) || messageDigest.algorithm !== 'SHA2_256')
    return 'message signature has no SHA2_256 message digest';
  const digest = decodeBase64(messageDigest.digest);
  if (digest?.length !== 32) return 'message digest is not 32 base64 bytes';
  return { digest: `sha256:${digest.toString('hex')}` };
}

/**
 * Reads a Sigstore bundle into evidence (id left to the caller), or the problem. A DSSE bundle
 * must hold an in-toto statement with cosign's signing predicate; a message-signature bundle needs
 * `artifact`, the bytes it signs (the image manifest), whose sha256 must be its message digest.
 */
export function parseBundle(bytes: Buffer, artifact?: Buffer): BundleEvidence | string {
  const json = readBundleJson(bytes);
  return typeof json === 'string' ? json : bundleEvidence(json, artifact);
}

/** `parseBundle` on a bundle already read with `readBundleJson`. */
export function bundleEvidence(
  json: Readonly<Record<string, unknown>>,
  artifact?: Buffer,
): BundleEvidence | string {
  const certificate = certificateOf(json);
  const material = { $case: 'sigstore-bundle' as const, bundle: json, artifact };
  const message = messageDigestOf(json);
  if (typeof message === 'string') return message;
  if (message !== undefined) {
    const signature = isObject(json.messageSignature)
      ? decodeBase64(json.messageSignature.signature)
      : undefined;
    if (signature === undefined) return 'message signature has no base64 signature';
    if (artifact === undefined) return 'a message-signature bundle needs the manifest it signs';
    if (`sha256:${createHash('sha256').update(artifact).digest('hex')}` !== message.digest) {
      return `message digest ${message.digest} is not the digest of the signed manifest`;
    }
    return {
      source: 'bundle',
      signedData: artifact,
      signature,
      // A message signature names a digest, never a repository.
      claims: {
        digests: [message.digest],
        identity: undefined,
        subjects: [{ digest: message.digest, name: undefined }],
        tag: undefined,
      },
      certificate,
      material,
    };
  }
  const envelope = json.dsseEnvelope;
  if (!isObject(envelope)) return 'bundle has neither a dsseEnvelope nor a messageSignature';
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
    .filter((s) => s !== undefined && SHA256_DIGEST.test(s.digest)) as {
    digest: string;
    name: string | undefined;
  }[];
  const digests = subjects.map((s) => s.digest);
  if (digests.length === 0) return 'in-toto statement has no sha256 subject';
  return {
    source: 'bundle',
    signedData: preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload),
    signature,
    claims: { digests, identity: undefined, subjects, tag: undefined },
    certificate,
    material,
  };
}

/** The signing certificate of a bundle, as PEM: v0.3's `certificate`, or the first of an older chain. */
function certificateOf(json: Readonly<Record<string, unknown>>): string | undefined {
  const material = isObject(json.verificationMaterial) ? json.verificationMaterial : {};
  const chain = isObject(material.x509CertificateChain)
    ? material.x509CertificateChain.certificates
    : undefined;
  const first = Array.isArray(chain) ? (chain[0] as unknown) : undefined;
  const raw = isObject(material.certificate)
    ? decodeBase64(material.certificate.rawBytes)
    : isObject(first)
      ? decodeBase64(first.rawBytes)
      : undefined;
  return raw === undefined
    ? undefined
    : `-----BEGIN CERTIFICATE-----\n${raw.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
}
