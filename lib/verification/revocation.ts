/**
 * Is a signature revoked by the configuration's `revocations`? A pure function over what a verified
 * signature tells: the key that made it, the rule its payload names and, when something vouches
 * for it, when it was made.
 *
 * Time: "signatures by key K made after T are void". A signature with a trusted signing time
 * (a transparency-log entry or timestamp; Signet's own ledger for the signatures it wrote) is
 * void when it was made after T. A signature without one could have been made at any moment up to
 * now, so once T has passed it is void too (fail closed: a key stolen at T can sign anything later
 * and claim nothing about when); before T nothing is void yet.
 */
import type { Revocation } from '../config/types';

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
