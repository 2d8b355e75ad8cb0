/**
 * Checks a loaded configuration against its keys, before anything is signed or verified: a rule
 * whose algorithm does not fit its witness's key would fail every push, an attestor set whose
 * witnesses share a key would let one key count as several, and a keyless or certificate witness
 * whose trusted root or certificates do not load would deny everything. Local keys, trusted roots
 * and certificates are read (once: the KeyRing keeps them); KMS keys are asked where KMS answers
 * within a few seconds (and checked again at first use otherwise).
 */
import type { KeyObject } from 'node:crypto';
import type { KeyReference, SignetConfig } from '../config/types';
import { ConfigError, describeError, type FieldIssue } from '../core/errors';
import type { Logger } from '../core/logger';
import { assertAlgorithmFits, keyIdOf, shapeOf } from './algorithms';
import type { KeyVersion, WitnessTrust } from './keyring';
import { KmsWitnessKey } from './kms-key';
import type { WitnessKey } from './types';

/** Where preflight gets keys from (the KeyRing). */
export interface PreflightKeys {
  get(name: string): WitnessKey;
  /** Every key of a witness, with its window (a rotating witness's `keys:`; else its one key). */
  versions(name: string): readonly KeyVersion[];
  /** Loads (and keeps) what verifies a witness: trusted roots, certificate roots. */
  trust(name: string): Promise<WitnessTrust>;
}

/** What preflight found: problems that must stop Signet, and keys it could not look at. */
export interface PreflightResult {
  readonly issues: readonly FieldIssue[];
  /** KMS keys that did not answer: not checked now. */
  readonly unchecked: readonly { readonly witness: string; readonly reason: string }[];
}

/** How long a KMS key may take to answer before preflight leaves it to its first use. */
const KMS_PREFLIGHT_TIMEOUT_MS = 3_000;

type KeyLook =
  | { readonly $case: 'key'; readonly key: KeyObject }
  | { readonly $case: 'unreachable'; readonly reason: string }
  | { readonly $case: 'broken'; readonly reason: string };

/**
 * Reads every witness key that a rule signs with or an attestor set counts, and checks them.
 * KMS keys of disabled rules are not asked (they may live in an account not reachable from here).
 * `missingFiles: 'skip'` leaves key files that do not exist yet (`signet config check` before the
 * first `signet serve` creates them) unchecked instead of failing.
 */
export async function inspectKeys(
  config: Pick<SignetConfig, 'witnesses' | 'signingRules' | 'policies'>,
  keys: PreflightKeys,
  options: { readonly missingFiles?: 'skip' | 'fail' } = {},
): Promise<PreflightResult> {
  const kinds = new Map(config.witnesses.map((w) => [w.name, w.key.$case]));
  const fixedKey = new Map(config.witnesses.map((w) => [w.name, hasFixedKey(w.key)]));
  const rotating = new Set(config.witnesses.filter((w) => w.rotation !== undefined).map((w) => w.name));
  const missingFiles = options.missingFiles ?? 'fail';
  const looks = new Map<string, Promise<KeyLook>>();
  const look = (witness: string): Promise<KeyLook> => {
    let pending = looks.get(witness);
    if (pending === undefined) {
      pending = lookUp(witness, kinds.get(witness), keys, missingFiles);
      looks.set(witness, pending);
    }
    return pending;
  };
  // A rotating witness: each of its keys, looked at once (its kind is its own, not the witness's).
  const versionLooks = new Map<string, Promise<KeyLook[]>>();
  const lookVersions = (witness: string): Promise<KeyLook[]> => {
    let pending = versionLooks.get(witness);
    if (pending === undefined) {
      pending = Promise.all(
        keys.versions(witness).map((v) => lookUp(witness, kindOf(v.key), { get: () => v.key }, missingFiles)),
      );
      versionLooks.set(witness, pending);
    }
    return pending;
  };
  const issues: FieldIssue[] = [];
  const unchecked = new Map<string, string>();
  const note = (witness: string, found: KeyLook, at: string): KeyObject | undefined => {
    switch (found.$case) {
      case 'key':
        return found.key;
      case 'unreachable':
        unchecked.set(witness, found.reason);
        return undefined;
      case 'broken':
        issues.push({ path: at, message: `witness "${witness}": ${found.reason}` });
        return undefined;
    }
  };

  await Promise.all(
    config.signingRules.map(async (rule, i) => {
      if (!rule.enabled && kinds.get(rule.witness) === 'kms') return;
      const key = note(rule.witness, await look(rule.witness), `signingRules[${i}].witness`);
      if (key === undefined) return;
      try {
        assertAlgorithmFits(shapeOf(key), rule.algorithm, `of witness "${rule.witness}"`);
      } catch (err) {
        issues.push({ path: `signingRules[${i}].algorithm`, message: describeError(err) });
      }
      // Every key a rotating witness will sign with must fit too, not only today's.
      if (!rotating.has(rule.witness)) return;
      const versions = keys.versions(rule.witness);
      const looked = await lookVersions(rule.witness);
      looked.forEach((found, k) => {
        if (versions[k]?.key.canSign !== true) return;
        const other = note(rule.witness, found, `signingRules[${i}].witness`);
        if (other === undefined || keyIdOf(other) === keyIdOf(key)) return;
        try {
          assertAlgorithmFits(shapeOf(other), rule.algorithm, `of witness "${rule.witness}" (keys[${k}])`);
        } catch (err) {
          issues.push({ path: `signingRules[${i}].algorithm`, message: describeError(err) });
        }
      });
    }),
  );

  await Promise.all(
    config.policies.flatMap((policy, p) =>
      policy.attestors.map(async (set, s) => {
        if (set.count < 2) return;
        // N of M means N distinct keys: two names for one key must not count twice. The keys of
        // one rotating witness are one signer; two witnesses sharing any key are not two.
        const byKey = new Map<string, string>();
        for (const witness of set.witnesses) {
          // Keyless and unpinned certificate witnesses have no key until a signature brings one.
          if (fixedKey.get(witness) === false) continue;
          const found = rotating.has(witness) ? await lookVersions(witness) : [await look(witness)];
          const ids = new Set<string>();
          for (const one of found) {
            const key = note(witness, one, `policies[${p}].attestors[${s}]`);
            if (key !== undefined) ids.add(keyIdOf(key));
          }
          for (const id of ids) {
            const other = byKey.get(id);
            if (other !== undefined && other !== witness) {
              issues.push({
                path: `policies[${p}].attestors[${s}].witnesses`,
                message: `witnesses "${other}" and "${witness}" hold the same key (${id}), so they cannot count as ${set.count} distinct signers`,
              });
            } else {
              byKey.set(id, witness);
            }
          }
        }
      }),
    ),
  );
  // Trusted roots and certificate files are read now, once, so a bad one stops Signet at start
  // instead of denying every image its policies cover.
  await Promise.all(
    config.witnesses.map(async (witness, i) => {
      if (witness.key.$case !== 'keyless' && witness.key.$case !== 'certificate') return;
      try {
        await keys.trust(witness.name);
      } catch (err) {
        if (missingFiles === 'skip' && isMissingFile(err)) {
          unchecked.set(witness.name, 'a file it names does not exist yet');
          return;
        }
        const at = witness.key.$case === 'keyless' ? `witnesses[${i}].keyless` : `witnesses[${i}]`;
        const problem = trustProblem(err);
        const prefix = `witness "${witness.name}": `;
        issues.push({ path: at, message: problem.startsWith(prefix) ? problem : `${prefix}${problem}` });
      }
    }),
  );
  return {
    issues: dedupe(issues),
    unchecked: [...unchecked].map(([witness, reason]) => ({ witness, reason })),
  };
}

