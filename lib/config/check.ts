/**
 * Non-fatal advice about a configuration that loaded: choices that are legal but easy to regret
 * (PSS signatures other verifiers reject, rules or policies that do nothing, fail-open settings,
 * GitHub claims no certificate of the issuer carries), and files that do not exist yet. Shown by
 * `signet config check` and at startup.
 */
import { existsSync } from 'node:fs';
import { isLoopbackHost } from './hosts';
import type { KeyReference, KeyRotation, SignetConfig, WitnessKeyVersion } from './types';

const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

/** The advice for one configuration; each warning starts with the path of the field it is about. */
export interface ConfigCheck {
  readonly warnings: string[];
}

/** Hosts of public transparency logs, where whatever is logged is public. */
const PUBLIC_LOGS: ReadonlySet<string> = new Set(['rekor.sigstore.dev', 'log2025-1.rekor.sigstore.dev']);

/** Checks a loaded configuration; reads the file system only to see whether key files exist. */
export function checkConfig(
  config: SignetConfig,
  fileExists: (file: string) => boolean = existsSync,
): ConfigCheck {
  const warnings: string[] = [];
  const warn = (at: string, message: string): void => {
    warnings.push(`${at}: ${message}`);
  };

  config.registries.forEach((registry, i) => {
    if (registry.insecure && !isLoopbackHost(registry.host)) {
      warn(
        `registries[${i}] (${registry.host})`,
        'insecure: plain HTTP to a registry that is not on this machine exposes images and credentials to the network',
      );
    }
  });

  config.witnesses.forEach((witness, i) => {
    const at = `witnesses[${i}] (${witness.name})`;
    if (
      witness.transparencyLog !== undefined &&
      PUBLIC_LOGS.has(new URL(witness.transparencyLog.url).hostname)
    ) {
      warn(
        `${at}.transparencyLog`,
        'is the public Sigstore log: every signature, its payload hash and the witness key are published for good (a private Rekor is the usual choice)',
      );
    }
    const key = witness.key;
    switch (key.$case) {
      case 'file':
        if (!fileExists(key.path)) {
          warn(
            at,
            `key file ${key.path} does not exist yet; it is created by \`signet keys generate\` or on the first \`signet serve\``,
          );
        }
        break;
      case 'publicKeyFile':
        if (!fileExists(key.path)) {
          warn(at, `public key file ${key.path} does not exist: verification with this witness will fail`);
        }
        break;
      case 'certificate':
        for (const file of [key.certificatePath, key.chainPath, ...key.rootPaths]) {
          if (file !== undefined && !fileExists(file)) {
            warn(at, `certificate file ${file} does not exist: verification with this witness will fail`);
          }
        }
        if (key.trustedRootPath !== undefined && !fileExists(key.trustedRootPath)) {
          warn(
            at,
            `trusted root ${key.trustedRootPath} does not exist: verification with this witness will fail`,
          );
        }
        break;
      case 'keyless':
        if (key.trustedRootPath !== undefined && !fileExists(key.trustedRootPath)) {
          warn(
            at,
            `trusted root ${key.trustedRootPath} does not exist: verification with this witness will fail`,
          );
        }
        if (key.github !== undefined && key.issuer !== GITHUB_ACTIONS_ISSUER) {
          warn(
            at,
            `keyless.github: Fulcio writes GitHub workflow claims for the issuer ${GITHUB_ACTIONS_ISSUER}, not ${key.issuer}: certificates of this issuer will not match`,
          );
        }
        break;
      case 'kms':
      case 'publicKeyPem':
        break;
    }
    if (witness.rotation !== undefined) checkRotation(witness.rotation, key, at, fileExists, warn);
  });

  config.signingRules.forEach((rule, i) => {
    const at = `signingRules[${i}] (${rule.name})`;
    if (rule.algorithm === 'RSASSA_PSS_SHA_256') {
      warn(
        at,
        'RSA-PSS signatures are not verifiable by cosign, Kyverno or the Sigstore policy-controller with a PEM public key ' +
          '(they verify RSA keys with PKCS#1 v1.5); use RSA_PKCS1_SHA_256 unless only Signet verifies these images',
      );
    }
    const logged = config.witnesses.find((w) => w.name === rule.witness)?.transparencyLog;
    if (rule.algorithm === 'RSASSA_PSS_SHA_256' && logged !== undefined) {
      warn(
        at,
        `its witness logs to ${logged.url}, and Rekor checks RSA signatures with PKCS#1 v1.5: it refuses RSA-PSS entries (TLOG_REFUSED), so nothing is signed`,
      );
    }
    if (!rule.enabled) warn(at, 'is disabled: images it matches are not signed');
    if (rule.trigger === 'manual') warn(at, 'has a manual trigger: pushes are not signed until someone asks');
    const conditions = rule.conditions;
    if (conditions === undefined) return;
    const covered = config.registries.filter(
      (r) => rule.registries.length === 0 || rule.registries.includes(r.host),
    );
    if (conditions.signedBy !== undefined && conditions.signedIdentity.type === 'matchDigest') {
      warn(
        at,
        'conditions.signedIdentity matchDigest: a signedBy signature made for any repository counts (the promotion recipe; make sure that is meant)',
      );
    }
    if (conditions.scan?.ignoreUnfixed === true && covered.some((r) => r.kind === 'ecr')) {
      warn(
        at,
        'conditions.scan.ignoreUnfixed: ECR basic scanning and Inspector events count findings without saying which are fixable, so on ECR every finding counts',
      );
    }
    if (conditions.pushedBy !== undefined && covered.some((r) => r.kind === 'distribution')) {
      warn(
        at,
        'conditions.pushedBy: distribution names the pusher (actor.name) only when the registry requires authentication; a push it does not authenticate is not signed (PUSHER_UNKNOWN)',
      );
    }
  });

  config.policies.forEach((policy, i) => {
    const at = `policies[${i}] (${policy.name})`;
    if (!policy.enabled) warn(at, 'is disabled (policies are off unless `enabled: true`): it checks nothing');
    else if (policy.mode === 'audit')
      warn(
        at,
        'is in audit mode: images that fail it are admitted with a warning (registry and KMS outages still deny unless failurePolicy: allow)',
      );
    if (policy.signedIdentity.type === 'matchDigest') {
      warn(
        at,
        'signedIdentity matchDigest: a signature made for any repository admits the digest here (a dev signature copied into prod counts)',
      );
    }
    if (policy.enabled && policy.failurePolicy === 'allow') {
      warn(at, 'failurePolicy allow: images are admitted unverified whenever a registry or KMS fails');
    }
  });

  const { noMatchingPolicy } = config.admission;
  if (noMatchingPolicy === 'allow' || noMatchingPolicy === 'warn') {
    warn(
      'admission.noMatchingPolicy',
      `is ${noMatchingPolicy}: images that no enabled policy covers are admitted without verification`,
    );
  }

  const { server } = config;
  if (!isLoopbackHost(server.host) && server.bearerToken === undefined && server.secretPath === undefined) {
    warn(
      'server',
      `listens on ${server.host} with neither bearerToken nor secretPath: anyone who can reach it can call it`,
    );
  }
  return { warnings };
}

