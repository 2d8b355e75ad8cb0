/**
 * Every witness's key, and what verifies its signatures: a fixed public key, a keyless identity
 * with its Sigstore trusted root, or certificate roots. Built on first use, kept for the life of
 * the configuration.
 */
import { createHash, type KeyObject } from 'node:crypto';
import * as path from 'node:path';
import type { Signer } from '@sigstore/sign';
import type { KeyReference, SigningAlgorithm, SingleKeyReference, Witness } from '../config/types';
import { ConfigError, KeyError } from '../core/errors';
import { onceUntilFailure } from '../core/once';
import { certificateTrust, type CertificateTrust } from '../sigstore/certificate';
import { keylessPolicy } from '../sigstore/identity';
import { loadTrustedRoot, parseTrustedRoot } from '../sigstore/trusted-root';
import type { KeylessPolicy, TrustedRoot } from '../sigstore/types';
import { keyIdOf, shapeOf } from './algorithms';
import { FileWitnessKey, readKeyFile } from './file-key';
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

/** What verifies a witness's signatures, loaded once per witness. Switch on `$case`. */
export type WitnessTrust =
  /** A fixed public key (file, KMS and public-key witnesses). */
  | { readonly $case: 'key'; readonly key: KeyObject }
  /** A keyless identity and the Sigstore trusted root its certificates must chain to. */
  | { readonly $case: 'keyless'; readonly policy: KeylessPolicy; readonly root: TrustedRoot }
  /** Certificate roots (or a pinned certificate) and the trusted root that vouches for signing times. */
  | { readonly $case: 'certificate'; readonly trust: CertificateTrust }
  /**
   * A rotating witness's keys, each with its window, and the trusted root that vouches for signing
   * times. `unavailable`: why keys that could not be loaded (a disabled KMS key, say) are missing;
   * a signature none of the loaded keys verifies may have been theirs.
   */
  | {
      readonly $case: 'keys';
      readonly keys: readonly TrustedKey[];
      readonly evidence: TrustedRoot;
      readonly unavailable: readonly unknown[];
    };

/** One public key of a rotating witness and when it is valid (epoch ms, both ends included; undefined: unbounded). */
export interface TrustedKey {
  readonly key: KeyObject;
  /** `sha256:<SPKI digest>`. */
  readonly keyId: string;
  readonly notBefore: number | undefined;
  readonly notAfter: number | undefined;
}

/** One key of a witness and when it is valid (epoch ms, both ends included; undefined: unbounded). */
export interface KeyVersion {
  readonly key: WitnessKey;
  readonly notBefore: number | undefined;
  readonly notAfter: number | undefined;
}

/** True when `at` (epoch ms) lies in the window. */
export const validAt = (
  window: { readonly notBefore: number | undefined; readonly notAfter: number | undefined },
  at: number,
): boolean =>
  (window.notBefore === undefined || at >= window.notBefore) &&
  (window.notAfter === undefined || at <= window.notAfter);

/** `2026-06-01T00:00:00.000Z .. 2026-06-30T00:00:00.000Z` (`…` for an open end). */
export const describeWindow = (window: {
  readonly notBefore: number | undefined;
  readonly notAfter: number | undefined;
}): string => {
  const end = (ms: number | undefined): string => (ms === undefined ? '…' : new Date(ms).toISOString());
  return `${end(window.notBefore)} .. ${end(window.notAfter)}`;
};

/**
 * The key witness `witness` signs with at `now`: of its keys that can sign and are valid then,
 * the one with the latest `notBefore` (the first listed on a tie). Throws KeyError KEY_UNAVAILABLE
 * when there is none (every signing key expired, or not valid yet).
 */
