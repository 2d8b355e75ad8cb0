/** The `registries[]` section: hosts, embedded and insecure flags, credentials. */
import * as path from 'node:path';
import { canonicalHost } from '../core/reference';
import type { BuildContext } from './build';
import { checkRegistryHost, ecrRegionOf, isAwsRegion, isEcrHost, isLoopbackHost } from './hosts';
import { envRegion } from './keyref';
import type { RegistryAuth, RegistryConfig, RegistryKind } from './types';
import { didYouMean, Issues, ObjectReader, readSecret } from './validate';

/** A registry as read, with where it was in the document. */
export interface RegistryRead {
  readonly config: RegistryConfig;
  readonly path: string;
}

const REGISTRY_KEYS = ['host', 'kind', 'embedded', 'insecure', 'auth', 'dataDir'];
const REGISTRY_KINDS: readonly RegistryKind[] = ['distribution', 'harbor', 'ecr'];

/** Reads one `registries[]` entry. */
export function readRegistry(
  value: unknown,
  at: string,
  context: BuildContext,
  issues: Issues,
): RegistryRead | undefined {
  const r = ObjectReader.of(issues, at, value, REGISTRY_KEYS);
  if (r === undefined) return undefined;
  // host: `host[:port]` as it appears in image references; required and unique.
  const written = r.requiredString('host', checkRegistryHost);
  // Compared everywhere in canonical form: `Registry.Example.com:443` is `registry.example.com`.
  const host = written === undefined ? undefined : canonicalHost(written);
  // kind: what the registry runs, which decides what its events carry (pusher, scans). Only an
  // ECR host says what it is; Harbor and distribution look alike, and distribution (the embedded
  // registry, and the one with the fewest facts in its events) is the default that never claims a
  // fact the events do not carry: a rule needing Harbor's scans fails to load until kind says harbor.
  const kind = r.oneOf(
    'kind',
    REGISTRY_KINDS,
    host !== undefined && isEcrHost(host) ? 'ecr' : 'distribution',
  );
  // embedded: Signet runs the distribution registry on this (loopback) host itself.
  const embedded = r.bool('embedded', false);
  if (embedded && kind !== 'distribution') r.issue('kind', 'the embedded registry is distribution');

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
      kind,
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

/** Hosts are unique; at most one registry is embedded, and only on loopback. */
export function checkRegistries(registries: readonly RegistryRead[], issues: Issues): void {
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