/** A rotating witness: key files that do not exist, keys that expired, no key that can sign now. */
function checkRotation(
  rotation: KeyRotation,
  primary: KeyReference,
  at: string,
  fileExists: (file: string) => boolean,
  warn: (at: string, message: string) => void,
  now: number = Date.now(),
): void {
  rotation.keys.forEach((version, k) => {
    const key = version.key;
    // The witness's own key (the newest signing key) is checked above, and created when missing.
    if (key !== primary && (key.$case === 'file' || key.$case === 'publicKeyFile') && !fileExists(key.path)) {
      warn(`${at}.keys[${k}]`, `key file ${key.path} does not exist: this key neither signs nor verifies`);
    }
    if (version.notAfter !== undefined && version.notAfter < now) {
      warn(
        `${at}.keys[${k}]`,
        'expired (notAfter is past): it verifies only signatures with a log entry or timestamp from its window; remove it once nothing needs it',
      );
    }
  });
  const signing = rotation.keys.filter((v) => v.key.$case === 'file' || v.key.$case === 'kms');
  const valid = (v: WitnessKeyVersion): boolean =>
    (v.notBefore === undefined || v.notBefore <= now) && (v.notAfter === undefined || v.notAfter >= now);
  if (signing.length > 0 && !signing.some(valid)) {
    warn(`${at}.keys`, 'no key that can sign is valid now: its signing rules fail with KEY_UNAVAILABLE');
  }
  if (rotation.trustedRootPath !== undefined && !fileExists(rotation.trustedRootPath)) {
    warn(
      `${at}.trustedRoot`,
      `trusted root ${rotation.trustedRootPath} does not exist: verification with this witness will fail`,
    );
  }
}
