/**
 * Turns an untyped configuration document (parsed YAML or JSON) into a fully-specified
 * `SignetConfig`: every field checked, every default filled, every cross-reference resolved.
 * Problems are recorded in `issues`; the caller throws when there are any.
 */
import * as path from 'node:path';
import { validateGlob } from '../core/glob';
import { isRepository } from '../core/reference';
import { checkRegistryHost, ecrRegionOf, isAwsRegion, isEcrHost, isLoopbackHost } from './hosts';
import { parseFileUri, parsePublicKey, parseSigningKeyUri, envRegion, type Parsed } from './keyref';
import {
  ALGORITHM_ALIASES,
  type AdmissionSettings,
  type AttestorSet,
  type KeyReference,
  type Policy,
  type RegistryAuth,
  type RegistryConfig,
  type ServerSettings,
  type SignetConfig,
  type SigningRule,
  type Witness,
} from './types';
import { didYouMean, Issues, ObjectReader, readString, type Check } from './validate';

/** Where the document came from and what it may refer to. */
export interface BuildContext {
  /** Absolute path of the file, if any. */
  readonly source: string | undefined;
  /** Absolute directory that relative paths resolve against. */
  readonly baseDir: string;
  /** Environment for `passwordEnv`, `bearerTokenEnv` and the default AWS region. */
  readonly env: NodeJS.ProcessEnv;
}

/** Defaults, in one place (the README's reference lists them). */
export const DEFAULTS = {
  admission: {
    noMatchingPolicy: 'deny',
    cacheTtlSeconds: 300,
    cacheMaxEntries: 10_000,
  },
  server: {
    port: 8080,
    host: '127.0.0.1',
    maxBodyBytes: 3 * 1024 * 1024,
  },
} as const;

const TOP_LEVEL_KEYS = ['registries', 'witnesses', 'signingRules', 'policies', 'admission', 'server'];

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

  return {
    ...empty,
    registries: registries.map((r) => r.config),
    witnesses: witnessReads.flatMap((w) => (w.witness === undefined ? [] : [w.witness])),
    signingRules: signingRules.map((r) => r.rule),
    policies: policies.map((p) => p.policy),
    admission: readAdmission(root.get('admission'), issues, root.at('admission')),
    server: readServer(root.get('server'), context, issues, root.at('server')),
  };
}

// ---------------------------------------------------------------------------------------------
// registries

interface RegistryRead {
  readonly config: RegistryConfig;
  readonly path: string;
}

const REGISTRY_KEYS = ['host', 'embedded', 'insecure', 'auth', 'dataDir'];

function readRegistry(
  value: unknown,
  at: string,
  context: BuildContext,
  issues: Issues,
): RegistryRead | undefined {
  const r = ObjectReader.of(issues, at, value, REGISTRY_KEYS);
  if (r === undefined) return undefined;
  // host: `host[:port]` as it appears in image references; required and unique.
  const host = r.requiredString('host', checkRegistryHost);
  // embedded: Signet runs the distribution registry on this (loopback) host itself.
  const embedded = r.bool('embedded', false);
  // insecure: talk plain HTTP to this registry (local registries only).
  const insecure = r.bool('insecure', false);
  // auth: absent → anonymous; {username, password|passwordEnv} → basic; `ecr` or {ecr: {region, endpoint}}.
  const auth = readRegistryAuth(r, host, context);
  // dataDir: where the embedded registry stores blobs; relative to the config file's directory.
  const dataDir = r.optionalString('dataDir');
  if (host === undefined || auth === undefined) return undefined;
  return {
    path: at,
    config: {
      host,
      embedded,
      insecure,
      auth,
      dataDir: path.resolve(
        context.baseDir,
        dataDir ?? path.join('.signet', 'registry', host.replace(/[^A-Za-z0-9._-]/g, '_')),
      ),
    },
  };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads a secret given either inline (`key`) or by environment variable name (`envKey`). */
function readSecret(
  r: ObjectReader,
  key: string,
  envKey: string,
  env: NodeJS.ProcessEnv,
): string | undefined {
  if (r.has(key) && r.has(envKey)) {
    r.issue(envKey, `give either ${key} or ${envKey}, not both`);
    return undefined;
  }
  if (r.has(key)) return r.requiredString(key);
  const name = r.optionalString(envKey, (n) =>
    ENV_NAME.test(n) ? undefined : `"${n}" is not an environment variable name`,
  );
  if (name === undefined) return undefined;
  const value = env[name];
  if (value === undefined || value === '') {
    r.issue(envKey, `environment variable ${name} is not set`);
    return undefined;
  }
  return value;
}

function checkEndpoint(value: string): string | undefined {
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http:// or https:// URL';
    if (url.pathname !== '/' || url.search !== '' || url.hash !== '') return 'must be a URL without a path';
    return undefined;
  } catch {
    return `must be a URL such as https://api.ecr.us-east-1.amazonaws.com, got ${JSON.stringify(value)}`;
  }
}

