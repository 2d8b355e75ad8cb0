import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Signer } from '@sigstore/sign';
import type { SigningAlgorithm } from '../config/types';
import { ConfigError, KeyError, describeError } from '../core/errors';
import { onceUntilFailure } from '../core/once';
import { ALGORITHMS, assertAlgorithmFits, keyIdOf, shapeOf, signOptions, spkiPem } from './algorithms';
import type { KeyShape, WitnessKey } from './types';

/** A private key read from a file, with everything derived from it once. */
export interface LoadedPrivateKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;
  readonly keyId: string;
  readonly shape: KeyShape;
}

/** One `-----BEGIN <label>-----` block of a PEM file, headers and all. */
interface PemBlock {
  readonly label: string;
  readonly text: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const PRIVATE_LABELS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);

/** The PEM blocks of a file, in order. */
export function pemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1] ?? '', text: m[0] }));
}

/**
 * Parses an unencrypted PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or the traditional
 * `BEGIN RSA PRIVATE KEY` / `BEGIN EC PRIVATE KEY` that openssl writes (an `EC PARAMETERS` block
 * before it is skipped). `source` names the key in messages. Throws ConfigError KEY_INVALID.
 */
export function parsePrivateKeyPem(text: string, source: string): LoadedPrivateKey {
  const invalid = (message: string, cause?: unknown): ConfigError =>
    new ConfigError('KEY_INVALID', `${source}: ${message}`, cause === undefined ? undefined : { cause });
  const blocks = pemBlocks(text);
  if (blocks.length === 0) throw invalid('is not a PEM file (no -----BEGIN ...----- block)');
  const labels = blocks.map((b) => b.label);
  if (labels.some((l) => /^ENCRYPTED (SIGSTORE|COSIGN) PRIVATE KEY$/.test(l))) {
    throw invalid(
      'is a cosign-encrypted key, which Signet cannot read; create a key with `signet keys generate` or use an unencrypted PKCS#8 PEM key',
    );
  }
  if (labels.includes('ENCRYPTED PRIVATE KEY')) {
    throw invalid(
      'is encrypted; Signet needs an unencrypted PKCS#8 PEM key (`openssl pkcs8 -topk8 -nocrypt -in <key> -out <new key>`) kept with file mode 0600',
    );
  }
  const block = blocks.find((b) => PRIVATE_LABELS.has(b.label));
  if (block === undefined) {
    const kind = labels.some((l) => l.includes('PUBLIC KEY') || l === 'CERTIFICATE')
      ? 'holds a public key or certificate'
      : `holds ${labels.join(', ')}`;
    throw invalid(`${kind}, not a private key; a signing witness needs a PKCS#8 PEM private key`);
  }
  if (/^Proc-Type:\s*4,\s*ENCRYPTED/m.test(block.text)) {
    throw invalid(
      'is encrypted; Signet needs an unencrypted PKCS#8 PEM key (`openssl pkcs8 -topk8 -nocrypt -in <key> -out <new key>`) kept with file mode 0600',
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: block.text, format: 'pem' });
  } catch (err) {
    throw invalid(`is not a valid ${block.label} (${describeError(err)})`, err);
  }
  const type = privateKey.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'ec') {
    throw invalid(`is a ${String(type)} key; Signet signs with RSA and EC (P-256, P-384) keys`);
  }
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyPem: spkiPem(publicKey),
    keyId: keyIdOf(publicKey),
    shape: shapeOf(publicKey),
  };
}

/** Reads a whole key file, converting read failures into ConfigError KEY_UNREADABLE. */
export async function readKeyFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : describeError(err);
    throw new ConfigError('KEY_UNREADABLE', `${what} ${path}: ${reason}`, { cause: err });
  }
}

/** Signs with a node:crypto private key, off the main thread (RSA 4096 takes milliseconds). */
export function localSigner(
  privateKey: KeyObject,
  algorithm: SigningAlgorithm,
  key: { publicKeyPem: string; keyId: string },
): Signer {
  const hash = ALGORITHMS[algorithm].hash;
  const options = signOptions(algorithm, privateKey);
  return {
    sign: (data) =>
      new Promise((resolve, reject) => {
        sign(hash, data, options, (err, signature) => {
          if (err) {
            reject(
              new KeyError('SIGN_FAILED', key.keyId, `${algorithm} signing failed: ${err.message}`, {
                cause: err,
              }),
            );
          } else {
            resolve({ signature, key: { $case: 'publicKey', publicKey: key.publicKeyPem, hint: key.keyId } });
          }
        });
      }),
  };
}

/**
 * A witness whose private key is a PEM file on disk (RSA or EC). The file is read on first use,
 * not at construction, so a config can name a key `signet keys generate` has yet to create; a
 * failed read is not remembered, so the next use tries again.
 */
export class FileWitnessKey implements WitnessKey {
  readonly canSign = true;
  private readonly load = onceUntilFailure(async () => {
    const text = await readKeyFile(this.path, `witness "${this.witness}": private key`);
    return parsePrivateKeyPem(text, `witness "${this.witness}": ${this.path}`);
  });

  constructor(
    readonly witness: string,
    readonly path: string,
  ) {}

  async keyId(): Promise<string> {
    return (await this.load()).keyId;
  }

  async publicKey(): Promise<KeyObject> {
    return (await this.load()).publicKey;
  }

  async shape(): Promise<KeyShape> {
    return (await this.load()).shape;
  }

  async signer(algorithm: SigningAlgorithm): Promise<Signer> {
    const loaded = await this.load();
    assertAlgorithmFits(loaded.shape, algorithm, `${this.path} (witness "${this.witness}")`);
    return localSigner(loaded.privateKey, algorithm, loaded);
  }
}
