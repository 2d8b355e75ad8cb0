/**
 * Turns signature material into what `@sigstore/verify` checks: a `SignedEntity` (signature
 * content, key, log entries, timestamps), plus the leaf certificate and the certificates the
 * signature presented after it. A cosign `.sig` layer becomes the bundle cosign would have
 * written for it (a v0.1-style message-signature bundle: the Rekor bundle annotation is a log
 * entry with its SET, the RFC 3161 annotation a timestamp); a Sigstore bundle is parsed as is.
 */
import { createHash } from 'node:crypto';
import {
  bundleFromJSON,
  BUNDLE_V01_MEDIA_TYPE,
  type Bundle,
  type TransparencyLogEntry,
} from '@sigstore/bundle';
import { RFC3161Timestamp, X509Certificate } from '@sigstore/core';
import { HashAlgorithm } from '@sigstore/protobuf-specs';
import { toSignedEntity, type SignedEntity } from '@sigstore/verify';
import { isObject } from '../core/json';
import { failure, type SignatureMaterial, type SignedContent, type SigstoreFailure } from './types';

/** Material ready for verification. */
export interface PreparedSignature {
  readonly entity: SignedEntity;
  /** The signing certificate; undefined when the signature carries none (key-only signatures). */
  readonly leaf: X509Certificate | undefined;
  /** The certificates the signature carried after the leaf (cosign chain annotation, bundle chain). */
  readonly presentedChain: readonly X509Certificate[];
  readonly content: SignedContent;
}

/** Most certificates a signature may present after its leaf (Fulcio presents two). */
export const MAX_PRESENTED_CHAIN = 10;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;
const DIGEST_ALGORITHMS: Readonly<Record<string, { name: string; proto: HashAlgorithm }>> = {
  sha256: { name: 'sha256', proto: HashAlgorithm.SHA2_256 },
  sha384: { name: 'sha384', proto: HashAlgorithm.SHA2_384 },
  sha512: { name: 'sha512', proto: HashAlgorithm.SHA2_512 },
};
const PROTO_DIGESTS: Readonly<Partial<Record<HashAlgorithm, string>>> = {
  [HashAlgorithm.HASH_ALGORITHM_UNSPECIFIED]: 'sha256',
  [HashAlgorithm.SHA2_256]: 'sha256',
  [HashAlgorithm.SHA2_384]: 'sha384',
  [HashAlgorithm.SHA2_512]: 'sha512',
};

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Every certificate of a PEM text, in order; throws when there is none, more than `max`, or one
 * does not parse.
 */
