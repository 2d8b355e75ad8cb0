/**
 * What a Signet deployment needs, decided from the configuration file before any resource is
 * created: which repositories it covers, which KMS keys the sign and verify functions may use,
 * and what the configuration asks that Lambda cannot do. Pure (reads the one file, no AWS), so
 * `cdk synth` fails early with every problem listed, in the configuration's own words.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { kmsSigningOnly } from '../lib/config/kms-only';
import { parseConfig } from '../lib/config/load';
import type { KeyReference, SignetConfig } from '../lib/config/types';
import { ConfigError, describeError, type FieldIssue } from '../lib/core/errors';
import { isRepository } from '../lib/core/reference';

/** KMS key specs a witness key may be created with (asymmetric, SIGN_VERIFY). */
export type WitnessKeySpec = 'RSA_2048' | 'RSA_3072' | 'RSA_4096' | 'ECC_NIST_P256' | 'ECC_NIST_P384';

export const WITNESS_KEY_SPECS: readonly WitnessKeySpec[] = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
];

/** How the stack provides one witness's KMS key: create it, or use one that exists. */
export type WitnessKeyProps =
  /**
   * Create an asymmetric SIGN_VERIFY key of this spec. When the configuration names the key by
   * alias (`awskms:///alias/signet-release`), the created key gets that alias, so the
   * configuration and the stack agree without copying ARNs around.
   */
  | { readonly keySpec: WitnessKeySpec }
  /** Use an existing key (created elsewhere, or in another account); the stack only grants on it. */
  | { readonly existingKeyArn: string };

/** Where the deployment gets a witness's key. A tagged union: switch on `$case`. */
export type KeySource =
  | { readonly $case: 'create'; readonly spec: WitnessKeySpec; readonly alias: string | undefined }
  | { readonly $case: 'arn'; readonly arn: string }
  /** A bare key id: its ARN is in the stack's own account and region. */
  | { readonly $case: 'keyId'; readonly keyId: string };

/** The repositories a deployment signs and reads: exact names and registry namespaces. */
export interface RepositoryCoverage {
  readonly repositories: readonly string[];
  readonly namespaces: readonly string[];
}

/** A synth-time warning: the deployment works, but not everything in the file runs in Lambda. */
export interface PlanWarning {
  /** Acknowledgeable id (`signet:...`). */
  readonly id: string;
  readonly message: string;
}

/**
 * The signing conditions the Lambda-run rules use, each with the rules that use it: each needs
 * events of its own on the default bus (CloudTrail's `PutImage` for `pushedBy`; `ECR Image Scan`
 * and `Inspector2 Scan` for `scan`), so the construct adds their EventBridge rules only when
 * some rule here needs them.
 */
export interface ConditionsInUse {
  readonly pushedBy: readonly string[];
  readonly scan: readonly string[];
  readonly signedBy: readonly string[];
}

/** Everything the construct builds from. */
export interface DeploymentPlan {
  /** The configuration file's text, verbatim (it goes into the SSM parameter). */
  readonly configText: string;
  readonly config: SignetConfig;
  readonly coverage: RepositoryCoverage;
  /** Every KMS witness the deployment uses, with where its key comes from. */
  readonly keys: ReadonlyMap<string, KeySource>;
  /** Witnesses whose keys the sign function may sign with (enabled automatic rules). */
  readonly signingWitnesses: readonly string[];
  /** Witnesses whose signatures the sign function checks before countersigning (`signedBy`). */
  readonly countersignWitnesses: readonly string[];
  /** Conditions of the rules the sign function runs, by condition (rule names). */
  readonly conditions: ConditionsInUse;
  /** Witnesses whose public keys the verify function may read (enabled policies). */
  readonly verifyWitnesses: readonly string[];
  readonly warnings: readonly PlanWarning[];
}

/** What `planDeployment` reads. */
export interface PlanInput {
  readonly configFile: string;
  readonly keys?: Readonly<Record<string, WitnessKeyProps>>;
  readonly repositories?: readonly string[];
  readonly registryNamespaces?: readonly string[];
  /** Environment for `passwordEnv` / `bearerTokenEnv` while parsing; `process.env` if absent. */
  readonly env?: NodeJS.ProcessEnv;
  /** True for values CDK has not resolved yet (tokens): they are not checked. */
  readonly isToken?: (value: string) => boolean;
}

