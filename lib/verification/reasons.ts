/**
 * Why an image, a policy or a witness did not pass: a tagged union on `code`, each variant with the
 * data a user needs to act on it, plus a ready-made `message`. Every denial Signet answers carries
 * one of these. `reasonFromError` is the one place that maps an error class + code to a reason.
 */
import { ConfigError, InputError, KeyError, RegistryError, describeError } from '../core/errors';

/** The data of a reason, before its message is written. Switch on `code`. */
export type ReasonData =
  /** Neither a `.sig` layer nor a Sigstore bundle exists for the digest. */
  | { readonly code: 'NO_SIGNATURES'; readonly signatureRef: string; readonly notes: readonly string[] }
  /** Signatures exist, but none verifies with the witness's key. */
  | { readonly code: 'UNTRUSTED_SIGNER'; readonly witness: string; readonly signatures: number }
  /** The witness signed, but a payload that names another image digest. */
  | {
      readonly code: 'DIGEST_MISMATCH';
      readonly witness: string;
      readonly expected: string;
      readonly signed: readonly string[];
    }
  /** The witness signed this digest in default mode, but for other tags than the one admitted. */
  | {
      readonly code: 'TAG_NOT_SIGNED';
      readonly witness: string;
      readonly tag: string;
      readonly signedTags: readonly string[];
    }
  /**
   * The witness signed this digest, but for another repository than the policy's `signedIdentity`
   * requires (a signature copied along with the image into another repository).
   */
  | {
      readonly code: 'IDENTITY_MISMATCH';
      readonly witness: string;
      /** The repository the signature had to name. */
      readonly required: string;
      /** The identities the witness's valid signatures name. */
      readonly signed: readonly string[];
      readonly identity: string;
    }
  /** The `.sig` manifest holds more signatures than `admission.maxSignatures`, and none read was the witness's. */
  | {
      readonly code: 'TOO_MANY_SIGNATURES';
      readonly signatureRef: string;
      readonly read: number;
      readonly unread: number;
    }
  /** The review read more from registries than `admission.maxReviewBytes` allows. */
  | { readonly code: 'REVIEW_TOO_LARGE'; readonly registry: string; readonly detail: string }
  /** The review did not finish within `admission.deadlineSeconds`. */
  | { readonly code: 'DEADLINE_EXCEEDED'; readonly detail: string }
  /**
   * The witness's signature verifies, but `revocations` voids it (its key or its rule is revoked,
   * or it was made, or may have been made, after the revocation's time).
   */
  | {
      readonly code: 'SIGNATURE_REVOKED';
      readonly witness: string;
      /** What voids it: which revocation, and why (`describeRevocation`). */
      readonly revocation: string;
    }
  /** Fewer than `count` witnesses of an attestor set have a valid signature. */
  | {
      readonly code: 'INSUFFICIENT_WITNESSES';
      readonly required: number;
      readonly valid: number;
      readonly witnesses: readonly { readonly witness: string; readonly code: ReasonCode | 'VALID' }[];
    }
  /** The registry could not be reached or answered 5xx (after retries). */
  | { readonly code: 'REGISTRY_UNREACHABLE'; readonly registry: string; readonly detail: string }
  /** The registry answered 429 (after retries). */
  | { readonly code: 'REGISTRY_RATE_LIMITED'; readonly registry: string; readonly detail: string }
  /** The registry refused (401/403), broke the protocol, or served content with the wrong digest. */
  | {
      readonly code: 'REGISTRY_ERROR';
      readonly registry: string;
      readonly registryCode: string;
      readonly detail: string;
    }
  /** The tag does not exist in the registry. */
  | { readonly code: 'IMAGE_NOT_FOUND'; readonly image: string }
  /** The witness's key could not be used (KMS refused or failed, key file unreadable). */
  | {
      readonly code: 'KEY_UNAVAILABLE';
      readonly witness: string | undefined;
      /** The KeyError / ConfigError code (KMS_THROTTLED, KMS_DISABLED, KEY_UNREADABLE...). */
      readonly keyCode: string;
      readonly detail: string;
    }
  /**
   * A signature for a certificate or keyless witness carries Sigstore material that fails its
   * check: `code` says which (see `SignerCheckCode`), `signature` which signature (payload blob or
   * bundle manifest digest), `detail` what exactly.
   */
  | {
      readonly code: SignerCheckCode;
      readonly witness: string;
      readonly signature: string;
      readonly detail: string;
    }
  /** The image reference does not parse; `field` names where it came from. */
  | { readonly code: 'INVALID_REFERENCE'; readonly field: string; readonly detail: string }
  /** No enabled policy selects the image (or its registry host is covered by none). */
  | { readonly code: 'NO_MATCHING_POLICY'; readonly image: string }
  /** Something unexpected broke; Signet denies rather than admits. */
  | { readonly code: 'INTERNAL_ERROR'; readonly detail: string };

