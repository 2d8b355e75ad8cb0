/**
 * Certificate paths for certificate witnesses: leaf → intermediates → one of the configured
 * trust anchors, every link checked (names, signature by OpenSSL, CA flag, key usage, path
 * length) and every certificate valid at the signing time(s). The intermediates a signature
 * presents are untrusted candidates: they count only if they lead to an anchor.
 */
import { X509Certificate as NativeCertificate } from 'node:crypto';
import { X509Certificate } from '@sigstore/core';

/** A certificate parsed twice: its structure by `@sigstore/core`, its signature checked by OpenSSL. */
export interface Cert {
  readonly der: Buffer;
  readonly parsed: X509Certificate;
  readonly native: NativeCertificate;
}

/** Where a path search ended. Switch on `$case`. */
export type PathResult =
  | { readonly $case: 'trusted'; readonly path: readonly Cert[] }
  /** A path exists, but `cert` on it was not valid at `at`. */
  | { readonly $case: 'expired'; readonly cert: Cert; readonly at: Date }
  | { readonly $case: 'untrusted'; readonly detail: string };

/** Longest path searched, anchor included. */
export const MAX_PATH_LENGTH = 8;
/** Most issuer candidates tried in one search (a hostile chain annotation cannot make it explode). */
const MAX_CANDIDATE_CHECKS = 512;

const OID_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
const OID_ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

/** Parses a certificate for path building. */
export function toCert(parsed: X509Certificate): Cert {
  const der = parsed.root.toDER();
  return { der, parsed, native: new NativeCertificate(der) };
}

/** True for a self-signed certificate (a root). */
export function isSelfSigned(cert: Cert): boolean {
  return cert.parsed.subject.equals(cert.parsed.issuer) && cert.native.verify(cert.native.publicKey);
}

/** A leaf with extended key usages must allow code signing (as cosign requires); none means any. */
export function allowsCodeSigning(leaf: Cert): boolean {
  const usages = leaf.native.keyUsage as readonly string[] | undefined;
  return (
    usages === undefined ||
    usages.length === 0 ||
    usages.includes(OID_CODE_SIGNING) ||
    usages.includes(OID_ANY_EXTENDED_KEY_USAGE)
  );
}

/**
 * Finds a path from `leaf` to one of `anchors` through `intermediates`, valid at every time in
 * `at`. When only a path ignoring time exists, says which certificate was not valid when.
 */
export function findPath(
  leaf: Cert,
  intermediates: readonly Cert[],
  anchors: readonly Cert[],
  at: readonly Date[],
): PathResult {
  const budget = { left: MAX_CANDIDATE_CHECKS };
  const validAtAll = (cert: Cert): boolean => at.every((t) => cert.parsed.validForDate(t));
  const timed = validAtAll(leaf) ? search([leaf], intermediates, anchors, budget, validAtAll) : undefined;
  if (timed !== undefined) return { $case: 'trusted', path: timed };
  const untimed = search([leaf], intermediates, anchors, budget, () => true);
  if (untimed === undefined) {
    return {
      $case: 'untrusted',
      detail:
        budget.left <= 0
          ? 'the chain holds too many candidate certificates to search'
          : 'the certificate does not chain to a configured root',
    };
  }
  for (const cert of untimed) {
    const when = at.find((t) => !cert.parsed.validForDate(t));
    if (when !== undefined) return { $case: 'expired', cert, at: when };
  }
  // Unreachable in practice: an untimed path all valid at `at` would have been found timed.
  return { $case: 'untrusted', detail: 'no certificate path is valid at the signing time' };
}

function search(
  path: readonly Cert[],
  intermediates: readonly Cert[],
  anchors: readonly Cert[],
  budget: { left: number },
  usable: (cert: Cert) => boolean,
): Cert[] | undefined {
  const current = path[path.length - 1] as Cert;
  if (anchors.some((anchor) => anchor.der.equals(current.der))) return [...path];
  if (path.length >= MAX_PATH_LENGTH) return undefined;
  for (const candidate of [...anchors, ...intermediates]) {
    if (budget.left-- <= 0) return undefined;
    if (path.some((c) => c.der.equals(candidate.der))) continue;
    const isAnchor = anchors.includes(candidate);
    if (!usable(candidate) || !issued(candidate, current, path.length - 1, isAnchor)) continue;
    const found = search([...path, candidate], intermediates, anchors, budget, usable);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * True when `issuer` signed `subject` and may issue it: names chain, the signature verifies, the
 * issuer is a CA (an anchor without basic constraints, an old v1 root, is accepted), its key
 * usage (when present) allows certificate signing, and its path length allows `below`
 * intermediates under it.
 */
function issued(issuer: Cert, subject: Cert, below: number, isAnchor: boolean): boolean {
  if (!issuer.parsed.subject.equals(subject.parsed.issuer)) return false;
  const constraints = issuer.parsed.extBasicConstraints;
  if (constraints === undefined ? !isAnchor : !constraints.isCA) return false;
  const pathLen = constraints?.pathLenConstraint;
  if (pathLen !== undefined && BigInt(below) > pathLen) return false;
  const usage = issuer.parsed.extKeyUsage;
  if (usage !== undefined && !usage.keyCertSign) return false;
  try {
    return subject.native.verify(issuer.native.publicKey);
  } catch {
    return false;
  }
}
