/**
 * Keyless verification: a signature by a short-lived Fulcio certificate, logged in Rekor, checked
 * against a trusted root (public-good or a private Sigstore) and a keyless witness's identity.
 *
 * The cryptography is `@sigstore/verify`'s, run in two passes so that every failure has its own
 * code: first the evidence with the leaf's key as a bare key (signature, log entries, timestamps:
 * see `evidence.ts`), then the full `Verifier` (certificate chain to a Fulcio CA valid at each
 * verified time, SCTs when the root lists CT logs, and the evidence again). The identity is then
 * matched here, not by `@sigstore/verify`, whose subject check is a backtracking RegExp.
 */
import { VerificationError, Verifier, type TrustMaterial } from '@sigstore/verify';
import type { X509Certificate } from '@sigstore/core';
import { checkEvidence, checkLogNamesSigner, publicKeyOf, type SignedTime } from './evidence';
import { certificateIdentity, checkIdentity } from './identity';
import { prepareSignature } from './material';
import {
  failure,
  isFailure,
  type KeylessPolicy,
  type KeylessVerdict,
  type SignatureMaterial,
  type SigstoreFailure,
  type TrustedRoot,
} from './types';

/**
 * Verifies one signature against a keyless witness: a Fulcio certificate chaining to `trust`,
 * valid when the signature was logged (or timestamped), with a valid Rekor entry (SET or
 * inclusion proof) and, when `trust` lists CT logs, valid SCTs; then issuer, subject and workflow
 * claims as `policy` requires. Never throws: every failure is a verdict with its code.
 */
export function verifyKeyless(
  material: SignatureMaterial,
  policy: KeylessPolicy,
  trust: TrustedRoot,
): KeylessVerdict {
  try {
    return keyless(material, policy, trust);
  } catch (err) {
    return failure(
      'MATERIAL_INVALID',
      `cannot be verified: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

function keyless(material: SignatureMaterial, policy: KeylessPolicy, trust: TrustedRoot): KeylessVerdict {
  const prepared = prepareSignature(material);
  if (isFailure(prepared)) return prepared;
  const { entity, leaf } = prepared;
  if (leaf === undefined) {
    return failure('MATERIAL_INVALID', 'a keyless signature needs its signing certificate');
  }

  const key = publicKeyOf(leaf);
  const times = checkEvidence(entity, key, trust.material, { tlogEntries: 1, timestamps: 1 });
  if (isFailure(times)) return times;

  try {
    new Verifier(trust.material, {
      tlogThreshold: 1,
      ctlogThreshold: trust.material.ctlogs.length > 0 ? 1 : 0,
      timestampThreshold: 1,
    }).verify(entity);
  } catch (err) {
    return certificateFailure(err, leaf, times, trust.source);
  }

  const foreign = prepared.presentedChain.find((cert) => !listedByTrust(cert, trust.material));
  if (foreign !== undefined) {
    return failure(
      'CHAIN_UNTRUSTED',
      `the signature's chain carries a certificate ${trust.source} does not list (${describeName(foreign)})`,
    );
  }

  const unlogged = checkLogNamesSigner(entity, key, leaf);
  if (unlogged !== undefined) return unlogged;

  const identity = certificateIdentity(leaf);
  const mismatch = checkIdentity(identity, policy);
  if (mismatch !== undefined) return mismatch;

  const first = earliest(times);
  return {
    ok: true,
    identity: { issuer: policy.issuer, subject: identity.subject ?? '' },
    key,
    signedAt: first.at,
    timeSource: first.source,
    content: prepared.content,
  };
}

/** Once signature, log and timestamps verified, a Verifier failure is about the certificate: which way? */
function certificateFailure(
  err: unknown,
  leaf: X509Certificate,
  times: readonly SignedTime[],
  source: string,
): SigstoreFailure {
  if (!(err instanceof VerificationError) || err.code !== 'CERTIFICATE_ERROR') {
    return failure(
      'MATERIAL_INVALID',
      `cannot be verified: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  // @sigstore/verify reports SCT problems as CERTIFICATE_ERROR too; only the message tells them
  // apart (pinned by a test on a real certificate with an SCT from an untrusted CT log).
  if (/\bSCTs?\b/.test(err.message)) return failure('SCT_INVALID', err.message);
  const outside = times.find((t) => !leaf.validForDate(t.at));
  if (outside !== undefined) {
    return failure(
      'CERT_EXPIRED_AT_SIGNING',
      `the certificate is valid from ${leaf.notBefore.toISOString()} to ${leaf.notAfter.toISOString()}, ` +
        `but the signature was ${outside.source === 'tlog' ? 'logged' : 'timestamped'} at ${outside.at.toISOString()}`,
    );
  }
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return failure(
    'CHAIN_UNTRUSTED',
    `the certificate does not chain to a certificate authority of ${source} valid at ${times
      .map((t) => t.at.toISOString())
      .join(', ')}${cause}`,
  );
}

function listedByTrust(cert: X509Certificate, trust: TrustMaterial): boolean {
  return trust.certificateAuthorities.some((ca) => ca.certChain.some((c) => c.equals(cert)));
}

function describeName(cert: X509Certificate): string {
  return `serial ${cert.serialNumber.toString('hex')}`;
}

/** The earliest verified time (there is at least one: the evidence check requires it). */
function earliest(times: readonly SignedTime[]): SignedTime {
  return times.reduce((a, b) => (b.at < a.at ? b : a));
}
