/**
 * Does one witness vouch for one image? A witness is satisfied by any signature that passes its
 * checks AND whose claims name the image digest, the repository the policy's `signedIdentity`
 * requires and, for a default-mode signature of an image admitted by tag, that tag.
 *
 * The checks depend on the witness: a key witness needs a signature that verifies with its key
 * (every algorithm that fits the key is tried: RSA PKCS#1 v1.5 and PSS with any salt, ECDSA on the
 * key's curve); a keyless witness a Fulcio certificate that chains to its trusted root, valid when
 * the signature was logged or timestamped, with a valid log entry and the required OIDC identity
 * (`verifyKeyless`); a certificate witness a certificate that chains to its roots (or is its pinned
 * certificate) and was valid at the signing time (`verifyCertificateChain`). When none passes, the
 * result says the most useful thing: the witness signed another tag, another repository, another
 * digest; a signature came closest to passing and failed this one check; or nothing here at all.
 */
import type { KeyObject } from 'node:crypto';
import type { SignedIdentity, SigningAlgorithm, Witness } from '../config/types';
import type { SignatureEvidence, SignatureSource } from '../cosign/evidence';
import { algorithmsFor, keyIdOf, shapeOf, verifySignature } from '../keys/algorithms';
import { describeWindow, validAt, type WitnessTrust } from '../keys/keyring';
import { verifyCertificateChain } from '../sigstore/certificate';
import { materialFromCosignLayer } from '../sigstore/cosign-layer';
import { verifyKeyless } from '../sigstore/keyless';
import { verifiedSigningTime } from '../sigstore/signed-time';
import { isFailure, type SignatureMaterial, type SigstoreFailure, type TimeSource } from '../sigstore/types';
import type { LoadedSignatures } from './signatures';
import { checksTag, requiredRepository, signedRepository } from './identity';
import { reason, reasonFromError, type Reason, type SignerCheckCode } from './reasons';
import { describeRevocation, revocationOf, signedRule, type RevocationCheck } from './revocation';

/** Where witnesses' trust comes from (the KeyRing): keys, keyless identities, certificate roots. */
export interface WitnessKeys {
  trust(name: string): Promise<WitnessTrust>;
}

/** The image a witness is checked against. */
export interface WitnessTarget {
  readonly digest: string;
  /** The tag the image is admitted by; undefined for digest references (any identity tag passes). */
  readonly tag: string | undefined;
  /** The admitted image's canonical `host/path`. */
  readonly repository: string;
  /** How the signature's identity must relate to `repository` (the policy's). */
  readonly identity: SignedIdentity;
}

/** The signature that satisfied a witness. */
export interface AcceptedSignature {
  readonly source: SignatureSource;
  /** Payload blob digest (cosign) or bundle manifest digest. */
  readonly id: string;
  /** The algorithm it verified under; undefined for a certificate key outside Signet's algorithms. */
  readonly algorithm: SigningAlgorithm | undefined;
  /** The repository (and tag) the payload names. */
  readonly identity: string | undefined;
  /**
   * Who signed, for counting distinct signers: the key's `sha256:<SPKI digest>`, or
   * `keyless:<issuer>#<subject>` for a keyless signature.
   */
  readonly signer: string;
  /** The signing certificate's subject (a keyless signature's OIDC identity); undefined for keys. */
  readonly certificateSubject: string | undefined;
  /**
   * When the signature was made (ISO 8601), as verified; undefined for key witnesses, except a
   * rotating witness's signature with a log entry or timestamp that verifies.
   */
  readonly signedAt: string | undefined;
  /** Where `signedAt` comes from: a log entry, a timestamp, or the verification time itself. */
  readonly timeSource: TimeSource | undefined;
}

/** The verdict on one witness. */
export interface WitnessResult {
  readonly witness: string;
  readonly valid: boolean;
  /** Why not, when not valid. */
  readonly reason: Reason | undefined;
  readonly signature: AcceptedSignature | undefined;
}

const invalid = (witness: string, why: Reason): WitnessResult => ({
  witness,
  valid: false,
  reason: why,
  signature: undefined,
});

/** A failed check: one of Sigstore's, or a rotating witness's key used outside its window. */
type CheckFailure =
  | SigstoreFailure
  | { readonly ok: false; readonly code: 'KEY_NOT_VALID_AT_SIGNING'; readonly detail: string };