/** SSM String parameters hold at most 4 KB (Standard tier) or 8 KB (Advanced tier). */
export const STANDARD_PARAMETER_BYTES = 4096;
export const ADVANCED_PARAMETER_BYTES = 8192;

const KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-zA-Z-]+$/;
const NAMESPACE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/**
 * Reads and checks the configuration for an AWS deployment. Throws the configuration's own
 * ConfigError when the file is invalid, and one ConfigError listing every AWS-specific problem
 * (by `keys.<witness>`, `repositories[i]`... path) otherwise.
 */
export function planDeployment(input: PlanInput): DeploymentPlan {
  const source = path.resolve(input.configFile);
  let configText: string;
  try {
    configText = readFileSync(source, 'utf8');
  } catch (error) {
    throw new ConfigError(
      'CONFIG_UNREADABLE',
      `cannot read the configuration file ${source}: ${describeError(error)}`,
      {
        cause: error,
      },
    );
  }
  const config = parseConfig(configText, {
    source,
    baseDir: path.dirname(source),
    env: input.env ?? process.env,
  });
  const isToken = input.isToken ?? (() => false);
  const issues: FieldIssue[] = [];
  const warnings: PlanWarning[] = [];

  const bytes = Buffer.byteLength(configText, 'utf8');
  if (bytes > ADVANCED_PARAMETER_BYTES) {
    issues.push({
      path: 'configFile',
      message: `${source} is ${bytes} bytes; an SSM parameter holds at most ${ADVANCED_PARAMETER_BYTES} (remove comments, or split policies out)`,
    });
  }

  const coverage = checkCoverage(input, isToken, issues);
  const witnesses = new Map(config.witnesses.map((w) => [w.name, w]));

  // The rules the sign Lambda runs on push: the same filter it applies (lib/config/kms-only.ts).
  const onPush = config.signingRules.filter((rule) => rule.enabled && rule.trigger === 'automatic');
  const { config: lambdaConfig, unusable } = kmsSigningOnly({ ...config, signingRules: onPush });
  for (const rule of unusable) {
    warnings.push({
      id: 'signet:local-key-rule',
      message: `signing rule "${rule.rule}": ${rule.reason}: this rule runs only under \`signet serve\` (give the witness an awskms:// key and a \`keys\` entry to sign in AWS)`,
    });
  }
  const signingWitnesses = unique(lambdaConfig.signingRules.map((rule) => rule.witness));
  const ruleNames = (has: (rule: (typeof lambdaConfig.signingRules)[number]) => boolean) =>
    lambdaConfig.signingRules.filter(has).map((rule) => rule.name);
  const conditions: ConditionsInUse = {
    pushedBy: ruleNames((rule) => rule.conditions?.pushedBy !== undefined),
    scan: ruleNames((rule) => rule.conditions?.scan !== undefined),
    signedBy: ruleNames((rule) => rule.conditions?.signedBy !== undefined),
  };
  // Public keys the countersigning rules verify with: KMS ones need a grant like verify's.
  const countersignWitnesses = unique(
    lambdaConfig.signingRules.flatMap((rule) => rule.conditions?.signedBy ?? []),
  ).filter((name) => witnesses.get(name)?.key.$case === 'kms');
  for (const rule of lambdaConfig.signingRules) {
    for (const name of rule.conditions?.signedBy ?? []) {
      const key = witnesses.get(name)?.key;
      if (key?.$case === 'file' || key?.$case === 'publicKeyFile' || key?.$case === 'certificate') {
        warnings.push({
          id: 'signet:local-key-witness',
          message: `signing rule "${rule.name}": signedBy witness "${name}" is a key file (${fileOf(key)}), which the sign Lambda cannot read, so the rule never countersigns there; give the witness an awskms:// key or an inline publicKey PEM`,
        });
      }
    }
  }

  const verifyWitnesses: string[] = [];
  for (const policy of config.policies.filter((p) => p.enabled)) {
    for (const name of unique(policy.attestors.flatMap((set) => set.witnesses))) {
      const key = witnesses.get(name)?.key;
      if (key === undefined) continue;
      if (key.$case === 'kms') {
        if (!verifyWitnesses.includes(name)) verifyWitnesses.push(name);
      } else if (key.$case === 'file' || key.$case === 'publicKeyFile' || key.$case === 'certificate') {
        warnings.push({
          id: 'signet:local-key-witness',
          message: `policy "${policy.name}": witness "${name}" is a key file (${fileOf(key)}), which the verify Lambda cannot read; give the witness an awskms:// key or an inline publicKey PEM`,
        });
      } else if (key.$case === 'keyless' && key.trustedRootPath !== undefined) {
        warnings.push({
          id: 'signet:local-key-witness',
          message: `policy "${policy.name}": keyless witness "${name}" reads its trusted root from a file (${fileOf(key)}), which the verify Lambda cannot read; only the built-in public-good root works there`,
        });
      }
    }
  }

  const keys = new Map<string, KeySource>();
  const needed = unique([...signingWitnesses, ...verifyWitnesses, ...countersignWitnesses]);
  for (const [name, props] of Object.entries(input.keys ?? {})) {
    const at = `keys.${name}`;
    const witness = witnesses.get(name);
    if (witness === undefined) {
      issues.push({ path: at, message: `the configuration has no witness named "${name}"` });
      continue;
    }
    if (witness.key.$case !== 'kms') {
      issues.push({
        path: at,
        message: `witness "${name}" has a ${witness.key.$case} key; a keys entry is for awskms:// witnesses`,
      });
      continue;
    }
    const keyId = witness.key.keyId;
    if ('keySpec' in props) {
      if (!WITNESS_KEY_SPECS.includes(props.keySpec)) {
        issues.push({ path: `${at}.keySpec`, message: `must be one of ${WITNESS_KEY_SPECS.join(', ')}` });
        continue;
      }
      const alias = aliasName(keyId);
      if (alias === undefined) {
        issues.push({
          path: at,
          message: `witness "${name}" names the key ${keyId}; a created key cannot have a chosen id: name an alias in the configuration (awskms:///alias/<name>) or use existingKeyArn`,
        });
        continue;
      }
      keys.set(name, { $case: 'create', spec: props.keySpec, alias });
    } else {
      const arn = props.existingKeyArn;
      if (!isToken(arn) && !KEY_ARN.test(arn)) {
        issues.push({
          path: `${at}.existingKeyArn`,
          message: `"${arn}" is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>)`,
        });
        continue;
      }
      if (keyId.startsWith('arn:') && keyId.includes(':key/') && !isToken(arn) && keyId !== arn) {
        issues.push({
          path: `${at}.existingKeyArn`,
          message: `differs from the configuration's key ${keyId}`,
        });
        continue;
      }
      keys.set(name, { $case: 'arn', arn });
    }
  }
  for (const name of needed) {
    if (keys.has(name)) continue;
    const key = witnesses.get(name)?.key as Extract<KeyReference, { $case: 'kms' }>;
    if (KEY_ARN.test(key.keyId)) keys.set(name, { $case: 'arn', arn: key.keyId });
    else if (!key.keyId.startsWith('arn:') && aliasName(key.keyId) === undefined)
      keys.set(name, { $case: 'keyId', keyId: key.keyId });
    else
      issues.push({
        path: `keys.${name}`,
        message: `witness "${name}" names its key by alias (${key.keyId}), which IAM cannot grant on: add a keys entry (keySpec to create the key behind the alias, or existingKeyArn)`,
      });
    if (key.endpoint !== undefined) {
      warnings.push({
        id: 'signet:kms-endpoint',
        message: `witness "${name}" names the KMS endpoint ${key.endpoint}; the Lambda functions will call it instead of AWS KMS`,
      });
    }
  }

  for (const [name, source] of keys) {
    if (source.$case === 'create' && !needed.includes(name)) {
      warnings.push({
        id: 'signet:unused-key',
        message: `the key of witness "${name}" is created, but no enabled automatic signing rule or enabled policy uses it, so no function is allowed to use it`,
      });
    }
  }

  if (config.server.bearerToken !== undefined || config.server.secretPath !== undefined) {
    warnings.push({
      id: 'signet:server-auth',
      message:
        "server.bearerToken and server.secretPath apply to `signet serve`; the verify Lambda takes its token from the stack's Secrets Manager secret",
    });
  }

  if (issues.length > 0) {
    const heading = `${source} cannot be deployed to AWS (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}):`;
    throw new ConfigError(
      'CONFIG_INVALID',
      [heading, ...issues.map((i) => `  ${i.path}: ${i.message}`)].join('\n'),
      {
        issues,
      },
    );
  }
  return {
    configText,
    config,
    coverage,
    keys,
    signingWitnesses,
    countersignWitnesses,
    conditions,
    verifyWitnesses,
    warnings,
  };
}

