/**
 * Harbor webhooks in the `Default` payload format:
 * `{ type, occur_at, operator, event_data: { resources: [{ digest, tag, resource_url }], repository } }`.
 *
 * Harbor quirks: `tag` is never empty; an artifact pushed by digest reports its digest as the
 * tag and `resource_url` as `host/repo@digest`. Only the first tag of an artifact is reported.
 * `resource_url` starts with Harbor's external URL minus its scheme, which is the registry host.
 * The payload has no id. The `CloudEvents` payload format (Harbor 2.10+) has another shape
 * and is refused with a message saying so, rather than silently ignored.
 */
import { isAnyDigest } from '../core/reference';
import {
  describe,
  get,
  invalid,
  isObject,
  MAX_URL_LENGTH,
  normalizeHost,
  optionalString,
  optionalTag,
  requireArray,
  requireDigest,
  requireObject,
  requireRepository,
  requireString,
  type JsonObject,
} from './json';
import { NOT_SHA256_REASON } from './media-types';
import type {
  IgnoredNotification,
  NormalizedEvents,
  PushEvent,
  ScanEvent,
  ScanResult,
  SeverityCounts,
} from './types';

export const HARBOR_PUSH_ARTIFACT = 'PUSH_ARTIFACT';
export const HARBOR_SCANNING_COMPLETED = 'SCANNING_COMPLETED';
export const HARBOR_SCANNING_FAILED = 'SCANNING_FAILED';
const MAX_OPERATOR_LENGTH = 256;

/** Normalizes one Harbor webhook body. */
export function parseHarborWebhook(body: unknown): NormalizedEvents {
  if (!isObject(body))
    throw invalid('body', `must be a Harbor webhook payload object, got ${describe(body)}`);
  if (get(body, 'specversion') !== undefined) {
    throw invalid(
      'specversion',
      'this is a CloudEvents payload; set the Harbor webhook policy payload format to "Default"',
    );
  }
  const type = requireString(get(body, 'type'), 'type', 64);
  if (type === HARBOR_SCANNING_COMPLETED || type === HARBOR_SCANNING_FAILED) return parseScan(body, type);
  if (type !== HARBOR_PUSH_ARTIFACT) {
    return { events: [], ignored: [{ field: 'type', reason: `Harbor ${describe(type)} notification` }] };
  }
  // The user (or robot account) that pushed.
  const pushedBy = optionalString(get(body, 'operator'), 'operator', MAX_OPERATOR_LENGTH);
  const { resources, ignored } = harborResources(body);
  const events = resources.map(({ registry, repository, digest, tag }): PushEvent => ({
    registry,
    repository,
    digest,
    tag,
    mediaType: undefined,
    artifactType: undefined,
    source: 'harbor',
    id: undefined,
    ...(pushedBy !== undefined ? { pushedBy } : {}),
  }));
  return { events, ignored };
}

/** One `event_data.resources[i]` of a Harbor notification, read; `field` is its path. */
interface HarborResource {
  readonly field: string;
  readonly resource: JsonObject;
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  readonly tag: string | undefined;
}

/**
 * The resources a push or scan notification names, with their repository: each with a sha256
 * digest, or ignored (another digest algorithm). Throws InputError naming the field at fault.
 */
function harborResources(body: JsonObject): {
  resources: HarborResource[];
  ignored: IgnoredNotification[];
} {
  const data = requireObject(get(body, 'event_data'), 'event_data');
  const repositoryInfo = requireObject(get(data, 'repository'), 'event_data.repository');
  const repository = requireRepository(
    get(repositoryInfo, 'repo_full_name'),
    'event_data.repository.repo_full_name',
  );
  const resources: HarborResource[] = [];
  const ignored: IgnoredNotification[] = [];
  requireArray(get(data, 'resources'), 'event_data.resources').forEach((entry, index) => {
    const field = `event_data.resources[${index}]`;
    const resource = requireObject(entry, field);
    const digest = requireDigest(get(resource, 'digest'), `${field}.digest`);
    const tag = resourceTag(get(resource, 'tag'), `${field}.tag`);
    const registry = resourceHost(get(resource, 'resource_url'), `${field}.resource_url`);
    if (digest.$case === 'other-algorithm') ignored.push({ field, reason: NOT_SHA256_REASON });
    else resources.push({ field, resource, registry, repository, digest: digest.digest, tag });
  });
  return { resources, ignored };
}