/** False for witnesses verified from the certificate each signature brings (keyless, unpinned certificate). */
function hasFixedKey(key: KeyReference): boolean {
  switch (key.$case) {
    case 'keyless':
      return false;
    case 'certificate':
      return key.certificatePath !== undefined;
    case 'file':
    case 'kms':
    case 'publicKeyFile':
    case 'publicKeyPem':
      return true;
  }
}

const isMissingFile = (err: unknown): boolean =>
  (err as { code?: string }).code === 'KEY_UNREADABLE' &&
  /ENOENT|does not exist|no such file/i.test(describeError(err));

/** A trust-loading error with every field it lists (a trusted root's own JSON paths). */
function trustProblem(err: unknown): string {
  const message = describeError(err);
  const details =
    err instanceof ConfigError
      ? err.issues.map((i) => `${i.path} ${i.message}`).filter((d) => !message.includes(d))
      : [];
  return details.length > 0 ? `${message}: ${details.join('; ')}` : message;
}

/** `inspectKeys`, then: problems throw ConfigError (listing each), unreachable KMS keys are logged. */
export async function preflight(
  config: Pick<SignetConfig, 'witnesses' | 'signingRules' | 'policies'>,
  keys: PreflightKeys,
  logger: Logger,
): Promise<void> {
  const result = await inspectKeys(config, keys);
  for (const { witness, reason } of result.unchecked) {
    logger.warn('witness key not checked at start', { witness, reason });
  }
  if (result.issues.length > 0) {
    throw new ConfigError(
      'KEY_INVALID',
      `the configuration cannot work with its keys: ${result.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { issues: result.issues },
    );
  }
}

/** The kind of one key, as `lookUp` tells KMS keys from local ones. */
const kindOf = (key: WitnessKey): string => (key instanceof KmsWitnessKey ? 'kms' : 'local');

async function lookUp(
  witness: string,
  kind: string | undefined,
  keys: Pick<PreflightKeys, 'get'>,
  missingFiles: 'skip' | 'fail',
): Promise<KeyLook> {
  if (kind === 'keyless') return { $case: 'broken', reason: 'is keyless: it has no key to check' };
  let timer: NodeJS.Timeout | undefined;
  try {
    const key = keys.get(witness).publicKey();
    if (kind !== 'kms') return { $case: 'key', key: await key };
    const timeout = new Promise<KeyLook>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            $case: 'unreachable',
            reason: `KMS did not answer within ${KMS_PREFLIGHT_TIMEOUT_MS} ms`,
          }),
        KMS_PREFLIGHT_TIMEOUT_MS,
      );
      timer.unref();
    });
    // A KMS key that cannot be reached is not a broken configuration; one KMS refuses may be.
    key.catch(() => undefined);
    return await Promise.race([key.then((k): KeyLook => ({ $case: 'key', key: k })), timeout]);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (missingFiles === 'skip' && isMissingFile(err))
      return { $case: 'unreachable', reason: 'the key file does not exist yet' };
    if (
      kind === 'kms' &&
      (code === 'KMS_UNAVAILABLE' ||
        code === 'KMS_THROTTLED' ||
        code === 'KMS_ACCESS_DENIED' ||
        code === 'AWS_CREDENTIALS_MISSING')
    )
      return { $case: 'unreachable', reason: describeError(err) };
    return { $case: 'broken', reason: describeError(err) };
  } finally {
    clearTimeout(timer);
  }
}

function dedupe(issues: readonly FieldIssue[]): FieldIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}|${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