function checkCoverage(
  input: PlanInput,
  isToken: (value: string) => boolean,
  issues: FieldIssue[],
): RepositoryCoverage {
  const repositories = [...(input.repositories ?? [])];
  const namespaces = [...(input.registryNamespaces ?? [])];
  if (repositories.length === 0 && namespaces.length === 0) {
    issues.push({
      path: 'repositories',
      message:
        'give the ECR repositories (repositories) or registry namespaces (registryNamespaces) the deployment signs',
    });
  }
  repositories.forEach((name, i) => {
    if (!isToken(name) && !isRepository(name)) {
      issues.push({ path: `repositories[${i}]`, message: `"${name}" is not an ECR repository name` });
    }
  });
  namespaces.forEach((name, i) => {
    if (!isToken(name) && !NAMESPACE.test(name)) {
      issues.push({
        path: `registryNamespaces[${i}]`,
        message: `"${name}" is not a registry namespace (the first path segment of a repository, e.g. "team-a")`,
      });
    }
  });
  return { repositories: unique(repositories), namespaces: unique(namespaces) };
}

/** `alias/name` for alias names and alias ARNs; undefined for key ids and key ARNs. */
function aliasName(keyId: string): string | undefined {
  if (keyId.startsWith('alias/')) return keyId;
  const at = keyId.indexOf(':alias/');
  return keyId.startsWith('arn:') && at >= 0 ? keyId.slice(at + 1) : undefined;
}

