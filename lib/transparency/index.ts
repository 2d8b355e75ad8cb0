/**
 * The Sigstore services a signing witness calls after it signs: its transparency log (Rekor v1)
 * and its RFC 3161 timestamp authority, each optional. Either failing fails the signature: a
 * witness that requires a log entry never publishes a signature without one (an outage is
 * TLOG_UNAVAILABLE / TSA_UNAVAILABLE, retried; a wrong answer is permanent).
 */
import { createHash, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm, Witness } from '../config/types';
import { RFC3161_TIMESTAMP_ANNOTATION, type SigningProof } from '../cosign/log-evidence';
import { BUNDLE_ANNOTATION } from '../cosign/signature-manifest';
import { DEFAULT_SERVICE_HTTP_OPTIONS, type ServiceHttpOptions } from './http';
import { RekorClient } from './rekor';
import { TimestampClient } from './timestamp';

export { RekorClient } from './rekor';
export { TimestampClient } from './timestamp';
export { DEFAULT_SERVICE_HTTP_OPTIONS, type ServiceHttpOptions } from './http';

/** A DSSE envelope signed for a Sigstore bundle, as the log needs it. */
export interface SignedEnvelope {
  readonly envelopeJson: string;
  readonly payload: Buffer;
  readonly signature: Buffer;
}

/** One witness's log and timestamp authority (at least one of them). */
export class WitnessServices {
  constructor(
    readonly log: RekorClient | undefined,
    readonly timestamps: TimestampClient | undefined,
  ) {}

  /** The services `witness` configures, or undefined when it configures none (the default). */
  static of(
    witness: Witness,
    options: ServiceHttpOptions = DEFAULT_SERVICE_HTTP_OPTIONS,
  ): WitnessServices | undefined {
    const { transparencyLog, timestampAuthority } = witness;
    if (transparencyLog === undefined && timestampAuthority === undefined) return undefined;
    return new WitnessServices(
      transparencyLog === undefined ? undefined : new RekorClient(transparencyLog.url, options),
      timestampAuthority === undefined ? undefined : new TimestampClient(timestampAuthority.url, options),
    );
  }

  /** The `.sig` layer annotations a signature by this witness must carry to count as published. */
  get requiredAnnotations(): readonly string[] {
    return [
      ...(this.log === undefined ? [] : [BUNDLE_ANNOTATION]),
      ...(this.timestamps === undefined ? [] : [RFC3161_TIMESTAMP_ANNOTATION]),
    ];
  }

  /**
   * A cosign payload signature logged (`hashedrekord`: the payload's digest, as the algorithm
   * hashes it, the signature and the key) and timestamped (the signature).
   */
  async proveMessage(
    payload: Buffer,
    signature: Buffer,
    publicKey: KeyObject,
    algorithm: SigningAlgorithm,
  ): Promise<SigningProof> {
    const hash = algorithm === 'ECDSA_SHA_384' ? 'sha384' : 'sha256';
    const [tlogEntry, rfc3161Timestamp] = await Promise.all([
      this.log?.addHashedRekord({
        algorithm: hash,
        digest: createHash(hash).update(payload).digest(),
        signature,
        publicKey,
      }),
      this.timestamps?.timestamp(signature),
    ]);
    return proof(tlogEntry, rfc3161Timestamp);
  }

  /** A Sigstore bundle's DSSE signature logged (`dsse`) and timestamped (the signature). */
  async proveEnvelope(envelope: SignedEnvelope, publicKey: KeyObject): Promise<SigningProof> {
    const [tlogEntry, rfc3161Timestamp] = await Promise.all([
      this.log?.addDsse({ ...envelope, publicKey }),
      this.timestamps?.timestamp(envelope.signature),
    ]);
    return proof(tlogEntry, rfc3161Timestamp);
  }
}

const proof = (
  tlogEntry: SigningProof['tlogEntry'],
  rfc3161Timestamp: SigningProof['rfc3161Timestamp'],
): SigningProof => ({
  ...(tlogEntry === undefined ? {} : { tlogEntry }),
  ...(rfc3161Timestamp === undefined ? {} : { rfc3161Timestamp }),
});

/** Every configured witness's services, by witness name (witnesses without any are absent). */
export function witnessServices(
  witnesses: readonly Witness[],
  options: ServiceHttpOptions = DEFAULT_SERVICE_HTTP_OPTIONS,
): ReadonlyMap<string, WitnessServices> {
  const services = new Map<string, WitnessServices>();
  for (const witness of witnesses) {
    const found = WitnessServices.of(witness, options);
    if (found !== undefined) services.set(witness.name, found);
  }
  return services;
}
