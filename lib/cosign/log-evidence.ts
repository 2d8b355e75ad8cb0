/**
 * What a witness's transparency log and timestamp authority add to a signature, and how cosign
 * writes it: the Rekor entry as the `dev.sigstore.cosign/bundle` annotation (cosign's "rekor
 * bundle": the SET and the entry it signs), the RFC 3161 timestamp as
 * `dev.sigstore.cosign/rfc3161timestamp` (`{"SignedRFC3161Timestamp": base64}`), and both as the
 * `verificationMaterial` of a Sigstore bundle.
 */
import type { TransparencyLogEntry } from '@sigstore/bundle';
import { BUNDLE_ANNOTATION } from './signature-manifest';

/** The layer annotation holding cosign's RFC 3161 timestamp JSON. */
export const RFC3161_TIMESTAMP_ANNOTATION = 'dev.sigstore.cosign/rfc3161timestamp';

/** A Merkle inclusion proof and the checkpoint it leads to, as Rekor v1 returns them. */
export interface InclusionProof {
  readonly logIndex: number;
  readonly treeSize: number;
  /** Hex. */
  readonly rootHash: string;
  /** Hex, leaf to root. */
  readonly hashes: readonly string[];
  /** The signed checkpoint note. */
  readonly checkpoint: string;
}

/** A Rekor (v1 API) entry as the log returned it, already checked to be the entry Signet asked for. */
export interface LogEntry {
  readonly uuid: string;
  /** The entry's kind and version (`hashedrekord` 0.0.1, `dsse` 0.0.1). */
  readonly kind: string;
  readonly apiVersion: string;
  /** The canonicalized body, as the log stores it and as the SET signs it. */
  readonly body: Buffer;
  /** Seconds since the epoch. */
  readonly integratedTime: number;
  readonly logIndex: number;
  /** Hex: sha256 of the log's public key. */
  readonly logID: string;
  /** The inclusion promise: the log's signature over body, integratedTime, logIndex and logID. */
  readonly signedEntryTimestamp: Buffer;
  readonly inclusionProof: InclusionProof | undefined;
}

/** What a witness's services returned for one signature; each absent when not configured. */
export interface SigningProof {
  readonly tlogEntry?: LogEntry;
  /** DER TimeStampResp over the signature. */
  readonly rfc3161Timestamp?: Buffer;
}

/** The `.sig` layer annotations for `proof`, as cosign writes them. */
export function proofAnnotations(proof: SigningProof): Record<string, string> {
  const annotations: Record<string, string> = {};
  const entry = proof.tlogEntry;
  if (entry !== undefined) {
    // Field order as cosign's bundle.RekorBundle marshals it.
    annotations[BUNDLE_ANNOTATION] = JSON.stringify({
      SignedEntryTimestamp: entry.signedEntryTimestamp.toString('base64'),
      Payload: {
        body: entry.body.toString('base64'),
        integratedTime: entry.integratedTime,
        logIndex: entry.logIndex,
        logID: entry.logID,
      },
    });
  }
  if (proof.rfc3161Timestamp !== undefined) {
    annotations[RFC3161_TIMESTAMP_ANNOTATION] = JSON.stringify({
      SignedRFC3161Timestamp: proof.rfc3161Timestamp.toString('base64'),
    });
  }
  return annotations;
}

/** A log entry as a Sigstore bundle's `tlogEntries[]` item: inclusion promise and, when given, proof. */
export function bundleTlogEntry(entry: LogEntry): TransparencyLogEntry {
  const proof = entry.inclusionProof;
  return {
    logIndex: String(entry.logIndex),
    logId: { keyId: Buffer.from(entry.logID, 'hex') },
    kindVersion: { kind: entry.kind, version: entry.apiVersion },
    integratedTime: String(entry.integratedTime),
    inclusionPromise: { signedEntryTimestamp: entry.signedEntryTimestamp },
    inclusionProof:
      proof === undefined
        ? undefined
        : {
            logIndex: String(proof.logIndex),
            treeSize: String(proof.treeSize),
            rootHash: Buffer.from(proof.rootHash, 'hex'),
            hashes: proof.hashes.map((h) => Buffer.from(h, 'hex')),
            checkpoint: { envelope: proof.checkpoint },
          },
    canonicalizedBody: entry.body,
  };
}