/** What checking one signature's cryptography for a witness gave. Switch on `$case`. */
type SignatureCheck =
  | { readonly $case: 'verified'; readonly signature: Omit<AcceptedSignature, 'source' | 'id' | 'identity'> }
  /** Not the witness's signature at all (another key; no certificate for a certificate witness). */
  | { readonly $case: 'not-theirs' }
  /** The witness's kind of signature, failing one check. */
  | { readonly $case: 'failed'; readonly failure: CheckFailure };

const NOT_THEIRS: SignatureCheck = { $case: 'not-theirs' };

/** The signer-check reason code of each Sigstore failure. */
const SIGNER_CHECK_CODES: Readonly<Record<CheckFailure['code'], SignerCheckCode>> = {
  MATERIAL_INVALID: 'SIGNATURE_MALFORMED',
  SIGNATURE_INVALID: 'SIGNATURE_INVALID',
  CHAIN_UNTRUSTED: 'CERT_CHAIN_UNTRUSTED',
  CERT_EXPIRED_AT_SIGNING: 'CERT_EXPIRED_AT_SIGNING',
  SCT_INVALID: 'SCT_INVALID',
  IDENTITY_MISMATCH: 'SIGNER_IDENTITY_MISMATCH',
  TLOG_MISSING: 'TLOG_MISSING',
  TLOG_INVALID: 'TLOG_INVALID',
  TIMESTAMP_MISSING: 'TIMESTAMP_MISSING',
  TIMESTAMP_INVALID: 'TIMESTAMP_INVALID',
  KEY_NOT_VALID_AT_SIGNING: 'KEY_NOT_VALID_AT_SIGNING',
};

/**
 * How far a failing signature got, in the order the checks run: when several fail, the one that
 * came closest to passing explains best (a valid certificate for another identity says more than
 * a layer whose certificate does not parse).
 */
const PROGRESS: Readonly<Record<CheckFailure['code'], number>> = {
  MATERIAL_INVALID: 0,
  SIGNATURE_INVALID: 1,
  TLOG_MISSING: 2,
  TIMESTAMP_MISSING: 2,
  TLOG_INVALID: 3,
  TIMESTAMP_INVALID: 3,
  CHAIN_UNTRUSTED: 4,
  SCT_INVALID: 4,
  CERT_EXPIRED_AT_SIGNING: 5,
  KEY_NOT_VALID_AT_SIGNING: 5,
  IDENTITY_MISMATCH: 6,
};

/** The first algorithm under which `evidence` verifies with `key`, if any. */
function verifiedBy(
  key: KeyObject,
  algorithms: readonly SigningAlgorithm[],
  evidence: SignatureEvidence,
): SigningAlgorithm | undefined {
  return algorithms.find((algorithm) =>
    verifySignature(key, algorithm, evidence.signedData, evidence.signature),
  );
}

/** The algorithm a certificate's key signed `evidence` with, when it is one Signet names. */
function algorithmOf(key: KeyObject, evidence: SignatureEvidence): SigningAlgorithm | undefined {
  try {
    return verifiedBy(key, algorithmsFor(shapeOf(key)), evidence);
  } catch {
    return undefined;
  }
}

/** The Sigstore material of a signature, as `lib/sigstore` verifies it. */
function materialOf(evidence: SignatureEvidence): SignatureMaterial | SigstoreFailure {
  const material = evidence.material;
  switch (material.$case) {
    case 'cosign-layer':
      return materialFromCosignLayer(evidence.signedData, material.annotations);
    case 'sigstore-bundle':
      return { $case: 'sigstore-bundle', bundle: material.bundle, artifact: material.artifact };
  }
}

