/**
 * Does one witness vouch for one image? A witness is satisfied by any signature that verifies with
 * its key (every algorithm that fits the key is tried: RSA PKCS#1 v1.5 and PSS with any salt,
 * ECDSA on the key's curve) AND whose claims name the image digest, the repository the policy's
 * `signedIdentity` requires and, for a default-mode signature of an image admitted by tag, that
 * tag. When none does, the result says the most useful thing: the witness signed another tag,
 * another repository, another digest, or nothing here at all.
 */
import type { KeyObject } from 'node:crypto';
import type { SignedIdentity, SigningAlgorithm, Witness } from '../config/types';
import { algorithmsFor, shapeOf, verifySignature } from '../keys/algorithms';
import type { WitnessKey } from '../keys/types';
import type { SignatureEvidence, SignatureSource } from '../cosign/evidence';
import type { LoadedSignatures } from './signatures';
import { checksTag, requiredRepository, signedRepository } from './identity';
import { reason, reasonFromError, type Reason } from './reasons';

/** Where witness keys come from (the KeyRing). */
export interface WitnessKeys {
  get(name: string): WitnessKey;
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
  readonly algorithm: SigningAlgorithm;
  readonly identity: string | undefined;
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

/** Checks one witness against the signatures of one digest. Never throws. */
export async function checkWitness(
  witness: Witness,
  keys: WitnessKeys,
  signatures: LoadedSignatures,
  target: WitnessTarget,
): Promise<WitnessResult> {
  const name = witness.name;
  if (witness.key.$case === 'keyless') {
    // Without the Fulcio root and Rekor inclusion checks, a certificate claiming any issuer and
    // subject can be minted by anyone: accepting it would accept forgeries. Deny, and say why.
    return invalid(
      name,
      reason({
        code: 'WITNESS_UNSUPPORTED',
        witness: name,
        detail:
          'keyless (Fulcio) identities need certificate-chain and transparency-log checks Signet does not do; use a publicKey or certificate witness',
      }),
    );
  }
  let key: KeyObject;
  let algorithms: SigningAlgorithm[];
  try {
    key = await keys.get(name).publicKey();
    algorithms = algorithmsFor(shapeOf(key));
  } catch (err) {
    return invalid(name, reasonFromError(err, { witness: name }));
  }
  const total = signatures.evidence.length + signatures.rejected.length;
  const required = requiredRepository(target.identity, target.repository);
  const signedTags = new Set<string>();
  const signedDigests = new Set<string>();
  const signedIdentities = new Set<string>();
  for (const evidence of signatures.evidence) {
    const algorithm = verifiedBy(key, algorithms, evidence);
    if (algorithm === undefined) continue;
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
    return {
      witness: name,
      valid: true,
      reason: undefined,
      signature: { source: evidence.source, id: evidence.id, algorithm, identity: evidence.claims.identity },
    };
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
  return invalid(name, reason({ code: 'UNTRUSTED_SIGNER', witness: name, signatures: total }));
}