export function signingVersion(witness: string, versions: readonly KeyVersion[], now: number): WitnessKey {
  let newest: KeyVersion | undefined;
  for (const version of versions) {
    if (!version.key.canSign || !validAt(version, now)) continue;
    if (newest === undefined || (version.notBefore ?? -Infinity) > (newest.notBefore ?? -Infinity))
      newest = version;
  }
  if (newest !== undefined) return newest.key;
  const signing = versions.filter((v) => v.key.canSign);
  throw new KeyError(
    'KEY_UNAVAILABLE',
    witness,
    `witness "${witness}" has no key that can sign at ${new Date(now).toISOString()}: ${
      signing.length === 0
        ? 'every key is verify-only (publicKey)'
        : `its signing keys are valid ${signing.map((v) => describeWindow(v)).join(', ')}`
    }; add a key (signet keys rotate ${witness})`,
  );
}

type KeylessReference = Extract<KeyReference, { $case: 'keyless' }>;
type CertificateReference = Extract<KeyReference, { $case: 'certificate' }>;

/** Reads a `trusted_root.json` (asynchronously, with the key files' error codes), or the public-good root. */
async function readTrustedRoot(file: string | undefined, witness: string): Promise<TrustedRoot> {
  if (file === undefined) return loadTrustedRoot('public-good');
  const text = await readKeyFile(file, `witness "${witness}": trusted root`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('CONFIG_INVALID', `witness "${witness}": trusted root ${file} is not JSON`, {
      cause: err,
      issues: [{ path: file, message: 'is not JSON' }],
    });
  }
  return parseTrustedRoot(json, file);
}

const verifyOnly = (witness: string, kind: string): ConfigError =>
  new ConfigError('KEY_INVALID', `witness "${witness}" is ${kind} and verify-only: it cannot sign`);

/**
 * A keyless (Fulcio) witness: it has no fixed key; its signatures carry a certificate for an OIDC
 * identity, which verification checks against a Sigstore trusted root. Asking it for a key is a
 * configuration mistake. The trusted root is read on first use (at start, by preflight) and kept.
 */
export class KeylessWitnessKey implements WitnessKey {
  readonly canSign = false;
  readonly issuer: string;
  readonly subject: string;
  readonly trust: () => Promise<WitnessTrust>;

  constructor(
    readonly witness: string,
    reference: KeylessReference,
  ) {
    this.issuer = reference.issuer;
    this.subject =
      reference.subject.$case === 'exact' ? reference.subject.subject : `/${reference.subject.pattern}/`;
    this.trust = onceUntilFailure(async () => {
      const root = await readTrustedRoot(reference.trustedRootPath, witness);
      const policy = keylessPolicy(
        {
          issuer: reference.issuer,
          ...(reference.subject.$case === 'exact'
            ? { subject: reference.subject.subject }
            : { subjectRegExp: reference.subject.pattern }),
          ...(reference.github !== undefined ? { github: reference.github } : {}),
        },
        `witness "${witness}".keyless`,
      );
      return { $case: 'keyless', policy, root };
    });
  }

  /** `keyless:<issuer>#<subject>` (`#/<pattern>/` for a subject pattern): a label for logs, not a key digest. */
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
    return Promise.reject(verifyOnly(this.witness, 'keyless'));
  }

  private noKey(): ConfigError {
    return new ConfigError(
      'KEY_INVALID',
      `witness "${this.witness}": keyless witnesses are verified from their certificate, not a fixed key`,
    );
  }
}

/**
 * A certificate witness: signatures whose certificate chains to the configured roots (or is the
 * pinned certificate) and was valid when they were made. Its key is the pinned certificate's,
 * when it pins one. The files are read on first use (at start, by preflight) and kept.
 */
export class CertificateWitnessKey implements WitnessKey {
  readonly canSign = false;
  private readonly load: () => Promise<CertificateTrust>;

