/** The `signingRules[]` section: what is signed, by which witness, how. */
import { validateGlob } from '../core/glob';
import { canonicalHost, isRepository } from '../core/reference';
import { isEcrHost } from './hosts';
import { readSignedIdentity } from './policies';
import {
  ALGORITHM_ALIASES,
  type RegistryConfig,
  type ScanCondition,
  type Severity,
  type SigningConditions,
  type SigningRule,
} from './types';
import { checkName, didYouMean, Issues, ObjectReader, readString, type Check } from './validate';
import { resolveWitness, type WitnessIndex } from './witnesses';
import type { RegistryRead } from './registries';

const RULE_KEYS = [
  'name',
  'namespaces',
  'repositories',
  'registries',
  'witness',
  'algorithm',
  'signatureType',
  'trigger',
  'enabled',
  'recursive',
  'bundle',
  'annotations',
  'conditions',
];

const CONDITION_KEYS = ['pushedBy', 'scan', 'signedBy', 'signedIdentity'];
const SCAN_KEYS = ['maxSeverity', 'ignoreUnfixed', 'waitSeconds'];
const SEVERITIES: readonly Severity[] = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
/** How long a push waits for its scan by default: scanners finish in minutes, an hour is generous. */
export const DEFAULT_SCAN_WAIT_SECONDS = 3600;

const checkRegistryNamespace: Check<string> = (ns) => {
  if (ns.includes('/') || /[*?]/.test(ns)) {
    return `"${ns}" is not a registry namespace (one path segment, no wildcards); use repositories for globs`;
  }
  return isRepository(ns)
    ? undefined
    : `"${ns}" is not a registry namespace (lowercase letters, digits and separators . _ -)`;
};

function checkRepositoryGlob(hosts: readonly string[]): Check<string> {
  return (glob) => {
    const problem = validateGlob(glob);
    if (problem !== undefined) return problem;
    const first = glob.split('/', 1)[0] ?? '';
    if (first.includes(':') || hosts.includes(first) || isEcrHost(first) || first === 'localhost') {
      return `"${glob}" starts with a registry host: repositories match repository names without the host (limit hosts with registries)`;
    }
    if (/[A-Z]/.test(glob))
      return `"${glob}" has uppercase letters; repository names are lowercase, so it can never match`;
    return undefined;
  };
}

/** A rule as read, with where it was in the document. */
export interface RuleRead {
  readonly name: string;
  readonly path: string;
  readonly rule: SigningRule;
}

const ALGORITHM_NAMES = Object.keys(ALGORITHM_ALIASES);

/** Reads one `signingRules[]` entry. */
export function readSigningRule(
  value: unknown,
  at: string,
  registries: readonly RegistryRead[],
  witnesses: WitnessIndex,
  issues: Issues,
): RuleRead | undefined {
  const r = ObjectReader.of(issues, at, value, RULE_KEYS);
  if (r === undefined) return undefined;
  const hosts = registries.map((reg) => reg.config.host);
  // name: unique; written into signature annotations and used by manual signing.
  const name = r.requiredString('name', checkName);
  // namespaces: registry namespaces (first path segment of a repository) the rule signs.
  const namespaces = r.stringList('namespaces', { check: checkRegistryNamespace }) ?? [];
  // repositories: repository globs (`*` within a segment, `**` across) the rule signs.
  const repositories = r.stringList('repositories', { check: checkRepositoryGlob(hosts) }) ?? [];
  const listed = (key: string): boolean => {
    const raw = r.get(key);
    return Array.isArray(raw) && raw.length > 0;
  };
  if (!listed('namespaces') && !listed('repositories')) {
    issues.add(at, 'needs a non-empty namespaces or repositories list (or both) to say what it signs');
  }
  // registries: configured registry hosts the rule covers; empty = every configured registry.
  // Signing never reaches a host outside registries[]: an event naming one is ignored.
  const ruleRegistries = (
    r.stringList('registries', {
      check: (host) =>
        hosts.includes(canonicalHost(host))
          ? undefined
          : `"${host}" is not a configured registry: add it to registries[] first${didYouMean(host, hosts)}`,
    }) ?? []
  ).map(canonicalHost);
  // witness: the witness that signs; must hold a signing key (file:// or awskms://).
  const witness = r.requiredString('witness', (w) => {
    if (!witnesses.declared.has(w)) return undefined; // reported below with a suggestion
    const key = witnesses.declared.get(w);
    if (key === undefined) return undefined; // the witness itself is invalid, reported there
    switch (key.$case) {
      case 'file':
      case 'kms':
        return undefined;
      case 'publicKeyFile':
      case 'publicKeyPem':
      case 'certificate':
      case 'keyless':
        return `witness "${w}" is verify-only (${key.$case}): a signing rule needs a witness with a key (file:// or awskms://)`;
    }
  });
  const resolved =
    witness === undefined ? undefined : resolveWitness(witness, r.at('witness'), witnesses, issues);
  // algorithm: RSASSA_PSS_SHA_256 | RSASSA_PKCS1_V1_5_SHA_256 | ECDSA_SHA_256 | ECDSA_SHA_384 (or ACR names).
  const algorithmName = r.requiredString('algorithm', (a) =>
    ALGORITHM_NAMES.includes(a)
      ? undefined
      : `"${a}" is not a signing algorithm: use RSA_PKCS1_SHA_256 or RSA_PSS_SHA_256 for RSA keys, ` +
        `ECDSA_SHA_256 or ECDSA_SHA_384 for EC keys (the KMS names RSASSA_PKCS1_V1_5_SHA_256 and ` +
        `RSASSA_PSS_SHA_256 work too)${didYouMean(a, ALGORITHM_NAMES, 2)}`,
  );
  // signatureType: `default` signs digest and tag, `simple` the digest only.
  const signatureType = r.oneOf('signatureType', ['default', 'simple'], 'default');
  // trigger: `automatic` signs on push, `manual` only when asked.
  const trigger = r.oneOf('trigger', ['automatic', 'manual'], 'automatic');
  // enabled: rules are on unless disabled (as in ACR).
  const enabled = r.bool('enabled', true);
  // recursive: for image indexes, also sign every child manifest.
  const recursive = r.bool('recursive', false);
  // bundle: also publish a Sigstore bundle (v0.3) referrer.
  const bundle = r.bool('bundle', false);
  // annotations: extra string annotations written into the payload.
  const annotations = r.stringMap('annotations');
  // conditions: what must hold before the rule signs (pusher, scan result, another witness's signature).
  const covered = registries
    .map((reg) => reg.config)
    .filter((reg) => ruleRegistries.length === 0 || ruleRegistries.includes(reg.host));
  const conditions = readConditions(r, covered, witnesses, resolved, issues);
  if (name === undefined || resolved === undefined || algorithmName === undefined) return undefined;
  if (conditions === null) return undefined;
  const algorithm = ALGORITHM_ALIASES[algorithmName];
  if (algorithm === undefined) return undefined;
  return {
    name,
    path: at,
    rule: {
      name,
      namespaces,
      repositories,
      registries: ruleRegistries,
      witness: resolved,
      algorithm,
      signatureType,
      trigger,
      enabled,
      recursive,
      bundle,
      annotations,
      ...(conditions !== undefined ? { conditions } : {}),
    },
  };
}

