/**
 * What each signing algorithm means for node:crypto: its hash, the key it needs, and the exact
 * padding / encoding, chosen to produce and accept what AWS KMS and cosign write.
 */
import {
  constants,
  createHash,
  createPublicKey,
  verify,
  type KeyObject,
  type SignKeyObjectInput,
} from 'node:crypto';
import type { SigningAlgorithm } from '../config/types';
import { ConfigError } from '../core/errors';
import type { KeyShape } from './types';

/** The digest an algorithm signs. */
export type HashName = 'sha256' | 'sha384';

/** How an algorithm turns a digest into a signature. A tagged union: switch on `$case`. */
export type SignatureScheme =
  /** RSASSA-PSS, MGF1 with the same hash, salt length = hash length (as KMS writes it). */
  | { readonly $case: 'rsa-pss' }
  /** RSASSA-PKCS1-v1_5: what cosign, Kyverno and the policy-controller verify for RSA keys. */
  | { readonly $case: 'rsa-pkcs1' }
  /** ECDSA on one curve, ASN.1 DER signatures (as cosign and KMS write them). */
  | { readonly $case: 'ecdsa'; readonly curve: 'P-256' | 'P-384' };

/** Everything Signet needs to know about one signing algorithm. */
export interface AlgorithmSpec {
  readonly algorithm: SigningAlgorithm;
  readonly hash: HashName;
  /** Digest length in bytes (also the PSS salt length). */
  readonly hashLength: number;
  readonly scheme: SignatureScheme;
}

/** The smallest RSA modulus Signet signs or verifies with. */
export const MIN_RSA_BITS = 2048;

/** Every supported algorithm, by its canonical (KMS) name. */
export const ALGORITHMS: Readonly<Record<SigningAlgorithm, AlgorithmSpec>> = {
  RSASSA_PSS_SHA_256: {
    algorithm: 'RSASSA_PSS_SHA_256',
    hash: 'sha256',
    hashLength: 32,
    scheme: { $case: 'rsa-pss' },
  },
  RSASSA_PKCS1_V1_5_SHA_256: {
    algorithm: 'RSASSA_PKCS1_V1_5_SHA_256',
    hash: 'sha256',
    hashLength: 32,
    scheme: { $case: 'rsa-pkcs1' },
  },
  ECDSA_SHA_256: {
    algorithm: 'ECDSA_SHA_256',
    hash: 'sha256',
    hashLength: 32,
    scheme: { $case: 'ecdsa', curve: 'P-256' },
  },
  ECDSA_SHA_384: {
    algorithm: 'ECDSA_SHA_384',
    hash: 'sha384',
    hashLength: 48,
    scheme: { $case: 'ecdsa', curve: 'P-384' },
  },
};

/** The digest of `data` with the algorithm's hash (what KMS signs with `MessageType: DIGEST`). */
export function digestFor(algorithm: SigningAlgorithm, data: Buffer): Buffer {
  return createHash(ALGORITHMS[algorithm].hash).update(data).digest();
}

/** The node:crypto key options that sign (`crypto.sign`) with `algorithm`. */
export function signOptions(algorithm: SigningAlgorithm, key: KeyObject): SignKeyObjectInput {
  const spec = ALGORITHMS[algorithm];
  switch (spec.scheme.$case) {
    case 'rsa-pss':
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.hashLength };
    case 'rsa-pkcs1':
      return { key, padding: constants.RSA_PKCS1_PADDING };
    case 'ecdsa':
      return { key, dsaEncoding: 'der' };
  }
}

/**
 * The node:crypto key options that verify `algorithm`. PSS accepts any salt length
 * (`RSA_PSS_SALTLEN_AUTO` recovers it from the signature): KMS and Signet use the hash length,
 * Go's crypto/rsa and OpenSSL's defaults use the largest salt that fits, and both are valid PSS.
 */
function verifyOptions(algorithm: SigningAlgorithm, key: KeyObject): SignKeyObjectInput {
  const spec = ALGORITHMS[algorithm];
  switch (spec.scheme.$case) {
    case 'rsa-pss':
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO };
    case 'rsa-pkcs1':
      return { key, padding: constants.RSA_PKCS1_PADDING };
    case 'ecdsa':
      return { key, dsaEncoding: 'der' };
  }
}