/**
 * Why a signature failed a certificate or keyless witness's checks, one code per check:
 * - `SIGNATURE_MALFORMED`: its certificate, chain, log entry or bundle does not parse.
 * - `SIGNATURE_INVALID`: it does not verify with its own certificate's key (tampered).
 * - `CERT_CHAIN_UNTRUSTED`: the certificate does not chain to the witness's roots (the trusted
 *   root's Fulcio CAs, the configured roots, or the pinned certificate).
 * - `CERT_EXPIRED_AT_SIGNING`: the certificate (or a CA above it) was not valid when the signature
 *   was made (log integrated time, RFC 3161 time, or the verification time when neither exists).
 * - `SCT_INVALID`: the certificate's SCTs do not verify against the trusted root's CT logs.
 * - `SIGNER_IDENTITY_MISMATCH`: a valid certificate, for another OIDC issuer, subject or GitHub
 *   workflow claim than the witness requires (not the repository check, `IDENTITY_MISMATCH`).
 * - `TLOG_MISSING` / `TLOG_INVALID`: no transparency-log entry, or one whose SET, inclusion
 *   proof or body does not verify for this signature.
 * - `TIMESTAMP_MISSING` / `TIMESTAMP_INVALID`: no signed time where one is required, or an RFC 3161
 *   timestamp that does not verify.
 * - `KEY_NOT_VALID_AT_SIGNING`: a key of a rotating witness (`keys:`) verifies it, but was not
 *   valid when it was made (verified log or timestamp time, else the verification time).
 */
export type SignerCheckCode =
  | 'SIGNATURE_MALFORMED'
  | 'SIGNATURE_INVALID'
  | 'CERT_CHAIN_UNTRUSTED'
  | 'CERT_EXPIRED_AT_SIGNING'
  | 'SCT_INVALID'
  | 'SIGNER_IDENTITY_MISMATCH'
  | 'TLOG_MISSING'
  | 'TLOG_INVALID'
  | 'TIMESTAMP_MISSING'
  | 'TIMESTAMP_INVALID'
  | 'KEY_NOT_VALID_AT_SIGNING';

/** Every reason code. */
export type ReasonCode = ReasonData['code'];

/** A reason with its human message. */
export type Reason = ReasonData & { readonly message: string };

/** Builds a reason, writing its message once. */
export function reason(data: ReasonData): Reason {
  return { ...data, message: describeReason(data) };
}

/** What each signer check failure says, before its detail. */
const SIGNER_CHECK_SUMMARY: Readonly<Record<SignerCheckCode, string>> = {
  SIGNATURE_MALFORMED: 'the signature material is malformed',
  SIGNATURE_INVALID: 'the signature does not verify with its certificate',
  CERT_CHAIN_UNTRUSTED: 'the signing certificate is not trusted',
  CERT_EXPIRED_AT_SIGNING: 'the signing certificate was not valid when the signature was made',
  SCT_INVALID: 'the signing certificate has no valid certificate-transparency proof (SCT)',
  SIGNER_IDENTITY_MISMATCH: 'the signing certificate is for another identity',
  TLOG_MISSING: 'the signature has no transparency-log entry',
  TLOG_INVALID: 'the transparency-log entry does not verify',
  TIMESTAMP_MISSING: 'the signature has no signed time',
  TIMESTAMP_INVALID: 'the signed timestamp does not verify',
  KEY_NOT_VALID_AT_SIGNING: 'the signing key was not valid when the signature was made',
};

const list = (values: readonly string[], max = 3): string => {
  const shown = values.slice(0, max).map((v) => `"${v}"`);
  return values.length > max ? `${shown.join(', ')} and ${values.length - max} more` : shown.join(', ');
};