/**
 * Reads a rule's `conditions`: undefined when there are none, null when they are invalid (issues
 * recorded). A condition the covered registries cannot feed is an error, not a silent skip: a
 * scan on a registry without a scanner would otherwise never sign, or (worse) be read as passed.
 */
function readConditions(
  r: ObjectReader,
  covered: readonly RegistryConfig[],
  witnesses: WitnessIndex,
  ruleWitness: string | undefined,
  issues: Issues,
): SigningConditions | undefined | null {
  const value = r.get('conditions');
  if (value === undefined) return undefined;
  const at = r.at('conditions');
  const c = ObjectReader.of(issues, at, value, CONDITION_KEYS);
  if (c === undefined) return null;
  const before = issues.count;
  // pushedBy: globs over the pusher's identity (`*` within a `/`-separated segment, `**` across).
  const pushedBy = c.stringList('pushedBy', { nonEmpty: true, check: validateGlob });
  // scan: a scan result must exist and find nothing above maxSeverity.
  const scan = readScan(c, issues);
  // signedBy: witnesses of which one must already have signed the digest (countersigning).
  const signedBy = c.list(
    'signedBy',
    (item, itemAt) => {
      const name = readString(issues, itemAt, item, true);
      if (name === undefined) return undefined;
      const witness = resolveWitness(name, itemAt, witnesses, issues);
      if (witness === undefined) return undefined;
      if (witness === ruleWitness) {
        issues.add(itemAt, `"${witness}" is the rule's own witness: a rule cannot countersign itself`);
        return undefined;
      }
      return witness;
    },
    { nonEmpty: true },
  );
  // signedIdentity: which repository the signedBy signature must name (default matchRepository).
  const signedIdentity = readSignedIdentity(c.get('signedIdentity'), c.at('signedIdentity'), issues);
  if (c.has('signedIdentity') && !c.has('signedBy')) {
    c.issue(
      'signedIdentity',
      'goes with signedBy: it says which repository the countersigned signature names',
    );
  }
  for (const registry of covered) {
    const where = `registry ${registry.host} (kind ${registry.kind})`;
    if (pushedBy !== undefined && registry.embedded) {
      c.issue(
        'pushedBy',
        `${where} is the embedded registry, which runs without authentication: its events name no pusher (limit the rule with registries)`,
      );
    }
    if (scan !== undefined && registry.kind === 'distribution') {
      c.issue(
        'scan',
        `${where} has no scanner: set its kind to harbor or ecr if it is one, or limit the rule with registries`,
      );
    }
    if (scan !== undefined && pushedBy !== undefined && registry.kind === 'ecr') {
      c.issue(
        'scan',
        `${where}: ECR scan events carry no pusher and CloudTrail's PutImage carries no scan, so one rule cannot require both there; use two rules (one signing with pushedBy, one countersigning with scan and signedBy)`,
      );
    }
  }
  if (issues.count > before || signedIdentity === undefined) return null;
  if (pushedBy === undefined && scan === undefined && signedBy === undefined) return undefined;
  return { pushedBy, scan, signedBy, signedIdentity };
}

function readScan(c: ObjectReader, issues: Issues): ScanCondition | undefined {
  const value = c.get('scan');
  if (value === undefined) return undefined;
  const s = ObjectReader.of(issues, c.at('scan'), value, SCAN_KEYS);
  if (s === undefined) return undefined;
  // maxSeverity: the highest severity a finding may have; required (there is no safe default).
  const maxSeverity = s.requiredOneOf('maxSeverity', SEVERITIES);
  // ignoreUnfixed: findings without a fix do not count (where the scanner reports fixability).
  const ignoreUnfixed = s.bool('ignoreUnfixed', false);
  // waitSeconds: how long a push waits for its scan before it is reported SCAN_TIMEOUT.
  const waitSeconds = s.int('waitSeconds', DEFAULT_SCAN_WAIT_SECONDS, { min: 1, max: 7 * 86_400 });
  if (maxSeverity === undefined) return undefined;
  return { maxSeverity, ignoreUnfixed, waitSeconds };
}