function readRegistryAuth(
  r: ObjectReader,
  host: string | undefined,
  context: BuildContext,
): RegistryAuth | undefined {
  const value = r.get('auth');
  const at = r.at('auth');
  const hostRegion = host === undefined ? undefined : ecrRegionOf(host);
  const ecr = (region: string | undefined, endpoint: string | undefined): RegistryAuth => ({
    $case: 'ecr',
    // ECR tokens are per region: the host names it; otherwise the AWS environment does.
    region: region ?? hostRegion ?? envRegion(context.env),
    endpoint,
  });
  if (value === undefined || value === 'anonymous') return { $case: 'anonymous' };
  if (value === 'ecr') return ecr(undefined, undefined);
  if (typeof value === 'string') {
    r.issue(
      'auth',
      `must be "ecr", "anonymous" or a mapping {username, password | passwordEnv}${didYouMean(value, ['ecr', 'anonymous'])}`,
    );
    return undefined;
  }
  const a = ObjectReader.of(r.issues, at, value, ['username', 'password', 'passwordEnv', 'ecr']);
  if (a === undefined) return undefined;
  if (Object.prototype.hasOwnProperty.call(a.value, 'ecr')) {
    if (a.has('username') || a.has('password') || a.has('passwordEnv')) {
      a.issue('ecr', 'ecr authentication takes no username or password');
      return undefined;
    }
    const raw = a.get('ecr');
    if (raw === undefined) return ecr(undefined, undefined);
    const e = ObjectReader.of(r.issues, a.at('ecr'), raw, ['region', 'endpoint']);
    if (e === undefined) return undefined;
    // region: the ECR region; defaults to the host's region, then AWS_REGION / AWS_DEFAULT_REGION.
    const region = e.optionalString('region', (v) => {
      if (!isAwsRegion(v)) return `"${v}" is not an AWS region`;
      if (hostRegion !== undefined && v !== hostRegion)
        return `the host ${host} is in ${hostRegion}, not ${v}`;
      return undefined;
    });
    // endpoint: ECR API endpoint override (VPC endpoints, LocalStack).
    const endpoint = e.optionalString('endpoint', checkEndpoint);
    return ecr(region, endpoint?.replace(/\/$/, ''));
  }
  const username = a.requiredString('username');
  if (!a.has('password') && !a.has('passwordEnv')) {
    r.issues.add(at, 'needs password or passwordEnv next to username');
    return undefined;
  }
  const password = readSecret(a, 'password', 'passwordEnv', context.env);
  if (username === undefined || password === undefined) return undefined;
  return { $case: 'basic', username, password };
}