export function parsePemCertificates(pem: string, max = Number.POSITIVE_INFINITY): X509Certificate[] {
  const blocks = [...pem.matchAll(PEM_CERTIFICATE)];
  if (blocks.length === 0) throw new Error('no PEM certificate found');
  if (blocks.length > max) throw new Error(`${blocks.length} certificates, more than ${max}`);
  return blocks.map((m) =>
    X509Certificate.parse(Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64')),
  );
}

/** Checks and converts material; never throws. */
export function prepareSignature(material: SignatureMaterial): PreparedSignature | SigstoreFailure {
  switch (material.$case) {
    case 'cosign-layer':
      return prepareCosignLayer(material);
    case 'sigstore-bundle':
      return prepareBundle(material.bundle, material.artifact);
  }
}

function parseCertificates(
  leafPem: string | undefined,
  chainPem: string | undefined,
): { leaf: X509Certificate | undefined; chain: X509Certificate[] } | SigstoreFailure {
  let leaf: X509Certificate | undefined;
  try {
    if (leafPem !== undefined) leaf = parsePemCertificates(leafPem)[0];
  } catch (err) {
    return failure('MATERIAL_INVALID', `the certificate annotation does not parse: ${errorText(err)}`);
  }
  try {
    return { leaf, chain: chainPem === undefined ? [] : parsePemCertificates(chainPem, MAX_PRESENTED_CHAIN) };
  } catch (err) {
    return failure('CHAIN_UNTRUSTED', `the chain annotation does not parse: ${errorText(err)}`);
  }
}

/** cosign's `dev.sigstore.cosign/bundle` annotation as a log entry with an inclusion promise. */
export function tlogEntryFromRekorBundle(json: string): TransparencyLogEntry | SigstoreFailure {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return failure('TLOG_INVALID', 'the Rekor bundle annotation is not JSON');
  }
  const payload = isObject(doc) ? doc['Payload'] : undefined;
  const set = isObject(doc) ? doc['SignedEntryTimestamp'] : undefined;
  if (
    !isObject(payload) ||
    typeof set !== 'string' ||
    typeof payload['body'] !== 'string' ||
    !Number.isSafeInteger(payload['integratedTime']) ||
    !Number.isSafeInteger(payload['logIndex']) ||
    typeof payload['logID'] !== 'string' ||
    !/^([0-9a-f]{2})+$/.test(payload['logID'])
  ) {
    return failure(
      'TLOG_INVALID',
      'the Rekor bundle annotation lacks SignedEntryTimestamp or Payload {body, integratedTime, logIndex, logID}',
    );
  }
  const body = Buffer.from(payload['body'], 'base64');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return failure('TLOG_INVALID', 'the Rekor entry body is not JSON');
  }
  const kind = isObject(parsed) ? parsed['kind'] : undefined;
  const version = isObject(parsed) ? parsed['apiVersion'] : undefined;
  if (typeof kind !== 'string' || typeof version !== 'string') {
    return failure('TLOG_INVALID', 'the Rekor entry body names no kind and apiVersion');
  }
  return {
    logIndex: String(payload['logIndex']),
    logId: { keyId: Buffer.from(payload['logID'], 'hex') },
    kindVersion: { kind, version },
    integratedTime: String(payload['integratedTime']),
    inclusionPromise: { signedEntryTimestamp: Buffer.from(set, 'base64') },
    inclusionProof: undefined,
    canonicalizedBody: body,
  };
}

/** The digest algorithm a hashedrekord body names (cosign signs sha256 digests). */
function bodyDigestAlgorithm(entry: TransparencyLogEntry | undefined): {
  name: string;
  proto: HashAlgorithm;
} {
  const fallback = DIGEST_ALGORITHMS['sha256'] as { name: string; proto: HashAlgorithm };
  if (entry === undefined) return fallback;
  try {
    const body: unknown = JSON.parse(entry.canonicalizedBody.toString('utf8'));
    const spec = isObject(body) ? body['spec'] : undefined;
    const data = isObject(spec) ? spec['data'] : undefined;
    const hash = isObject(data) ? data['hash'] : undefined;
    const name = isObject(hash) ? hash['algorithm'] : undefined;
    return (typeof name === 'string' ? DIGEST_ALGORITHMS[name] : undefined) ?? fallback;
  } catch {
    return fallback;
  }
}

function parseTimestamps(timestamps: readonly Buffer[]): SigstoreFailure | undefined {
  for (const der of timestamps) {
    try {
      RFC3161Timestamp.parse(Buffer.from(der));
    } catch (err) {
      return failure('TIMESTAMP_INVALID', `an RFC 3161 timestamp does not parse: ${errorText(err)}`);
    }
  }
  return undefined;
}

