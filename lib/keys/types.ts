import type { KeyObject } from 'node:crypto';
import type { Signer } from '@sigstore/sign';
import type { SigningAlgorithm } from '../config/types';

/** What a key is, enough to decide which algorithms fit it. */
export type KeyShape =
  | { readonly $case: 'rsa'; readonly bits: number }
  | { readonly $case: 'ec'; readonly curve: 'P-256' | 'P-384' | 'P-521' | string };

/**
 * The key material behind one witness. Signing keys produce a `Signer` (from `@sigstore/sign`)
 * bound to one algorithm, so the same object signs cosign payloads and Sigstore bundles.
 */
export interface WitnessKey {
  readonly witness: string;
  /** Stable identifier written next to signatures: the KMS key ARN, or `sha256:<SPKI digest>`. */
  keyId(): Promise<string>;
  /** The public key (cached after the first call). */
  publicKey(): Promise<KeyObject>;
  shape(): Promise<KeyShape>;
  /** True for keys that can sign (local private keys, KMS keys). */
  readonly canSign: boolean;
  /**
   * A signer for `algorithm`. Throws ConfigError ALGORITHM_MISMATCH (naming the key) when the
   * algorithm does not fit the key, KeyError when the key cannot be used.
   */
  signer(algorithm: SigningAlgorithm): Promise<Signer>;
}