function checkRegistries(registries: readonly RegistryRead[], issues: Issues): void {
  const seen = new Map<string, string>();
  let embeddedAt: string | undefined;
  for (const { config, path: at } of registries) {
    const key = config.host.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) issues.add(`${at}.host`, `duplicate host "${config.host}" (also ${first})`);
    else seen.set(key, at);
    if (!config.embedded) continue;
    if (embeddedAt !== undefined) {
      issues.add(`${at}.embedded`, `only one registry can be embedded (${embeddedAt} already is)`);
    } else {
      embeddedAt = at;
    }
    if (!isLoopbackHost(config.host)) {
      issues.add(
        `${at}.embedded`,
        `the embedded registry must be on a loopback host (127.0.0.1, localhost or [::1]), not ${config.host}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// witnesses

interface WitnessRead {
  readonly name: string | undefined;
  readonly path: string;
  /** Undefined when the witness has problems (already reported). */
  readonly witness: Witness | undefined;
}

/** What later sections need to know about witnesses: declared names and, when valid, their key kind. */
interface WitnessIndex {
  readonly declared: ReadonlyMap<string, KeyReference | undefined>;
}

const WITNESS_NAME = /^[a-z0-9][a-z0-9-_.]*$/;
const WITNESS_KEYS = [
  'name',
  'description',
  'key',
  'publicKey',
  'certificate',
  'certificateChain',
  'keyless',
];
const WITNESS_KEY_KINDS = ['key', 'publicKey', 'certificate', 'keyless'];

const checkWitnessName: Check<string> = (name) =>
  WITNESS_NAME.test(name) && name.length <= 128
    ? undefined
    : `"${name}" is not a witness name: lowercase letters, digits, "-", "_" and "." (starting with a letter or digit), at most 128 characters`;

/** Records the problem of a parsed value at `at`, or returns the value. */
function take<T>(parsed: Parsed<T>, issues: Issues, at: string): T | undefined {
  if (parsed.ok) return parsed.value;
  issues.add(at, parsed.problem);
  return undefined;
}

function readWitness(
  value: unknown,
  at: string,
  context: BuildContext,
  issues: Issues,
): WitnessRead | undefined {
  const w = ObjectReader.of(issues, at, value, WITNESS_KEYS);
  if (w === undefined) return undefined;
  // name: unique; referenced by signing rules and policy attestors.
  const valid = w.requiredString('name', checkWitnessName);
  // An invalid name is still indexed, so references to it do not add "unknown witness" issues.
  const raw = w.get('name');
  const name = valid ?? (typeof raw === 'string' && raw.trim() !== '' ? raw : undefined);
  // description: free text.
  const description = w.optionalString('description');
  const kinds = WITNESS_KEY_KINDS.filter((k) => w.has(k));
  if (kinds.length !== 1) {
    issues.add(
      at,
      kinds.length === 0
        ? 'needs one of key (file:// or awskms://), publicKey, certificate or keyless'
        : `give exactly one of key, publicKey, certificate or keyless, not ${kinds.join(' and ')}`,
    );
    return { name, path: at, witness: undefined };
  }
  if (w.has('certificateChain') && !w.has('certificate')) {
    w.issue('certificateChain', 'only goes with certificate');
  }
  let key: KeyReference | undefined;
  switch (kinds[0]) {
    case 'key': {
      // key: a signing key: file://<PKCS#8 PEM> (relative to the config file) or awskms://[host:port]/<key>.
      const uri = w.requiredString('key');
      if (uri !== undefined)
        key = take(parseSigningKeyUri(uri, context.baseDir, context.env), issues, w.at('key'));
      break;
    }
    case 'publicKey': {
      // publicKey: verify only: file://<PEM SPKI> or an inline PEM public key.
      const pem = w.requiredString('publicKey');
      if (pem !== undefined) key = take(parsePublicKey(pem, context.baseDir), issues, w.at('publicKey'));
      break;
    }
    case 'certificate': {
      // certificate, certificateChain: verify only: file:// PEM certificate and optional chain.
      const cert = w.requiredString('certificate');
      const chain = w.optionalString('certificateChain');
      const certificatePath =
        cert === undefined
          ? undefined
          : take(parseFileUri(cert, context.baseDir), issues, w.at('certificate'));
      const chainPath =
        chain === undefined
          ? undefined
          : take(parseFileUri(chain, context.baseDir), issues, w.at('certificateChain'));
      if (certificatePath !== undefined && (chain === undefined || chainPath !== undefined)) {
        key = { $case: 'certificate', certificatePath, chainPath };
      }
      break;
    }
    case 'keyless': {
      // keyless: verify only: {issuer: OIDC issuer URL, subject: identity in the Fulcio certificate}.
      const k = ObjectReader.of(issues, w.at('keyless'), w.get('keyless'), ['issuer', 'subject']);
      if (k === undefined) break;
      const issuer = k.requiredString('issuer', checkEndpointLike);
      const subject = k.requiredString('subject');
      if (issuer !== undefined && subject !== undefined) key = { $case: 'keyless', issuer, subject };
      break;
    }
  }
  return {
    name,
    path: at,
    witness: valid === undefined || key === undefined ? undefined : { name: valid, key, description },
  };
}

function checkEndpointLike(value: string): string | undefined {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? undefined : 'must be an https:// URL';
  } catch {
    return `must be the OIDC issuer URL, e.g. https://token.actions.githubusercontent.com, got ${JSON.stringify(value)}`;
  }
}

function indexWitnesses(reads: readonly WitnessRead[], issues: Issues): WitnessIndex {
  const declared = new Map<string, KeyReference | undefined>();
  const where = new Map<string, string>();
  for (const read of reads) {
    if (read.name === undefined) continue;
    const first = where.get(read.name);
    if (first !== undefined) {
      issues.add(`${read.path}.name`, `duplicate witness name "${read.name}" (also ${first})`);
      continue;
    }
    where.set(read.name, read.path);
    declared.set(read.name, read.witness?.key);
  }
  return { declared };
}

/** Checks a witness reference; returns the name when it is declared. */
function resolveWitness(
  name: string,
  at: string,
  witnesses: WitnessIndex,
  issues: Issues,
): string | undefined {
  if (witnesses.declared.has(name)) return name;
  const known = [...witnesses.declared.keys()];
  const hint = didYouMean(name, known);
  const list =
    known.length === 0 ? ': no witnesses are configured' : ` (witnesses: ${known.slice(0, 10).join(', ')})`;
  issues.add(at, `unknown witness "${name}"${hint === '' ? list : hint}`);
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// signing rules

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
];

const checkName: Check<string> = (name) =>
  name.length > 128
    ? 'must be at most 128 characters'
    : [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
      ? 'must not contain control characters'
      : undefined;

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

interface RuleRead {
  readonly name: string;
  readonly path: string;
  readonly rule: SigningRule;
}

const ALGORITHM_NAMES = Object.keys(ALGORITHM_ALIASES);

function readSigningRule(
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
  // registries: hosts the rule covers (configured registries or ECR hosts); empty = all.
  const ruleRegistries =
    r.stringList('registries', {
      check: (host) =>
        hosts.includes(host) || isEcrHost(host)
          ? undefined
          : `"${host}" is neither a configured registry nor an ECR host${didYouMean(host, hosts)}`,
    }) ?? [];
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
  if (name === undefined || resolved === undefined || algorithmName === undefined) return undefined;
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
    },
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

// ---------------------------------------------------------------------------------------------
// policies

const POLICY_KEYS = [
  'name',
  'enabled',
  'clusters',
  'namespaces',
  'images',
  'attestors',
  'mode',
  'mutateDigest',
  'failurePolicy',
];

const checkGlob: Check<string> = (glob) => validateGlob(glob);

/**
 * An image glob must begin with a registry host so that Signet knows which registries a policy
 * covers (verification never contacts any other). The host part may use `*` and `?` but not `**`,
 * which would cross `/` and so match any registry.
 */
export const checkImageGlob: Check<string> = (glob) => {
  const problem = validateGlob(glob);
  if (problem !== undefined) return problem;
  const slash = glob.indexOf('/');
  const host = slash < 0 ? glob : glob.slice(0, slash);
  const example = '(e.g. "registry.example.com/team/**" or "*.dkr.ecr.*.amazonaws.com/**")';
  const looksLikeHost = host.includes('.') || host.includes(':') || host === 'localhost';
  if (!looksLikeHost || !/[A-Za-z0-9]/.test(host.replace(/[*?]/g, ''))) {
    return `"${glob}" must start with a registry host, so that it is clear which registries the policy covers ${example}`;
  }
  if (host.includes('**'))
    return `"${glob}": "**" crosses "/" and so cannot be part of the registry host ${example}`;
  if (slash < 0 || slash === glob.length - 1)
    return `"${glob}" needs a repository part after the host ${example}`;
  return undefined;
};

interface PolicyRead {
  readonly name: string;
  readonly path: string;
  readonly policy: Policy;
}

function readPolicy(
  value: unknown,
  at: string,
  witnesses: WitnessIndex,
  issues: Issues,
): PolicyRead | undefined {
  const p = ObjectReader.of(issues, at, value, POLICY_KEYS);
  if (p === undefined) return undefined;
  // name: unique; named in every denial.
  const name = p.requiredString('name', checkName);
  // enabled: policies are off unless enabled (as in Security Center).
  const enabled = p.bool('enabled', false);
  // clusters: cluster ids (globs); default any.
  const clusters = p.stringList('clusters', { nonEmpty: true, check: checkGlob }) ?? ['*'];
  // namespaces: Kubernetes namespaces (globs); default any.
  const namespaces = p.stringList('namespaces', { nonEmpty: true, check: checkGlob }) ?? ['*'];
  // images: image reference globs, each starting with a registry host; required.
  const images = p.stringList('images', { required: true, nonEmpty: true, check: checkImageGlob });
  // attestors: every set must pass; `count` of each set's witnesses must have signed.
  const attestors = p.list('attestors', (v, itemAt) => readAttestorSet(v, itemAt, witnesses, issues), {
    required: true,
    nonEmpty: true,
  });
  // mode: `enforce` denies, `audit` admits with a warning.
  const mode = p.oneOf('mode', ['enforce', 'audit'], 'enforce');
  // mutateDigest: rewrite admitted tag references to the verified digest.
  const mutateDigest = p.bool('mutateDigest', false);
  // failurePolicy: on registry or KMS errors, `deny` (fail closed) or `allow`.
  const failurePolicy = p.oneOf('failurePolicy', ['deny', 'allow'], 'deny');
  if (name === undefined || images === undefined || attestors === undefined) return undefined;
  return {
    name,
    path: at,
    policy: { name, enabled, clusters, namespaces, images, attestors, mode, mutateDigest, failurePolicy },
  };
}

function readAttestorSet(
  value: unknown,
  at: string,
  witnesses: WitnessIndex,
  issues: Issues,
): AttestorSet | undefined {
  const a = ObjectReader.of(issues, at, value, ['witnesses', 'count']);
  if (a === undefined) return undefined;
  let failed = false;
  const seen = new Set<string>();
  // witnesses: witness names; count: how many of them must have signed (default all).
  const names =
    a.list(
      'witnesses',
      (item, itemAt) => {
        const witness = readString(issues, itemAt, item, true);
        if (witness === undefined) {
          failed = true;
          return undefined;
        }
        if (seen.has(witness)) {
          issues.add(itemAt, `witness "${witness}" is listed twice`);
          failed = true;
          return undefined;
        }
        seen.add(witness);
        if (resolveWitness(witness, itemAt, witnesses, issues) === undefined) failed = true;
        return witness;
      },
      { required: true, nonEmpty: true },
    ) ?? [];
  const rawCount = a.get('count');
  let count = names.length;
  if (rawCount !== undefined) {
    if (typeof rawCount !== 'number' || !Number.isSafeInteger(rawCount)) {
      a.issue('count', `must be a whole number, got ${JSON.stringify(rawCount)}`);
      failed = true;
    } else if (rawCount < 1 || rawCount > names.length) {
      a.issue(
        'count',
        names.length === 0
          ? `must be between 1 and the number of witnesses, got ${rawCount}`
          : `must be between 1 and ${names.length} (the number of witnesses), got ${rawCount}`,
      );
      failed = true;
    } else {
      count = rawCount;
    }
  }
  if (failed || names.length === 0) return undefined;
  return { witnesses: names, count };
}

// ---------------------------------------------------------------------------------------------
// admission and server

const K8S_NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

function readAdmission(value: unknown, issues: Issues, at = 'admission'): AdmissionSettings {
  const a =
    value === undefined
      ? undefined
      : ObjectReader.of(issues, at, value, [
          'noMatchingPolicy',
          'cacheTtlSeconds',
          'cacheMaxEntries',
          'excludeNamespaces',
        ]);
  const d = DEFAULTS.admission;
  if (a === undefined) return { ...d, excludeNamespaces: [] };
  return {
    // noMatchingPolicy: images no enabled policy covers are denied, allowed, or allowed with a warning.
    noMatchingPolicy: a.oneOf('noMatchingPolicy', ['deny', 'allow', 'warn'], d.noMatchingPolicy),
    // cacheTtlSeconds: how long a positive verification is reused; 0 disables the cache.
    cacheTtlSeconds: a.int('cacheTtlSeconds', d.cacheTtlSeconds, { min: 0, max: 86_400 }),
    // cacheMaxEntries: bound on cached verification results.
    cacheMaxEntries: a.int('cacheMaxEntries', d.cacheMaxEntries, { min: 1, max: 10_000_000 }),
    // excludeNamespaces: Kubernetes namespaces never checked (exact names, e.g. kube-system).
    excludeNamespaces:
      a.stringList('excludeNamespaces', {
        check: (ns) => (K8S_NAMESPACE.test(ns) ? undefined : `"${ns}" is not a Kubernetes namespace name`),
      }) ?? [],
  };
}

const SECRET_PATH = /^[A-Za-z0-9._~-]{1,256}$/;

function readServer(value: unknown, context: BuildContext, issues: Issues, at = 'server'): ServerSettings {
  const s =
    value === undefined
      ? undefined
      : ObjectReader.of(issues, at, value, [
          'port',
          'host',
          'maxBodyBytes',
          'bearerToken',
          'bearerTokenEnv',
          'secretPath',
        ]);
  const d = DEFAULTS.server;
  if (s === undefined) return { ...d, bearerToken: undefined, secretPath: undefined };
  return {
    // port: listen port (0 picks a free one).
    port: s.int('port', d.port, { min: 0, max: 65_535 }),
    // host: listen address; loopback by default.
    host:
      s.optionalString('host', (h) => (/\s|\//.test(h) ? `"${h}" is not a listen address` : undefined)) ??
      d.host,
    // maxBodyBytes: largest request body accepted (AdmissionReviews, notifications).
    maxBodyBytes: s.int('maxBodyBytes', d.maxBodyBytes, { min: 1024, max: 64 * 1024 * 1024 }),
    // bearerToken / bearerTokenEnv: token required on /admission and /verify (inline or from the environment).
    bearerToken: readSecret(s, 'bearerToken', 'bearerTokenEnv', context.env),
    // secretPath: secret first path segment required on /admission and /verify.
    secretPath: s.optionalString('secretPath', (p) =>
      SECRET_PATH.test(p)
        ? undefined
        : 'must be one URL path segment of letters, digits, ".", "_", "~" or "-"',
    ),
  };
}