function prepareCosignLayer(
  material: SignatureMaterial & { $case: 'cosign-layer' },
): PreparedSignature | SigstoreFailure {
  const certs = parseCertificates(material.certificatePem, material.chainPem);
  if ('ok' in certs) return certs;
  const entry =
    material.rekorBundle === undefined ? undefined : tlogEntryFromRekorBundle(material.rekorBundle);
  if (entry !== undefined && 'ok' in entry) return entry;
  const timestamps = material.rfc3161Timestamp === undefined ? [] : [material.rfc3161Timestamp];
  const badTimestamp = parseTimestamps(timestamps);
  if (badTimestamp !== undefined) return badTimestamp;
  const digest = bodyDigestAlgorithm(entry);
  // A leaf-less layer gets a placeholder key; callers that need a certificate stop before using it.
  const content: Bundle['verificationMaterial']['content'] =
    certs.leaf === undefined
      ? { $case: 'publicKey', publicKey: { hint: '' } }
      : {
          $case: 'x509CertificateChain',
          x509CertificateChain: {
            certificates: [certs.leaf, ...certs.chain].map((c) => ({ rawBytes: c.root.toDER() })),
          },
        };
  const bundle: Bundle = {
    mediaType: BUNDLE_V01_MEDIA_TYPE,
    verificationMaterial: {
      content,
      tlogEntries: entry === undefined ? [] : [entry],
      timestampVerificationData: { rfc3161Timestamps: timestamps.map((t) => ({ signedTimestamp: t })) },
    },
    content: {
      $case: 'messageSignature',
      messageSignature: {
        messageDigest: {
          algorithm: digest.proto,
          digest: createHash(digest.name).update(material.payload).digest(),
        },
        signature: material.signature,
      },
    },
  };
  return {
    entity: toSignedEntity(bundle, material.payload),
    leaf: certs.leaf,
    presentedChain: certs.chain,
    content: { $case: 'message', data: material.payload },
  };
}

function prepareBundle(json: unknown, artifact: Buffer | undefined): PreparedSignature | SigstoreFailure {
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    return failure('MATERIAL_INVALID', `not a valid Sigstore bundle: ${errorText(err)}`);
  }
  let certs: X509Certificate[] = [];
  try {
    const vm = bundle.verificationMaterial.content;
    if (vm.$case === 'x509CertificateChain') {
      const raw = vm.x509CertificateChain.certificates;
      if (raw.length > MAX_PRESENTED_CHAIN + 1)
        return failure('CHAIN_UNTRUSTED', `the bundle chain holds ${raw.length} certificates`);
      certs = raw.map((c) => X509Certificate.parse(Buffer.from(c.rawBytes)));
    } else if (vm.$case === 'certificate') {
      certs = [X509Certificate.parse(Buffer.from(vm.certificate.rawBytes))];
    }
  } catch (err) {
    return failure('MATERIAL_INVALID', `a bundle certificate does not parse: ${errorText(err)}`);
  }
  // protobuf-specs: a bundle's chain must not carry the trust anchor (cosign's chain annotation does).
  if (certs.slice(1).some((c) => c.subject.equals(c.issuer) && c.verify())) {
    return failure('CHAIN_UNTRUSTED', "the bundle's certificate chain carries a root certificate");
  }
  const tsData = bundle.verificationMaterial.timestampVerificationData;
  const badTimestamp = parseTimestamps((tsData?.rfc3161Timestamps ?? []).map((t) => t.signedTimestamp));
  if (badTimestamp !== undefined) return badTimestamp;
  let content: SignedContent;
  switch (bundle.content.$case) {
    case 'messageSignature': {
      if (artifact === undefined)
        return failure('MATERIAL_INVALID', 'a message-signature bundle needs the artifact');
      const { messageDigest } = bundle.content.messageSignature;
      const algorithm = PROTO_DIGESTS[messageDigest.algorithm];
      if (algorithm === undefined)
        return failure('MATERIAL_INVALID', 'the bundle digest algorithm is not supported');
      // @sigstore/verify matches the log entry against the bundle's digest but verifies the
      // signature over the artifact: the two must be the same thing.
      if (!createHash(algorithm).update(artifact).digest().equals(Buffer.from(messageDigest.digest))) {
        return failure('SIGNATURE_INVALID', 'the bundle message digest is not the digest of the artifact');
      }
      content = { $case: 'message', data: artifact };
      break;
    }
    case 'dsseEnvelope': {
      const env = bundle.content.dsseEnvelope;
      content = { $case: 'dsse', payloadType: env.payloadType, payload: Buffer.from(env.payload) };
      break;
    }
  }
  try {
    return {
      entity: toSignedEntity(bundle, artifact),
      leaf: certs[0],
      presentedChain: certs.slice(1),
      content,
    };
  } catch (err) {
    return failure('MATERIAL_INVALID', `the bundle cannot be read: ${errorText(err)}`);
  }
}
