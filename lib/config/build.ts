/**
 * Turns an untyped configuration document (parsed YAML or JSON) into a fully-specified
 * `SignetConfig`: every field checked, every default filled, every cross-reference resolved.
 * Problems are recorded in `issues`; the caller throws when there are any. Each section has its
 * own reader file.
 */
import { readPolicy } from './policies';
import { checkRegistries, readRegistry } from './registries';
import { readSigningRule } from './rules';
import { checkRevocations, readRevocation } from './revocations';
import { readAdmission, readJournal, readLedger, readReverify, readServer } from './settings';
import type { SignetConfig } from './types';
import { Issues, ObjectReader } from './validate';
import { indexWitnesses, readWitness } from './witnesses';

export { DEFAULTS } from './defaults';

/** Where the document came from and what it may refer to. */
export interface BuildContext {
  /** Absolute path of the file, if any. */
  readonly source: string | undefined;
  /** Absolute directory that relative paths resolve against. */
  readonly baseDir: string;
  /** Environment for `passwordEnv`, `bearerTokenEnv` and the default AWS region. */
  readonly env: NodeJS.ProcessEnv;
}

const TOP_LEVEL_KEYS = [
  'registries',
  'witnesses',
  'signingRules',
  'policies',
  'admission',
  'server',
  'journal',
  'reverify',
  'revocations',
  'ledger',
];

/** Reads a whole configuration document; see the field comments in each reader. */
export function buildConfig(document: unknown, context: BuildContext, issues: Issues): SignetConfig {
  const empty: SignetConfig = {
    source: context.source,
    baseDir: context.baseDir,
    registries: [],
    witnesses: [],
    signingRules: [],
    policies: [],
    admission: readAdmission(undefined, issues),
    server: readServer(undefined, context, issues),
    journal: readJournal(undefined, context, issues),
    reverify: undefined,
    revocations: [],
    ledger: readLedger(undefined, issues),
  };
  if (document === undefined || document === null) {
    issues.add(
      '',
      'the configuration is empty: it needs at least registries, witnesses, signing rules or policies',
    );
    return empty;
  }
  const root = ObjectReader.of(issues, '', document, TOP_LEVEL_KEYS);
  if (root === undefined) return empty;

  const registries = root.list('registries', (value, at) => readRegistry(value, at, context, issues)) ?? [];
  checkRegistries(registries, issues);
  const witnessReads = root.list('witnesses', (value, at) => readWitness(value, at, context, issues)) ?? [];
  const witnesses = indexWitnesses(witnessReads, issues);
  const signingRules =
    root.list('signingRules', (value, at) => readSigningRule(value, at, registries, witnesses, issues)) ?? [];
  checkUniqueNames(signingRules, 'signingRules', issues);
  const policies = root.list('policies', (value, at) => readPolicy(value, at, witnesses, issues)) ?? [];
  checkUniqueNames(policies, 'policies', issues);
  const revocations =
    root.list('revocations', (value, at) => {
      const revocation = readRevocation(value, at, issues);
      return revocation === undefined ? undefined : { revocation, path: at };
    }) ?? [];
  checkRevocations(revocations, issues);

  return {
    ...empty,
    registries: registries.map((r) => r.config),
    witnesses: witnessReads.flatMap((w) => (w.witness === undefined ? [] : [w.witness])),
    signingRules: signingRules.map((r) => r.rule),
    policies: policies.map((p) => p.policy),
    admission: readAdmission(root.get('admission'), issues, root.at('admission')),
    server: readServer(root.get('server'), context, issues, root.at('server')),
    journal: readJournal(root.get('journal'), context, issues, root.at('journal')),
    reverify: readReverify(root.get('reverify'), issues, root.at('reverify')),
    revocations: revocations.map((r) => r.revocation),
    ledger: readLedger(root.get('ledger'), issues, root.at('ledger')),
  };
}

function checkUniqueNames(
  reads: readonly { readonly name: string; readonly path: string }[],
  kind: string,
  issues: Issues,
): void {
  const seen = new Map<string, string>();
  for (const { name, path: at } of reads) {
    const first = seen.get(name);
    if (first !== undefined) issues.add(`${at}.name`, `duplicate name "${name}" in ${kind} (also ${first})`);
    else seen.set(name, at);
  }
}
