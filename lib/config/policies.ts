/** The `policies[]` section: where verification applies and which witnesses it requires. */
import { validateGlob } from '../core/glob';
import { canonicalHost, isRegistryHost, isRepository } from '../core/reference';
import type { AttestorSet, Policy, SignedIdentity } from './types';
import { checkName, Issues, ObjectReader, readString, type Check } from './validate';
import { resolveWitness, type WitnessIndex } from './witnesses';

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
  'signedIdentity',
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

/** A policy as read, with where it was in the document. */
export interface PolicyRead {
  readonly name: string;
  readonly path: string;
  readonly policy: Policy;
}

/** Reads one `policies[]` entry. */
export function readPolicy(
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
  const images = p
    .stringList('images', { required: true, nonEmpty: true, check: checkImageGlob })
    ?.map(canonicalImageGlob);
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
  // signedIdentity: how the repository a signature names must relate to the image (containers/image names).
  const signedIdentity = readSignedIdentity(p.get('signedIdentity'), p.at('signedIdentity'), issues);
  if (name === undefined || images === undefined || attestors === undefined || signedIdentity === undefined)
    return undefined;
  return {
    name,
    path: at,
    policy: {
      name,
      enabled,
      clusters,
      namespaces,
      images,
      attestors,
      mode,
      mutateDigest,
      failurePolicy,
      signedIdentity,
    },
  };
}

/**
 * An image glob with its host part in canonical form (`canonicalHost`), so that it matches the
 * canonical references verification compares: `Registry.Example.com:443/x/**` covers
 * `registry.example.com/x/app`. Wildcards in the host are kept; only their case changes.
 */
export function canonicalImageGlob(glob: string): string {
  const slash = glob.indexOf('/');
  if (slash < 0) return glob;
  return `${canonicalHost(glob.slice(0, slash))}${glob.slice(slash)}`;
}

const IDENTITY_TYPES = ['matchRepository', 'exactRepository', 'remapIdentity', 'matchDigest'] as const;

/**
 * A `host/repository` (no tag, no digest) as identities compare it: the host canonical. With
 * `hostOnly`, a bare host (a remap prefix such as `mirror.example.com`) is fine too. Returns the
 * problem instead when the value is not one.
 */
function parseRepositoryName(
  value: string,
  hostOnly = false,
): { ok: true; name: string } | { ok: false; problem: string } {
  const slash = value.indexOf('/');
  const host = slash < 0 ? value : value.slice(0, slash);
  const repository = slash < 0 ? undefined : value.slice(slash + 1);
  if (!isRegistryHost(host) || !(host.includes('.') || host.includes(':') || host === 'localhost'))
    return {
      ok: false,
      problem: `"${value}" must start with a registry host (registry.example.com/team/app)`,
    };
  if (repository === undefined && hostOnly) return { ok: true, name: canonicalHost(host) };
  if (repository === undefined || !isRepository(repository))
    return {
      ok: false,
      problem: `"${value}" is not host/repository (lowercase path, no tag or digest)`,
    };
  return { ok: true, name: `${canonicalHost(host)}/${repository}` };
}

/** Reads a `signedIdentity` mapping (policies, and signing rules' `conditions`); absent → `matchRepository`. */
export function readSignedIdentity(value: unknown, at: string, issues: Issues): SignedIdentity | undefined {
  if (value === undefined) return { type: 'matchRepository' };
  const type = ObjectReader.of(issues, at, value, ['type', 'dockerRepository', 'prefix', 'signedPrefix']);
  if (type === undefined) return undefined;
  const kind = type.requiredOneOf('type', IDENTITY_TYPES);
  const name = (key: string, hostOnly = false): string | undefined => {
    const raw = type.requiredString(key);
    if (raw === undefined) return undefined;
    const parsed = parseRepositoryName(raw, hostOnly);
    if (!parsed.ok) {
      type.issue(key, parsed.problem);
      return undefined;
    }
    return parsed.name;
  };
  const extra = (allowed: readonly string[]): boolean => {
    const unexpected = ['dockerRepository', 'prefix', 'signedPrefix'].filter(
      (k) => type.has(k) && !allowed.includes(k),
    );
    for (const k of unexpected) type.issue(k, `does not go with type ${kind}`);
    return unexpected.length === 0;
  };
  switch (kind) {
    case undefined:
      return undefined;
    case 'matchRepository':
    case 'matchDigest':
      return extra([]) ? { type: kind } : undefined;
    case 'exactRepository': {
      const dockerRepository = name('dockerRepository');
      return extra(['dockerRepository']) && dockerRepository !== undefined
        ? { type: kind, dockerRepository }
        : undefined;
    }
    case 'remapIdentity': {
      const prefix = name('prefix', true);
      const signedPrefix = name('signedPrefix', true);
      return extra(['prefix', 'signedPrefix']) && prefix !== undefined && signedPrefix !== undefined
        ? { type: kind, prefix, signedPrefix }
        : undefined;
    }
  }
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
