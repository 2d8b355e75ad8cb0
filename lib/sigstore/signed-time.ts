/**
 * When a key signature was made, as far as something trusted says: the earliest Rekor integrated
 * time (with its inclusion promise) or RFC 3161 time that verifies against a trusted root and was
 * made for this key. A witness whose keys rotate judges each key's validity window at that time;
 * without one, at the verification time.
 */
import type { KeyObject } from 'node:crypto';
import { anyAlgorithm } from './certificate';
import { checkEvidence, checkLogNamesSigner, type SignedTime } from './evidence';
import { prepareSignature } from './material';
import { isFailure, type SignatureMaterial, type TrustedRoot } from './types';

/**
 * The earliest verified time at which `material`, signed by `key`, existed; undefined when it
 * brings no log entry or timestamp, or none that verifies against `root` for this key (an
 * unverified time is no time at all: the caller falls back to the verification time). Never throws.
 */
export function verifiedSigningTime(
  material: SignatureMaterial,
  key: KeyObject,
  root: TrustedRoot,
): SignedTime | undefined {
  try {
    const prepared = prepareSignature(material);
    if (isFailure(prepared) || prepared.entity.timestamps.length === 0) return undefined;
    const entity = {
      ...prepared.entity,
      signature: anyAlgorithm(prepared.entity.signature, prepared.content),
    };
    const times = checkEvidence(entity, key, root.material, { tlogEntries: 0, timestamps: 0 });
    if (isFailure(times)) return undefined;
    // A log entry made for another key says nothing about when this key signed.
    if (checkLogNamesSigner(entity, key, undefined) !== undefined) return undefined;
    return times.reduce<SignedTime | undefined>(
      (a, b) => (a === undefined || b.at < a.at ? b : a),
      undefined,
    );
  } catch {
    return undefined;
  }
}