const CURVE_NAMES: Readonly<Record<string, string>> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
};

/** The shape of a public (or private) key: RSA with its modulus size, or EC with its curve. */
export function shapeOf(key: KeyObject): KeyShape {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { $case: 'rsa', bits: details?.modulusLength ?? 0 };
    case 'ec': {
      const curve = details?.namedCurve ?? 'unknown';
      return { $case: 'ec', curve: CURVE_NAMES[curve] ?? curve };
    }
    default:
      throw new ConfigError(
        'KEY_INVALID',
        `a ${String(key.asymmetricKeyType ?? key.type)} key cannot be used: Signet signs and verifies with RSA and EC (P-256, P-384) keys`,
      );
  }
}

/** `RSA 2048` / `EC P-256`, for messages. */
export function describeShape(shape: KeyShape): string {
  switch (shape.$case) {
    case 'rsa':
      return `RSA ${shape.bits}`;
    case 'ec':
      return `EC ${shape.curve}`;
  }
}

/** Why `algorithm` does not fit a key of this shape, or `undefined` when it fits. */
function misfit(shape: KeyShape, algorithm: SigningAlgorithm): string | undefined {
  const scheme = ALGORITHMS[algorithm].scheme;
  switch (scheme.$case) {
    case 'rsa-pss':
    case 'rsa-pkcs1':
      if (shape.$case !== 'rsa') return `${algorithm} needs an RSA key (${MIN_RSA_BITS} bits or more)`;
      if (shape.bits < MIN_RSA_BITS) return `${algorithm} needs an RSA key of at least ${MIN_RSA_BITS} bits`;
      return undefined;
    case 'ecdsa':
      if (shape.$case !== 'ec' || shape.curve !== scheme.curve)
        return `${algorithm} needs an EC ${scheme.curve} key`;
      return undefined;
  }
}

/** Throws ConfigError ALGORITHM_MISMATCH, naming the key, when `algorithm` does not fit the key. */
export function assertAlgorithmFits(shape: KeyShape, algorithm: SigningAlgorithm, keyLabel: string): void {
  const problem = misfit(shape, algorithm);
  if (problem !== undefined) {
    throw new ConfigError('ALGORITHM_MISMATCH', `key ${keyLabel} is ${describeShape(shape)}: ${problem}`);
  }
}

/**
 * The algorithms a key of this shape can verify, most common first. Verification tries them in
 * turn when a witness has no configured algorithm: for RSA both PKCS1 v1.5 (cosign's choice) and
 * PSS (any salt length, see `verifySignature`); for EC the one ECDSA algorithm of the curve.
 */
export function algorithmsFor(shape: KeyShape): SigningAlgorithm[] {
  return (Object.keys(ALGORITHMS) as SigningAlgorithm[])
    .filter((algorithm) => misfit(shape, algorithm) === undefined)
    .sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));
}

const ORDER: readonly SigningAlgorithm[] = [
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PSS_SHA_256',
  'ECDSA_SHA_256',
  'ECDSA_SHA_384',
];

/**
 * True when `signature` is a valid `algorithm` signature of `data` by `publicKey`. Never throws:
 * a malformed signature, or a key that does not fit the algorithm, is simply not valid. PSS
 * signatures are accepted with any salt length (the hash length KMS uses included).
 */
export function verifySignature(
  publicKey: KeyObject,
  algorithm: SigningAlgorithm,
  data: Buffer,
  signature: Buffer,
): boolean {
  try {
    if (misfit(shapeOf(publicKey), algorithm) !== undefined) return false;
    return verify(ALGORITHMS[algorithm].hash, data, verifyOptions(algorithm, publicKey), signature);
  } catch {
    return false;
  }
}

/** Signet's id for a key that has no other name: `sha256:<hex of the SPKI DER>`. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicOf(publicKey).export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/** The SPKI PEM of a public key (private keys give their public half). */
export function spkiPem(key: KeyObject): string {
  return publicOf(key).export({ type: 'spki', format: 'pem' }).toString();
}

const publicOf = (key: KeyObject): KeyObject => (key.type === 'private' ? createPublicKey(key) : key);
