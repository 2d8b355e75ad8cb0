import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import type { Signer } from '@sigstore/sign';
import type { SigningAlgorithm } from '../config/types';
import { ConfigError, describeError } from '../core/errors';
import { onceUntilFailure } from '../core/once';
import { keyIdOf, shapeOf } from './algorithms';
import { pemBlocks, readKeyFile } from './file-key';
import type { KeyShape, WitnessKey } from './types';

/** Where a verify-only public key comes from. A tagged union: switch on `$case`. */
export type PublicKeySource =
  /** A PEM file holding an SPKI public key or an X.509 certificate (the first one is used). */
  | { readonly $case: 'file'; readonly path: string }
  /** PEM text from the configuration. */
  | { readonly $case: 'pem'; readonly pem: string };

interface LoadedPublicKey {
  readonly publicKey: KeyObject;
  readonly keyId: string;
  readonly shape: KeyShape;
}

const PUBLIC_LABELS = new Set(['PUBLIC KEY', 'RSA PUBLIC KEY', 'CERTIFICATE']);

/**
 * Parses a PEM SPKI public key (`BEGIN PUBLIC KEY`, or PKCS#1 `BEGIN RSA PUBLIC KEY`), or an X.509
 * certificate (`BEGIN CERTIFICATE`) whose public key is taken. Only RSA and EC keys are accepted.
 * `source` names the key in messages. Throws ConfigError KEY_INVALID.
 */
export function parsePublicKeyPem(text: string, source: string): KeyObject {
  const invalid = (message: string, cause?: unknown): ConfigError =>
    new ConfigError('KEY_INVALID', `${source}: ${message}`, cause === undefined ? undefined : { cause });
  const blocks = pemBlocks(text);
  if (blocks.length === 0) throw invalid('is not a PEM file (no -----BEGIN ...----- block)');
  if (blocks.some((b) => b.label.includes('PRIVATE KEY'))) {
    throw invalid('holds a private key; a verify-only witness takes the public key (or certificate) only');
  }
  const block = blocks.find((b) => PUBLIC_LABELS.has(b.label));
  if (block === undefined) {
    throw invalid(
      `holds ${blocks.map((b) => b.label).join(', ')}, not a public key (BEGIN PUBLIC KEY) or certificate (BEGIN CERTIFICATE)`,
    );
  }
  let publicKey: KeyObject;
  try {
    publicKey =
      block.label === 'CERTIFICATE'
        ? new X509Certificate(block.text).publicKey
        : createPublicKey({ key: block.text, format: 'pem' });
  } catch (err) {
    throw invalid(`is not a valid ${block.label} (${describeError(err)})`, err);
  }
  const type = publicKey.asymmetricKeyType;
  if (type !== 'rsa' && type !== 'ec') {
    throw invalid(`is a ${String(type)} key; Signet verifies RSA and EC (P-256, P-384) keys`);
  }
  return publicKey;
}

/**
 * A verify-only witness: a public key (or a certificate's key) from a PEM file or inline PEM.
 * A file is read on first use; a failed read is not remembered.
 */
export class PublicWitnessKey implements WitnessKey {
  readonly canSign = false;
  private readonly load = onceUntilFailure(() => this.read());

  constructor(
    readonly witness: string,
    readonly source: PublicKeySource,
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

  signer(_algorithm: SigningAlgorithm): Promise<Signer> {
    return Promise.reject(
      new ConfigError(
        'KEY_INVALID',
        `witness "${this.witness}" is verify-only (it has a public key, not a private key) and cannot sign`,
      ),
    );
  }

  private async read(): Promise<LoadedPublicKey> {
    const source = this.source;
    let publicKey: KeyObject;
    switch (source.$case) {
      case 'file': {
        const text = await readKeyFile(source.path, `witness "${this.witness}": public key`);
        publicKey = parsePublicKeyPem(text, `witness "${this.witness}": ${source.path}`);
        break;
      }
      case 'pem':
        publicKey = parsePublicKeyPem(source.pem, `witness "${this.witness}": publicKey`);
        break;
    }
    return { publicKey, keyId: keyIdOf(publicKey), shape: shapeOf(publicKey) };
  }
}