/** How one witness checks a signature's cryptography. Throws when the witness's key is unusable. */
function signatureChecker(trust: WitnessTrust, now: Date): (evidence: SignatureEvidence) => SignatureCheck {
  switch (trust.$case) {
    case 'key': {
      const { key } = trust;
      const algorithms = algorithmsFor(shapeOf(key));
      const signer = keyIdOf(key);
      return (evidence) => {
        const algorithm = verifiedBy(key, algorithms, evidence);
        return algorithm === undefined
          ? NOT_THEIRS
          : {
              $case: 'verified',
              signature: {
                algorithm,
                signer,
                certificateSubject: undefined,
                signedAt: undefined,
                timeSource: undefined,
              },
            };
      };
    }
    case 'keys':
      return rotatingKeysChecker(trust, now);
    case 'keyless':
      return (evidence) => {
        // A signature without a certificate was made with a key: not a keyless signature at all.
        if (evidence.certificate === undefined) return NOT_THEIRS;
        const material = materialOf(evidence);
        if (isFailure(material)) return { $case: 'failed', failure: material };
        const verdict = verifyKeyless(material, trust.policy, trust.root);
        if (!verdict.ok) return { $case: 'failed', failure: verdict };
        return {
          $case: 'verified',
          signature: {
            algorithm: algorithmOf(verdict.key, evidence),
            signer: `keyless:${verdict.identity.issuer}#${verdict.identity.subject}`,
            certificateSubject: verdict.identity.subject,
            signedAt: verdict.signedAt.toISOString(),
            timeSource: verdict.timeSource,
          },
        };
      };
    case 'certificate':
      return (evidence) => {
        // Without a pinned certificate, only a signature that brings one can chain to the roots.
        if (evidence.certificate === undefined && trust.trust.pinned === undefined) return NOT_THEIRS;
        const material = materialOf(evidence);
        if (isFailure(material)) return { $case: 'failed', failure: material };
        const verdict = verifyCertificateChain(material, trust.trust, now);
        if (!verdict.ok) {
          // A certificate-less signature the pinned key does not verify was made by another key.
          if (evidence.certificate === undefined && verdict.code === 'SIGNATURE_INVALID') return NOT_THEIRS;
          return { $case: 'failed', failure: verdict };
        }
        return {
          $case: 'verified',
          signature: {
            algorithm: algorithmOf(verdict.key, evidence),
            signer: keyIdOf(verdict.key),
            certificateSubject: verdict.subject,
            signedAt: verdict.signedAt.toISOString(),
            timeSource: verdict.timeSource,
          },
        };
      };
  }
}

/**
 * How a rotating witness checks a signature: one of its keys must verify it and have been valid
 * when it was made, by a log entry or timestamp verified against the witness's trusted root, else
 * at `now`. Only a verified time counts: an unverifiable one is ignored (never trusted to make a
 * signature look older than it is), and the signature is judged at `now`.
 */
function rotatingKeysChecker(
  trust: Extract<WitnessTrust, { $case: 'keys' }>,
  now: Date,
): (evidence: SignatureEvidence) => SignatureCheck {
  const keys = trust.keys.map((k) => ({ ...k, algorithms: algorithmsFor(shapeOf(k.key)) }));
  return (evidence) => {
    const verifying = keys.flatMap((k) => {
      const algorithm = verifiedBy(k.key, k.algorithms, evidence);
      return algorithm === undefined ? [] : [{ ...k, algorithm }];
    });
    const first = verifying[0];
    if (first === undefined) return NOT_THEIRS;
    const material = materialOf(evidence);
    const signed = isFailure(material) ? undefined : verifiedSigningTime(material, first.key, trust.evidence);
    const at = signed?.at ?? now;
    const valid = verifying.find((k) => validAt(k, at.getTime()));
    if (valid === undefined) {
      return {
        $case: 'failed',
        failure: {
          ok: false,
          code: 'KEY_NOT_VALID_AT_SIGNING',
          detail: `key ${first.keyId} is valid ${describeWindow(first)}, not at ${at.toISOString()} (${
            signed === undefined
              ? 'verification time: the signature brings no verified log entry or timestamp'
              : `signing time, ${signed.source}`
          })`,
        },
      };
    }
    return {
      $case: 'verified',
      signature: {
        algorithm: valid.algorithm,
        signer: valid.keyId,
        certificateSubject: undefined,
        // The verification time is no signing time: revocations judge such a signature by its own rule.
        signedAt: signed?.at.toISOString(),
        timeSource: signed?.source,
      },
    };
  };
}

/**
 * Checks one witness against the signatures of one digest, certificates judged at `now` when a
 * signature brings no verified signing time. Never throws.
 */