  constructor(
    readonly witness: string,
    reference: CertificateReference,
  ) {
    this.load = onceUntilFailure(async () => {
      const read = (path: string, what: string): Promise<string> =>
        readKeyFile(path, `witness "${witness}": ${what}`);
      const [certificate, certificateChain, roots, evidence] = await Promise.all([
        reference.certificatePath === undefined ? undefined : read(reference.certificatePath, 'certificate'),
        reference.chainPath === undefined ? undefined : read(reference.chainPath, 'certificate chain'),
        Promise.all(reference.rootPaths.map((path) => read(path, 'root'))),
        readTrustedRoot(reference.trustedRootPath, witness),
      ]);
      return certificateTrust(
        {
          ...(certificate !== undefined ? { certificate } : {}),
          ...(certificateChain !== undefined ? { certificateChain } : {}),
          ...(roots.length > 0 ? { roots: roots.join('\n') } : {}),
          evidence,
          requireSignedTime: reference.requireSignedTime,
        },
        `witness "${witness}"`,
      );
    });
  }

  /** The witness's trust: anchors, intermediates, the pinned certificate and the evidence root. */
  readonly trust = onceUntilFailure(async (): Promise<WitnessTrust> => ({
    $case: 'certificate',
    trust: await this.load(),
  }));

  /** The pinned certificate's `sha256:<SPKI digest>`, else `roots:sha256:<digest of the anchors>`. */
  async keyId(): Promise<string> {
    const trust = await this.load();
    if (trust.pinned !== undefined) return keyIdOf(trust.pinned.native.publicKey);
    const anchors = createHash('sha256');
    for (const anchor of trust.anchors) anchors.update(anchor.der);
    return `roots:sha256:${anchors.digest('hex')}`;
  }

  /** The pinned certificate's key; a witness without one has no fixed key (KEY_INVALID). */
  async publicKey(): Promise<KeyObject> {
    const trust = await this.load();
    if (trust.pinned === undefined) {
      throw new ConfigError(
        'KEY_INVALID',
        `witness "${this.witness}" pins no certificate: it is verified from the certificate each signature carries`,
      );
    }
    return trust.pinned.native.publicKey;
  }

  async shape(): Promise<KeyShape> {
    return shapeOf(await this.publicKey());
  }

  signer(_algorithm: SigningAlgorithm): Promise<Signer> {
    return Promise.reject(verifyOnly(this.witness, 'a certificate witness'));
  }
}

/** One witness's keys and what verifies its signatures. */
interface KeyEntry {
  /** The key it signs with at `now` (epoch ms). */
  readonly signing: (now: number) => WitnessKey;
  readonly versions: readonly KeyVersion[];
  readonly trust: () => Promise<WitnessTrust>;
}

/**
 * The key of every configured witness, by witness name. Keys are built on first `get` and kept;
 * nothing is read (files) or asked (KMS) until a key is used. KMS keys share one client per
 * region and endpoint.
 */
export class KeyRing {
  private readonly witnesses: ReadonlyMap<string, Witness>;
  private readonly entries = new Map<string, KeyEntry>();
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

  /**
   * The key of witness `name`, the one it signs with at `now` for a witness with several keys.
   * Throws ConfigError WITNESS_UNKNOWN for a name the config lacks, KeyError KEY_UNAVAILABLE when
   * none of a rotating witness's signing keys is valid at `now`.
   */
  get(name: string, now: number = Date.now()): WitnessKey {
    return this.entry(name).signing(now);
  }

  /**
   * Every key of witness `name` with its window: the keys of `keys:` in config order, or its one
   * key, valid at any time. Throws ConfigError WITNESS_UNKNOWN for a name the config lacks.
   */
  versions(name: string): readonly KeyVersion[] {
    return this.entry(name).versions;
  }

