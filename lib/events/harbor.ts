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
} from './json';
import { NOT_SHA256_REASON } from './media-types';
import type { IgnoredNotification, NormalizedEvents, PushEvent } from './types';

export const HARBOR_PUSH_ARTIFACT = 'PUSH_ARTIFACT';

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
  if (type !== HARBOR_PUSH_ARTIFACT) {
    return { events: [], ignored: [{ field: 'type', reason: `Harbor ${describe(type)} notification` }] };
  }
  const data = requireObject(get(body, 'event_data'), 'event_data');
  const repositoryInfo = requireObject(get(data, 'repository'), 'event_data.repository');
  const repository = requireRepository(
    get(repositoryInfo, 'repo_full_name'),
    'event_data.repository.repo_full_name',
  );
  const resources = requireArray(get(data, 'resources'), 'event_data.resources');

  const events: PushEvent[] = [];
  const ignored: IgnoredNotification[] = [];
  resources.forEach((entry, index) => {
    const field = `event_data.resources[${index}]`;
    const resource = requireObject(entry, field);
    const digest = requireDigest(get(resource, 'digest'), `${field}.digest`);
    const tag = resourceTag(get(resource, 'tag'), `${field}.tag`);
    const registry = resourceHost(get(resource, 'resource_url'), `${field}.resource_url`);
    if (digest.$case === 'other-algorithm') {
      ignored.push({ field, reason: NOT_SHA256_REASON });
      return;
    }
    events.push({
      registry,
      repository,
      digest: digest.digest,
      tag,
      mediaType: undefined,
      artifactType: undefined,
      source: 'harbor',
      id: undefined,
    });
  });
  return { events, ignored };
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