function fileOf(key: KeyReference): string {
  switch (key.$case) {
    case 'file':
    case 'publicKeyFile':
      return key.path;
    case 'certificate':
      return key.certificatePath ?? key.rootPaths[0] ?? key.$case;
    case 'keyless':
      return key.trustedRootPath ?? key.$case;
    case 'kms':
    case 'publicKeyPem':
      return key.$case;
  }
}

const unique = <T>(values: readonly T[]): T[] => [...new Set(values)];

/**
 * The repositories every enabled automatic signing rule of a configuration covers, for deployments that
 * do not list them: each namespace, each repository glob without wildcards as a name, and a
 * glob like `team-b/*` as its namespace. Throws when a rule covers every repository (`**`),
 * because the stack's ECR permissions need a bound.
 */
export function coverageOfRules(config: SignetConfig): RepositoryCoverage {
  const repositories: string[] = [];
  const namespaces: string[] = [];
  const unbounded: string[] = [];
  // Manual rules run from the CLI, not on push: pushes they cover need not reach the function.
  for (const rule of config.signingRules.filter((r) => r.enabled && r.trigger === 'automatic')) {
    namespaces.push(...rule.namespaces);
    for (const glob of rule.repositories) {
      if (!glob.includes('*')) repositories.push(glob);
      else {
        const namespace = glob.split('/', 1)[0] ?? '';
        if (glob.includes('/') && !namespace.includes('*')) namespaces.push(namespace);
        else unbounded.push(`${rule.name} (${glob})`);
      }
    }
    if (rule.namespaces.length === 0 && rule.repositories.length === 0) unbounded.push(rule.name);
  }
  if (unbounded.length > 0) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `signing rules ${unbounded.join(', ')} cover every repository; list the repositories or registry namespaces to deploy for (context signet:repositories / signet:registryNamespaces)`,
    );
  }
  return { repositories: unique(repositories), namespaces: unique(namespaces) };
}