/**
 * `SCANNING_COMPLETED` / `SCANNING_FAILED`: the same resources as a push, each with its
 * `scan_overview`, a map from report MIME type to a summary whose `summary.summary` counts findings
 * by Harbor severity (`Critical`, `High`, `Medium`, `Low`, `Negligible`, `Unknown`) and
 * `summary.fixable` counts those with a fix. A clean image has `summary: null`.
 */
function parseScan(body: JsonObject, type: string): NormalizedEvents {
  const { resources, ignored } = harborResources(body);
  const scans = resources.map(({ field, resource, registry, repository, digest, tag }): ScanEvent => ({
    registry,
    repository,
    digest,
    tags: tag === undefined ? [] : [tag],
    result:
      type === HARBOR_SCANNING_FAILED
        ? { $case: 'failed', scanner: 'harbor', detail: 'Harbor reported SCANNING_FAILED' }
        : scanResult(get(resource, 'scan_overview'), `${field}.scan_overview`),
    id: undefined,
  }));
  return { events: [], ignored, scans };
}

/** Harbor severities, mapped onto Signet's four (everything under Low counts as LOW). */
const HARBOR_SEVERITIES: Readonly<Record<string, keyof SeverityCounts>> = {
  Critical: 'CRITICAL',
  High: 'HIGH',
  Medium: 'MEDIUM',
  Low: 'LOW',
  Negligible: 'LOW',
  Unknown: 'LOW',
};
const MAX_COUNT = 1_000_000_000;

/** The vulnerability report of a `scan_overview` (the one report Harbor's scanners write). */
function scanResult(value: unknown, field: string): ScanResult {
  const overview = requireObject(value, field);
  const reports = Object.keys(overview).filter(
    (key) => key.includes('vulnerability') || key.includes('vuln'),
  );
  const key = reports[0];
  if (key === undefined) throw invalid(field, 'must hold a vulnerability report summary');
  const at = `${field}[${JSON.stringify(key)}]`;
  const report = requireObject(get(overview, key), at);
  const status = requireString(get(report, 'scan_status'), `${at}.scan_status`, 64);
  if (status !== 'Success') {
    return { $case: 'failed', scanner: 'harbor', detail: `Harbor scan status ${status}` };
  }
  const summary = get(report, 'summary');
  const counts = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0 };
  if (summary === undefined || summary === null) {
    return { $case: 'complete', scanner: 'harbor', counts, fixable: 0 };
  }
  const totals = requireObject(summary, `${at}.summary`);
  const bySeverity = get(totals, 'summary');
  if (bySeverity !== undefined && bySeverity !== null) {
    const severities = requireObject(bySeverity, `${at}.summary.summary`);
    for (const name of Object.keys(severities)) {
      const n = findings(get(severities, name), `${at}.summary.summary.${name}`);
      // "None" is Harbor's severity of an image without findings; anything unknown counts as LOW.
      if (name !== 'None') counts[HARBOR_SEVERITIES[name] ?? 'LOW'] += n;
    }
  }
  const fixable = get(totals, 'fixable');
  return {
    $case: 'complete',
    scanner: 'harbor',
    counts,
    fixable:
      fixable === undefined || fixable === null ? undefined : findings(fixable, `${at}.summary.fixable`),
  };
}

function findings(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_COUNT) {
    throw invalid(field, `must be a count of findings, got ${describe(value)}`);
  }
  return value;
}

/** A push by digest puts the digest in `tag`: that is no tag at all. */
function resourceTag(value: unknown, field: string): string | undefined {
  if (isAnyDigest(value)) return undefined;
  return optionalTag(value, field);
}

/** The registry host: `resource_url` is `host[:port]/<repo_full_name>(:tag|@digest)`. */
function resourceHost(value: unknown, field: string): string {
  const url = optionalString(value, field, MAX_URL_LENGTH);
  if (url === undefined) throw invalid(field, 'must be the artifact reference host/repository:tag');
  // Harbor strips the scheme from its external URL; tolerate one left in.
  const scheme = url.indexOf('://');
  const rest = scheme >= 0 ? url.slice(scheme + 3) : url;
  const slash = rest.indexOf('/');
  const host = slash > 0 ? normalizeHost(rest.slice(0, slash)) : undefined;
  if (host === undefined) {
    throw invalid(
      field,
      `must start with the registry host[:port] ("harbor.example.com/project/app:v1"), got ${describe(url)}`,
    );
  }
  return host;
}