export async function checkWitness(
  witness: Witness,
  keys: WitnessKeys,
  signatures: LoadedSignatures,
  target: WitnessTarget,
  now: Date = new Date(),
  revocation?: RevocationCheck,
): Promise<WitnessResult> {
  const name = witness.name;
  let check: (evidence: SignatureEvidence) => SignatureCheck;
  let unavailable: unknown;
  try {
    const trust = await keys.trust(name);
    // A rotating witness's key that could not be loaded may be the one that signed.
    if (trust.$case === 'keys') unavailable = trust.unavailable[0];
    check = signatureChecker(trust, now);
  } catch (err) {
    return invalid(name, reasonFromError(err, { witness: name }));
  }
  const total = signatures.evidence.length + signatures.rejected.length;
  const required = requiredRepository(target.identity, target.repository);
  const signedTags = new Set<string>();
  const signedDigests = new Set<string>();
  const signedIdentities = new Set<string>();
  let closest: { readonly failure: CheckFailure; readonly id: string } | undefined;
  let revokedBy: string | undefined;
  for (const evidence of signatures.evidence) {
    const checked = check(evidence);
    if (checked.$case === 'not-theirs') continue;
    if (checked.$case === 'failed') {
      if (closest === undefined || PROGRESS[checked.failure.code] > PROGRESS[closest.failure.code]) {
        closest = { failure: checked.failure, id: evidence.id };
      }
      continue;
    }
    // The payload must still name this digest, at this repository (and tag): a valid signature for
    // another image proves nothing about this one.
    if (!evidence.claims.digests.includes(target.digest)) {
      for (const d of evidence.claims.digests) signedDigests.add(d);
      continue;
    }
    // A signature vouches for the digest at the repository it names, not wherever it is copied.
    if (required !== undefined) {
      const names = evidence.claims.subjects.filter((s) => s.digest === target.digest).map((s) => s.name);
      if (!names.some((n) => signedRepository(n) === required)) {
        for (const n of names) signedIdentities.add(n ?? '(no repository)');
        continue;
      }
    }
    const tag = evidence.claims.tag;
    if (checksTag(target.identity) && target.tag !== undefined && tag !== undefined && tag !== target.tag) {
      signedTags.add(tag);
      continue;
    }
    // Everything holds, but `revocations` may void it; another signature may still count.
    if (revocation !== undefined && revocation.revocations.length > 0) {
      const voiding = await revocationOf(
        revocation,
        target.digest,
        { keyId: checked.signature.signer, rule: signedRule(evidence), signedAt: checked.signature.signedAt },
        now.getTime(),
      );
      if (voiding !== undefined) {
        revokedBy ??= describeRevocation(voiding);
        continue;
      }
    }
    return {
      witness: name,
      valid: true,
      reason: undefined,
      signature: {
        source: evidence.source,
        id: evidence.id,
        identity: evidence.claims.identity,
        ...checked.signature,
      },
    };
  }
  // A signature that was valid but is revoked explains best: everything else about it held.
  if (revokedBy !== undefined) {
    return invalid(name, reason({ code: 'SIGNATURE_REVOKED', witness: name, revocation: revokedBy }));
  }
  if (signedTags.size > 0 && target.tag !== undefined) {
    return invalid(
      name,
      reason({ code: 'TAG_NOT_SIGNED', witness: name, tag: target.tag, signedTags: [...signedTags] }),
    );
  }
  if (signedIdentities.size > 0 && required !== undefined) {
    return invalid(
      name,
      reason({
        code: 'IDENTITY_MISMATCH',
        witness: name,
        required,
        signed: [...signedIdentities],
        identity: target.identity.type,
      }),
    );
  }
  if (signedDigests.size > 0) {
    return invalid(
      name,
      reason({ code: 'DIGEST_MISMATCH', witness: name, expected: target.digest, signed: [...signedDigests] }),
    );
  }
  // The signature we did not find may sit in the bundles we could not read.
  if (signatures.bundleError !== undefined) return invalid(name, reasonFromError(signatures.bundleError));
  // Signatures past the cap were not looked at: one of them may have been the witness's.
  if (signatures.unread > 0)
    return invalid(
      name,
      reason({
        code: 'TOO_MANY_SIGNATURES',
        signatureRef: signatures.signatureRef,
        read: total,
        unread: signatures.unread,
      }),
    );
  if (total === 0)
    return invalid(
      name,
      reason({ code: 'NO_SIGNATURES', signatureRef: signatures.signatureRef, notes: signatures.notes }),
    );
  if (closest !== undefined) {
    return invalid(
      name,
      reason({
        code: SIGNER_CHECK_CODES[closest.failure.code],
        witness: name,
        signature: closest.id,
        detail: closest.failure.detail,
      }),
    );
  }
  if (unavailable !== undefined) return invalid(name, reasonFromError(unavailable, { witness: name }));
  return invalid(name, reason({ code: 'UNTRUSTED_SIGNER', witness: name, signatures: total }));
}
