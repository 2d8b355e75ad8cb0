import type { KeyObject } from 'node:crypto';
import * as path from 'node:path';
import type { Signer } from '@sigstore/sign';
import type { SigningAlgorithm, Witness } from '../config/types';
import { ConfigError } from '../core/errors';
import { FileWitnessKey } from './file-key';
import { KmsClients, KmsWitnessKey, type KmsClientOptions } from './kms-key';
import { PublicWitnessKey } from './public-key';
import type { KeyShape, WitnessKey } from './types';

/** What a KeyRing is built from: the configured witnesses and the directory relative paths resolve against. */
export interface KeyRingConfig {
  readonly witnesses: readonly Witness[];
  readonly baseDir: string;
}

/** Knobs for the keys a KeyRing builds. */
export interface KeyRingOptions {
  /** How KMS clients are built (retries, credentials, request handler). */
  readonly kms?: KmsClientOptions;
}

/**
 * A keyless (Fulcio) witness: it has no fixed key; its signatures carry a certificate for an OIDC
 * identity, which verification checks. Asking it for a key is a configuration mistake.
 */
export class KeylessWitnessKey implements WitnessKey {
  readonly canSign = false;

  constructor(
    readonly witness: string,
    readonly issuer: string,
    readonly subject: string,
  ) {}

  /** `keyless:<issuer>#<subject>`: a label for logs, not a key digest. */
  keyId(): Promise<string> {
    return Promise.resolve(`keyless:${this.issuer}#${this.subject}`);
  }

  publicKey(): Promise<KeyObject> {
    return Promise.reject(this.noKey());
  }

  shape(): Promise<KeyShape> {
    return Promise.reject(this.noKey());
  }

  signer(_algorithm: SigningAlgorithm): Promise<Signer> {
    return Promise.reject(
      new ConfigError('KEY_INVALID', `witness "${this.witness}" is keyless and verify-only: it cannot sign`),
    );
  }

  private noKey(): ConfigError {
    return new ConfigError(
      'KEY_INVALID',
      `witness "${this.witness}": keyless witnesses are verified from their certificate, not a fixed key`,
    );
  }
}

/**
 * The key of every configured witness, by witness name. Keys are built on first `get` and kept;
 * nothing is read (files) or asked (KMS) until a key is used. KMS keys share one client per
 * region and endpoint.
 */
export class KeyRing {
  private readonly witnesses: ReadonlyMap<string, Witness>;
  private readonly keys = new Map<string, WitnessKey>();
  private readonly kmsClients: KmsClients;

  constructor(
    private readonly config: KeyRingConfig,
    options: KeyRingOptions = {},
  ) {
    this.witnesses = new Map(config.witnesses.map((w) => [w.name, w]));
    this.kmsClients = new KmsClients(options.kms);
  }

  /** The names of the configured witnesses. */
  names(): string[] {
    return [...this.witnesses.keys()];
  }

  /** The key of witness `name`; throws ConfigError WITNESS_UNKNOWN for a name the config lacks. */
  get(name: string): WitnessKey {
    const existing = this.keys.get(name);
    if (existing !== undefined) return existing;
    const witness = this.witnesses.get(name);
    if (witness === undefined) {
      const known = this.names();
      throw new ConfigError(
        'WITNESS_UNKNOWN',
        `no witness named "${name}"; configured: ${known.length > 0 ? known.map((n) => `"${n}"`).join(', ') : 'none'}`,
      );
    }
    const key = this.build(witness);
    this.keys.set(name, key);
    return key;
  }

  /** Closes the KMS clients' connections (for a clean shutdown of a long-running service). */
  close(): void {
    this.kmsClients.destroy();
  }

  private build(witness: Witness): WitnessKey {
    const ref = witness.key;
    const resolve = (p: string): string => path.resolve(this.config.baseDir, p);
    switch (ref.$case) {
      case 'file':
        return new FileWitnessKey(witness.name, resolve(ref.path));
      case 'kms':
        return new KmsWitnessKey(witness.name, ref, this.kmsClients);
      case 'publicKeyFile':
        return new PublicWitnessKey(witness.name, { $case: 'file', path: resolve(ref.path) });
      case 'publicKeyPem':
        return new PublicWitnessKey(witness.name, { $case: 'pem', pem: ref.pem });
      case 'certificate':
        // The leaf certificate's key verifies; checking the chain is verification's job.
        return new PublicWitnessKey(witness.name, { $case: 'file', path: resolve(ref.certificatePath) });
      case 'keyless':
        return new KeylessWitnessKey(witness.name, ref.issuer, ref.subject);
    }
  }
}