/** The one-line message of a reason. */
export function describeReason(data: ReasonData): string {
  switch (data.code) {
    case 'NO_SIGNATURES':
      return `no signatures: ${data.signatureRef} does not exist or holds no cosign signature${
        data.notes.length > 0 ? ` (${data.notes.join('; ')})` : ''
      }`;
    case 'UNTRUSTED_SIGNER':
      return `${data.signatures} signature(s) found, none valid for witness "${data.witness}"`;
    case 'DIGEST_MISMATCH':
      return `witness "${data.witness}" signed digest ${data.signed.join(', ')}, not ${data.expected}`;
    case 'TAG_NOT_SIGNED':
      return `witness "${data.witness}" signed tag ${list(data.signedTags)}, not "${data.tag}"`;
    case 'IDENTITY_MISMATCH':
      return `witness "${data.witness}" signed this digest for ${list(data.signed)}, not for "${data.required}" (signedIdentity ${data.identity})`;
    case 'SIGNATURE_REVOKED':
      return `witness "${data.witness}" signed, but ${data.revocation}`;
    case 'TOO_MANY_SIGNATURES':
      return `${data.signatureRef} holds ${data.read + data.unread} signatures; the first ${data.read} were read (admission.maxSignatures) and none is the witness's`;
    case 'REVIEW_TOO_LARGE':
      return `registry ${data.registry} served more than this review may read (admission.maxReviewBytes): ${data.detail}`;
    case 'DEADLINE_EXCEEDED':
      return `verification did not finish in time (admission.deadlineSeconds): ${data.detail}`;
    case 'INSUFFICIENT_WITNESSES':
      return `${data.valid} of the ${data.required} required witnesses signed (${data.witnesses
        .map((w) => `${w.witness}: ${w.code}`)
        .join(', ')})`;
    case 'REGISTRY_UNREACHABLE':
      return `registry ${data.registry} is unreachable: ${data.detail}`;
    case 'REGISTRY_RATE_LIMITED':
      return `registry ${data.registry} is rate-limiting Signet (HTTP 429): ${data.detail}`;
    case 'REGISTRY_ERROR':
      return `registry ${data.registry} failed (${data.registryCode}): ${data.detail}`;
    case 'IMAGE_NOT_FOUND':
      return `${data.image} does not exist in the registry`;
    case 'KEY_UNAVAILABLE':
      return `${data.witness !== undefined ? `the key of witness "${data.witness}"` : 'a witness key'} is unavailable (${data.keyCode}): ${data.detail}`;
    case 'SIGNATURE_MALFORMED':
    case 'SIGNATURE_INVALID':
    case 'CERT_CHAIN_UNTRUSTED':
    case 'CERT_EXPIRED_AT_SIGNING':
    case 'SCT_INVALID':
    case 'SIGNER_IDENTITY_MISMATCH':
    case 'TLOG_MISSING':
    case 'TLOG_INVALID':
    case 'TIMESTAMP_MISSING':
    case 'TIMESTAMP_INVALID':
    case 'KEY_NOT_VALID_AT_SIGNING':
      return `witness "${data.witness}": ${SIGNER_CHECK_SUMMARY[data.code]} (signature ${data.signature}): ${data.detail}`;
    case 'INVALID_REFERENCE':
      return `${data.field}: invalid image reference: ${data.detail}`;
    case 'NO_MATCHING_POLICY':
      return `no enabled policy covers ${data.image}`;
    case 'INTERNAL_ERROR':
      return `internal error: ${data.detail}`;
  }
}

/**
 * True for reasons that say something broke rather than that the image is untrusted: these are
 * the ones a policy's `failurePolicy: allow` may waive. Everything else is a verdict on the image.
 * A registry that serves malformed or mismatching content is not "broken" in that sense: whoever
 * can push could forge such content, so it never lets an image in.
 */
