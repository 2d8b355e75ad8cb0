/**
 * Is a signature revoked by the configuration's `revocations`? A pure function over what a verified
 * signature tells: the key that made it, the rule its payload names and, when something vouches
 * for it, when it was made.
 *
 * Time: "signatures by key K made after T are void". A signature with a trusted signing time
 * (a transparency-log entry or timestamp; Signet's own ledger for the signatures it wrote) is
 * void when it was made after T. A signature without one could have been made at any moment up to
 * now, so once T has passed it is void too (fail closed: a key stolen at T can sign anything later
 * and claim nothing about when); before T nothing is void yet. Signet's own ledger is such a
 * trusted time for the signatures Signet wrote: that it signed this digest with this key (and
 * rule) before T is what a time-bound revocation asks, whoever later signs the digest again.
 */
import type { Revocation } from '../config/types';
import { PAYLOAD_ANNOTATIONS } from '../cosign/payload';
import type { SignatureEvidence } from '../cosign/evidence';

/** What a revocation is matched against. */
export interface RevocableSignature {
  /** The signing key's id, `sha256:<hex>` (an accepted signature's `signer` for key witnesses). */
  readonly keyId: string | undefined;
  /** The rule that made it (a Signet payload's `dev.signet/rule`), when known. */
  readonly rule: string | undefined;
  /** When it was made, as epoch ms or an ISO 8601 string, when something trusted says so. */
  readonly signedAt?: number | string | undefined;
}

/** The revocation that voids `signature` at `now` (epoch ms), or undefined when none does. */
export function isRevoked(
  signature: RevocableSignature,
  revocations: readonly Revocation[],
  now: number,
): Revocation | undefined {
  if (revocations.length === 0) return undefined;
  const signedAt = timeOf(signature.signedAt);
  for (const revocation of revocations) {
    if (!targets(revocation, signature)) continue;
    if (revocation.after === undefined) return revocation;
    // Unknown signing time: it may be any moment up to now.
    const latest = signedAt ?? now;
    if (latest > revocation.after) return revocation;
  }
  return undefined;
}

/** One line for a denial or finding: which revocation, and why. */
export function describeRevocation(revocation: Revocation): string {
  const what =
    revocation.target.$case === 'keyId'
      ? `key ${revocation.target.keyId}`
      : `rule "${revocation.target.rule}"`;
  const when =
    revocation.after === undefined ? '' : ` made after ${new Date(revocation.after).toISOString()}`;
  return `signatures by ${what}${when} are revoked${revocation.reason !== undefined ? ` (${revocation.reason})` : ''}`;
}

function targets(revocation: Revocation, signature: RevocableSignature): boolean {
  const { target } = revocation;
  switch (target.$case) {
    case 'keyId':
      return signature.keyId !== undefined && signature.keyId.toLowerCase() === target.keyId;
    case 'rule':
      return signature.rule !== undefined && signature.rule === target.rule;
  }
}

function timeOf(value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === 'number' ? value : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * When Signet recorded signing `digest` with the key `keyId` (and `rule`, when given): the
 * earliest time in its ledger, or undefined when it has no record. A trusted signing time for
 * signatures that carry none (key witnesses).
 */
export type SigningTimeLookup = (query: {
  readonly digest: string;
  readonly keyId: string;
  readonly rule: string | undefined;
}) => Promise<number | undefined>;

/** What a verifier checks revocations with: the configured list, and where trusted times come from. */
export interface RevocationCheck {
  readonly revocations: readonly Revocation[];
  readonly signingTime?: SigningTimeLookup | undefined;
}

/**
 * The revocation that voids a verified signature of `digest`, or undefined. Only a signature a
 * time-bound revocation targets, and that brings no signing time of its own, costs a ledger look.
 */
export async function revocationOf(
  check: RevocationCheck,
  digest: string,
  signature: RevocableSignature,
  now: number,
): Promise<Revocation | undefined> {
  const voiding = isRevoked(signature, check.revocations, now);
  if (voiding === undefined || timeOf(signature.signedAt) !== undefined) return voiding;
  if (check.signingTime === undefined || signature.keyId === undefined) return voiding;
  if (!check.revocations.some((r) => r.after !== undefined && targets(r, signature))) return voiding;
  let recorded: number | undefined;
  try {
    recorded = await check.signingTime({ digest, keyId: signature.keyId, rule: signature.rule });
  } catch {
    // The ledger unreadable: no trusted time, so the revocation stands (fail closed).
    return voiding;
  }
  return recorded === undefined
    ? voiding
    : isRevoked({ ...signature, signedAt: recorded }, check.revocations, now);
}

/** The rule a Signet cosign payload names (`optional["dev.signet/rule"]`), signed with it. */
export function signedRule(evidence: Pick<SignatureEvidence, 'source' | 'signedData'>): string | undefined {
  if (evidence.source !== 'cosign') return undefined;
  try {
    const payload = JSON.parse(evidence.signedData.toString('utf8')) as { optional?: unknown };
    const optional = payload.optional;
    if (typeof optional !== 'object' || optional === null) return undefined;
    const rule = (optional as Record<string, unknown>)[PAYLOAD_ANNOTATIONS.rule];
    return typeof rule === 'string' ? rule : undefined;
  } catch {
    return undefined;
  }
}
