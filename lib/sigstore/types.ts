/**
 * The vocabulary of Signet's Sigstore verification: what a signature brings (material), what a
 * witness trusts (trusted root, roots), what it requires (keyless policy), and the verdicts.
 */
import type { KeyObject } from 'node:crypto';
import type { TrustMaterial } from '@sigstore/verify';
import type { SubjectPattern } from './pattern';

/**
 * What one signature brings to be verified. A tagged union: switch on `$case`.
 * - `cosign-layer`: a layer of a cosign `sha256-<hex>.sig` manifest (the blob and its annotations,
 *   see `materialFromCosignLayer`).
 * - `sigstore-bundle`: a Sigstore bundle (v0.1 to v0.3) as parsed JSON; `artifact` is the signed
 *   blob for a message-signature bundle, unused for a DSSE bundle (the payload is inside).
 */
export type SignatureMaterial =
  | {
      readonly $case: 'cosign-layer';
      /** The layer blob: the simple-signing payload that was signed. */
      readonly payload: Buffer;
      /** `dev.cosignproject.cosign/signature`, base64-decoded. */
      readonly signature: Buffer;
      /** `dev.sigstore.cosign/certificate`: the PEM leaf certificate. */
      readonly certificatePem: string | undefined;
      /** `dev.sigstore.cosign/chain`: PEM intermediates then root, as cosign writes them. */
      readonly chainPem: string | undefined;
      /** `dev.sigstore.cosign/bundle`: cosign's Rekor bundle JSON (SET and log entry). */
      readonly rekorBundle: string | undefined;
      /** `dev.sigstore.cosign/rfc3161timestamp`, decoded: a DER RFC 3161 timestamp response. */
      readonly rfc3161Timestamp: Buffer | undefined;
    }
  | { readonly $case: 'sigstore-bundle'; readonly bundle: unknown; readonly artifact: Buffer | undefined };

/** A Sigstore trusted root (Fulcio CAs, Rekor logs, CT logs, TSAs) ready to verify against. */
export interface TrustedRoot {
  /** `public-good` or the file it was read from, for messages. */
  readonly source: string;
  readonly material: TrustMaterial;
}

/** GitHub Actions claims Fulcio writes into the certificate; each one given must match exactly. */
export interface WorkflowClaims {
  /** `owner/repo` (cosign's `--certificate-github-workflow-repository`). */
  readonly repository: string | undefined;
  /** `refs/heads/main`, `refs/tags/v1.2.3`. */
  readonly ref: string | undefined;
  /** The event that ran the workflow: `push`, `release`, `workflow_dispatch`. */
  readonly trigger: string | undefined;
}

/** How a keyless certificate's subject must look. Switch on `$case`. */
export type SubjectRequirement =
  | { readonly $case: 'exact'; readonly subject: string }
  | { readonly $case: 'pattern'; readonly pattern: SubjectPattern };

/** The identity a keyless witness requires, fully specified (see `keylessPolicy`). */
export interface KeylessPolicy {
  /** The OIDC issuer, compared exactly. */
  readonly issuer: string;
  readonly subject: SubjectRequirement;
  readonly claims: WorkflowClaims;
}

/** Why a signature did not verify; each failure has its own code. */
export type SigstoreFailureCode =
  /** The material is malformed: no certificate, a certificate or bundle that does not parse. */
  | 'MATERIAL_INVALID'
  /** The signature does not verify with the certificate's key over the signed content. */
  | 'SIGNATURE_INVALID'
  /** The certificate does not chain to a trusted root (Fulcio CA, or a witness's roots). */
  | 'CHAIN_UNTRUSTED'
  /** The certificate (or a CA above it) was not valid at the time the signature was made. */
  | 'CERT_EXPIRED_AT_SIGNING'
  /** The certificate's SCTs do not verify against the trusted root's CT logs. */
  | 'SCT_INVALID'
  /** The certificate names another issuer, subject or workflow claim than the policy requires. */
  | 'IDENTITY_MISMATCH'
  /** No transparency-log entry, where one is required. */
  | 'TLOG_MISSING'
  /** A log entry does not verify: SET, inclusion proof, checkpoint, or body not for this signature. */
  | 'TLOG_INVALID'
  /** No signed time (log integrated time with SET, or RFC 3161 timestamp) where one is required. */
  | 'TIMESTAMP_MISSING'
  /** An RFC 3161 timestamp does not verify (untrusted TSA, wrong imprint, bad signature). */
  | 'TIMESTAMP_INVALID';

/** A verification that failed, with its code and a human detail. */
export interface SigstoreFailure {
  readonly ok: false;
  readonly code: SigstoreFailureCode;
  readonly detail: string;
}

/** Where the time a signature was made comes from. */
export type TimeSource = 'tlog' | 'tsa' | 'verification-time';

/** What was signed, as verified: the blob, or the DSSE payload and its type. Switch on `$case`. */
export type SignedContent =
  | { readonly $case: 'message'; readonly data: Buffer }
  | { readonly $case: 'dsse'; readonly payloadType: string; readonly payload: Buffer };

/** The verdict on a signature checked against a keyless witness. */
export type KeylessVerdict =
  | {
      readonly ok: true;
      readonly identity: { readonly issuer: string; readonly subject: string };
      /** The signing certificate's public key, which verified the signature. */
      readonly key: KeyObject;
      /** The earliest verified time the signature existed. */
      readonly signedAt: Date;
      readonly timeSource: Exclude<TimeSource, 'verification-time'>;
      readonly content: SignedContent;
    }
  | SigstoreFailure;

/** The verdict on a signature checked against a certificate witness. */
export type CertificateVerdict =
  | {
      readonly ok: true;
      /** The leaf's public key, which verified the signature. */
      readonly key: KeyObject;
      /** The leaf's subject alternative name, when it has one. */
      readonly subject: string | undefined;
      readonly signedAt: Date;
      readonly timeSource: TimeSource;
      readonly content: SignedContent;
    }
  | SigstoreFailure;

/** Builds a failure. */
export const failure = (code: SigstoreFailureCode, detail: string): SigstoreFailure => ({
  ok: false,
  code,
  detail,
});

/** True for a failure verdict (or a failure returned in place of a value). */
export const isFailure = (value: object): value is SigstoreFailure => 'ok' in value && value.ok === false;