  /**
   * What verifies witness `name`'s signatures: its public key, its keyless identity and trusted
   * root, or its certificate roots. Loaded on first use and kept (a failure is tried again).
   * Throws ConfigError WITNESS_UNKNOWN for a name the config lacks; rejects with the key's or the
   * files' ConfigError or KeyError.
   */
  trust(name: string): Promise<WitnessTrust> {
    try {
      return this.entry(name).trust();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Closes the KMS clients' connections (for a clean shutdown of a long-running service). */
  close(): void {
    this.kmsClients.destroy();
  }

  private entry(name: string): KeyEntry {
    const existing = this.entries.get(name);
    if (existing !== undefined) return existing;
    const witness = this.witnesses.get(name);
    if (witness === undefined) {
      const known = this.names();
      throw new ConfigError(
        'WITNESS_UNKNOWN',
        `no witness named "${name}"; configured: ${known.length > 0 ? known.map((n) => `"${n}"`).join(', ') : 'none'}`,
      );
    }
    const entry = this.build(witness);
    this.entries.set(name, entry);
    return entry;
  }

  private build(witness: Witness): KeyEntry {
    const ref = witness.key;
    const resolve = (p: string): string => path.resolve(this.config.baseDir, p);
    const only = (key: WitnessKey): Omit<KeyEntry, 'trust'> => ({
      signing: () => key,
      versions: [{ key, notBefore: undefined, notAfter: undefined }],
    });
    const withKey = (key: WitnessKey): KeyEntry => ({
      ...only(key),
      trust: async () => ({ $case: 'key', key: await key.publicKey() }),
    });
    if (witness.rotation !== undefined) {
      const { trustedRootPath } = witness.rotation;
      const versions = witness.rotation.keys.map((v) => ({ ...v, key: this.single(witness.name, v.key) }));
      return {
        signing: (now) => signingVersion(witness.name, versions, now),
        versions,
        trust: onceUntilFailure(async (): Promise<WitnessTrust> => {
          const [loaded, evidence] = await Promise.all([
            Promise.allSettled(
              versions.map(async (v): Promise<TrustedKey> => {
                const key = await v.key.publicKey();
                return { key, keyId: keyIdOf(key), notBefore: v.notBefore, notAfter: v.notAfter };
              }),
            ),
            readTrustedRoot(
              trustedRootPath === undefined ? undefined : resolve(trustedRootPath),
              witness.name,
            ),
          ]);
          // One retired key that cannot be read must not stop the others from verifying; a
          // passing outage (or every key unreadable) is a failure, tried again at the next use.
          const unavailable = loaded.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
          const keys = loaded.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
          const retryable = unavailable.find((err) => err instanceof KeyError && err.retryable);
          if (keys.length === 0 || retryable !== undefined) throw retryable ?? unavailable[0];
          return { $case: 'keys', keys, evidence, unavailable };
        }),
      };
    }
    switch (ref.$case) {
      case 'file':
      case 'kms':
      case 'publicKeyFile':
      case 'publicKeyPem':
        return withKey(this.single(witness.name, ref));
      case 'certificate': {
        const key = new CertificateWitnessKey(witness.name, {
          ...ref,
          certificatePath: ref.certificatePath === undefined ? undefined : resolve(ref.certificatePath),
          chainPath: ref.chainPath === undefined ? undefined : resolve(ref.chainPath),
          rootPaths: ref.rootPaths.map(resolve),
          trustedRootPath: ref.trustedRootPath === undefined ? undefined : resolve(ref.trustedRootPath),
        });
        return { ...only(key), trust: key.trust };
      }
      case 'keyless': {
        const key = new KeylessWitnessKey(witness.name, {
          ...ref,
          trustedRootPath: ref.trustedRootPath === undefined ? undefined : resolve(ref.trustedRootPath),
        });
        return { ...only(key), trust: key.trust };
      }
    }
  }

  /** The key behind one reference: a key file, a KMS key, a public key. */
  private single(witness: string, ref: SingleKeyReference): WitnessKey {
    const resolve = (p: string): string => path.resolve(this.config.baseDir, p);
    switch (ref.$case) {
      case 'file':
        return new FileWitnessKey(witness, resolve(ref.path));
      case 'kms':
        return new KmsWitnessKey(witness, ref, this.kmsClients);
      case 'publicKeyFile':
        return new PublicWitnessKey(witness, { $case: 'file', path: resolve(ref.path) });
      case 'publicKeyPem':
        return new PublicWitnessKey(witness, { $case: 'pem', pem: ref.pem });
    }
  }
}
