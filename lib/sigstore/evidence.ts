/**
 * The checks that do not depend on the certificate chain: the signature, the transparency-log
 * entries (SET or inclusion proof and checkpoint, body for this signature) and the RFC 3161
 * timestamps. They run first, through `@sigstore/verify`'s own `Verifier` with the leaf's key
 * presented as a plain public key, so that a later certificate failure is known to be about the
 * certificate, and each failure gets its own code (the Verifier checks the chain first and
 * reports anything about it as one CERTIFICATE_ERROR).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { TransparencyLogEntry } from '@sigstore/bundle';
import type { X509Certificate } from '@sigstore/core';
import { VerificationError, Verifier, type SignedEntity, type TrustMaterial } from '@sigstore/verify';
import { isObject } from '../core/json';
import { parsePemCertificates } from './material';
import { failure, type SigstoreFailure } from './types';

/** A verified time at which the signature existed. */
export interface SignedTime {
  readonly at: Date;
  readonly source: 'tlog' | 'tsa';
}

/** How much evidence is required. */
export interface EvidenceRequirements {
  readonly tlogEntries: number;
  readonly timestamps: number;
}

const LEAF_HINT = 'signet:signing-certificate';

/** The SPKI public key of a certificate. */
export const publicKeyOf = (cert: X509Certificate): KeyObject =>
  createPublicKey({ key: cert.publicKey, format: 'der', type: 'spki' });

/** Maps a `@sigstore/verify` error from the evidence checks to a failure. */
function classify(err: unknown): SigstoreFailure {
  if (!(err instanceof VerificationError)) {
    return failure(
      'MATERIAL_INVALID',
      `evidence cannot be checked: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const detail = `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}`;
  switch (err.code) {
    case 'TLOG_ERROR':
    case 'TLOG_INCLUSION_PROOF_ERROR':
    case 'TLOG_INCLUSION_PROMISE_ERROR':
    case 'TLOG_MISSING_INCLUSION_ERROR':
    case 'TLOG_BODY_ERROR':
      return failure('TLOG_INVALID', detail);
    case 'TIMESTAMP_ERROR':
      return failure('TIMESTAMP_INVALID', detail);
    case 'SIGNATURE_ERROR':
      return failure('SIGNATURE_INVALID', detail);
    case 'CERTIFICATE_ERROR':
    case 'PUBLIC_KEY_ERROR':
    case 'NOT_IMPLEMENTED_ERROR':
      return failure('MATERIAL_INVALID', detail);
  }
}

/** Timestamps `@sigstore/verify` will count: TSA tokens, and log entries with an integrated time and SET. */
function countTimestamps(entity: SignedEntity): number {
  return entity.timestamps.filter(
    (t) => t.$case === 'timestamp-authority' || t.tlogEntry.inclusionPromise !== undefined,
  ).length;
}

/**
 * Verifies signature, log entries and timestamps of `entity` with `key`, against `trust`'s logs
 * and TSAs. Returns the verified times, or the first failure. Never throws.
 */
export function checkEvidence(
  entity: SignedEntity,
  key: KeyObject,
  trust: TrustMaterial,
  required: EvidenceRequirements,
): readonly SignedTime[] | SigstoreFailure {
  try {
    // The signature first: a forged signature is a forged signature, whatever the log says.
    if (!entity.signature.verifySignature(key)) {
      return failure('SIGNATURE_INVALID', 'the signature does not verify with the signing key');
    }
    if (entity.tlogEntries.length < required.tlogEntries) {
      return failure('TLOG_MISSING', 'the signature has no transparency-log entry');
    }
    if (countTimestamps(entity) < required.timestamps) {
      return failure(
        'TIMESTAMP_MISSING',
        'no signed time: no log entry with an inclusion promise and no RFC 3161 timestamp',
      );
    }
    const keyTrust: TrustMaterial = { ...trust, publicKey: () => ({ publicKey: key, validFor: () => true }) };
    new Verifier(keyTrust, {
      tlogThreshold: required.tlogEntries,
      ctlogThreshold: 0,
      timestampThreshold: required.timestamps,
    }).verify({ ...entity, key: { $case: 'public-key', hint: LEAF_HINT } });
  } catch (err) {
    return classify(err);
  }
  return entity.timestamps.flatMap((t): SignedTime[] => {
    switch (t.$case) {
      case 'timestamp-authority':
        return [{ at: t.timestamp.signingTime, source: 'tsa' }];
      case 'transparency-log':
        return t.tlogEntry.inclusionPromise === undefined
          ? []
          : [{ at: new Date(Number(t.tlogEntry.integratedTime) * 1000), source: 'tlog' }];
    }
  });
}

/**
 * Undefined when every log entry of `entity` was made for this signer (`leaf`, or `key` for a
 * key-only signature), else TLOG_INVALID. Run after the chain check: a forged certificate is
 * reported as untrusted rather than as absent from the log.
 */
export function checkLogNamesSigner(
  entity: SignedEntity,
  key: KeyObject,
  leaf: X509Certificate | undefined,
): SigstoreFailure | undefined {
  const stray = entity.tlogEntries.find((entry) => !entryNamesKey(entry, key, leaf));
  return stray === undefined
    ? undefined
    : failure('TLOG_INVALID', `log entry ${stray.logIndex} was made for another key or certificate`);
}

/**
 * True when the log entry's body names this signing key or certificate, as cosign checks: the
 * entry must not merely carry this signature, it must carry it for this signer. The verifier
 * fields are `publicKey` / `verifier` (base64 PEM, or `{content}` / `{rawBytes}` objects in the
 * hashedrekord, dsse, intoto and Rekor v2 bodies).
 */
function entryNamesKey(
  entry: TransparencyLogEntry,
  key: KeyObject,
  leaf: X509Certificate | undefined,
): boolean {
  let body: unknown;
  try {
    body = JSON.parse(entry.canonicalizedBody.toString('utf8'));
  } catch {
    return false;
  }
  const spki = key.export({ format: 'der', type: 'spki' });
  const leafDer = leaf?.root.toDER();
  return verifierValues(body).some((value) => {
    const bytes = Buffer.from(value, 'base64');
    if (leafDer?.equals(bytes) || spki.equals(bytes)) return true;
    const text = bytes.toString('utf8');
    try {
      if (text.includes('-----BEGIN CERTIFICATE-----')) {
        return leafDer !== undefined && parsePemCertificates(text)[0]?.root.toDER().equals(leafDer) === true;
      }
      if (text.includes('-----BEGIN PUBLIC KEY-----')) {
        return createPublicKey(text).export({ format: 'der', type: 'spki' }).equals(spki);
      }
    } catch {
      return false;
    }
    return false;
  });
}

const VERIFIER_FIELDS = new Set(['publicKey', 'verifier']);

/** The base64 strings found under `publicKey` / `verifier` fields anywhere in a log entry body. */
function verifierValues(node: unknown, underVerifier = false): string[] {
  if (typeof node === 'string') return underVerifier ? [node] : [];
  if (Array.isArray(node)) return node.flatMap((item) => verifierValues(item, underVerifier));
  if (!isObject(node)) return [];
  return Object.entries(node).flatMap(([name, value]) =>
    // Inside a verifier, `content` and `rawBytes` hold the key; elsewhere only verifier fields count
    // (never `payload`, which the signer chooses).
    name === 'payload' ? [] : verifierValues(value, underVerifier || VERIFIER_FIELDS.has(name)),
  );
}