export function isOperationalFailure(data: ReasonData): boolean {
  switch (data.code) {
    case 'REGISTRY_UNREACHABLE':
    case 'REGISTRY_RATE_LIMITED':
      return true;
    case 'REGISTRY_ERROR':
      return OPERATIONAL_REGISTRY_CODES.has(data.registryCode);
    case 'KEY_UNAVAILABLE':
      // KMS being slow or down is an outage. A disabled, deleted or forbidden key may well be a
      // revocation, and a missing key file a configuration mistake: neither admits anything.
      return OPERATIONAL_KEY_CODES.has(data.keyCode);
    case 'NO_SIGNATURES':
    case 'UNTRUSTED_SIGNER':
    case 'DIGEST_MISMATCH':
    case 'IDENTITY_MISMATCH':
    case 'SIGNATURE_REVOKED':
    case 'TOO_MANY_SIGNATURES':
    case 'REVIEW_TOO_LARGE':
    case 'DEADLINE_EXCEEDED':
    case 'TAG_NOT_SIGNED':
    case 'INSUFFICIENT_WITNESSES':
    case 'IMAGE_NOT_FOUND':
    case 'SIGNATURE_MALFORMED':
    case 'SIGNATURE_INVALID':
    case 'CERT_CHAIN_UNTRUSTED':
    case 'CERT_EXPIRED_AT_SIGNING':
    case 'SCT_INVALID':
    case 'SIGNER_IDENTITY_MISMATCH':
    case 'TLOG_MISSING':
    case 'TLOG_INVALID':
    case 'TIMESTAMP_MISSING':
    case 'TIMESTAMP_INVALID':
    case 'KEY_NOT_VALID_AT_SIGNING':
    case 'INVALID_REFERENCE':
    case 'NO_MATCHING_POLICY':
    case 'INTERNAL_ERROR':
      // Unexpected failures are never waived either: Signet does not admit because it is broken.
      // Nor is a passed deadline: whoever serves the registry's answers could stall them on purpose.
      return false;
  }
}

const OPERATIONAL_KEY_CODES: ReadonlySet<string> = new Set(['KMS_THROTTLED', 'KMS_UNAVAILABLE']);

/** Registry refusals that come from credentials or permissions, not from the content served. */
const OPERATIONAL_REGISTRY_CODES: ReadonlySet<string> = new Set(['UNAUTHORIZED', 'DENIED', 'NOT_ALLOWED']);

const detailOf = (err: SignetErrorLike): string => {
  // RegistryError and KeyError messages start with the host / key id the reason already names.
  const prefix =
    err instanceof RegistryError ? `${err.registry}: ` : err instanceof KeyError ? `${err.keyId}: ` : '';
  const message = describeError(err);
  return prefix !== '' && message.startsWith(prefix) ? message.slice(prefix.length) : message;
};

type SignetErrorLike = RegistryError | KeyError | ConfigError | InputError;

/**
 * The reason for an error thrown while verifying. Registry errors keep their host; key and config
 * errors raised while loading a witness key name the witness; anything else is INTERNAL_ERROR.
 */
export function reasonFromError(err: unknown, context: { witness?: string; field?: string } = {}): Reason {
  if (err instanceof RegistryError) {
    switch (err.code) {
      case 'BUDGET_EXCEEDED':
        return reason({ code: 'REVIEW_TOO_LARGE', registry: err.registry, detail: detailOf(err) });
      case 'ABORTED':
        return reason({ code: 'DEADLINE_EXCEEDED', detail: detailOf(err) });
      case 'RATE_LIMITED':
        return reason({ code: 'REGISTRY_RATE_LIMITED', registry: err.registry, detail: detailOf(err) });
      case 'UNREACHABLE':
      case 'UNAVAILABLE':
        return reason({ code: 'REGISTRY_UNREACHABLE', registry: err.registry, detail: detailOf(err) });
      case 'UNAUTHORIZED':
      case 'DENIED':
      case 'NOT_FOUND':
      case 'PROTOCOL':
      case 'DIGEST_MISMATCH':
      case 'NOT_ALLOWED':
      case 'TOO_LARGE':
      case 'BLOB_UNKNOWN':
        return reason({
          code: 'REGISTRY_ERROR',
          registry: err.registry,
          registryCode: err.code,
          detail: detailOf(err),
        });
    }
  }
  if (err instanceof KeyError || err instanceof ConfigError) {
    return reason({
      code: 'KEY_UNAVAILABLE',
      witness: context.witness,
      keyCode: err.code,
      detail: detailOf(err),
    });
  }
  if (err instanceof InputError && err.code === 'REFERENCE_INVALID') {
    const message = describeError(err);
    const detail = message.startsWith(`${err.field}: `) ? message.slice(err.field.length + 2) : message;
    return reason({ code: 'INVALID_REFERENCE', field: context.field ?? err.field, detail });
  }
  return reason({ code: 'INTERNAL_ERROR', detail: describeError(err) });
}
