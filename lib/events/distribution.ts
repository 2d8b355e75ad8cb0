/**
 * Docker Distribution (CNCF distribution) notifications: an envelope `{ "events": [...] }` POSTed
 * as `application/vnd.docker.distribution.events.v1+json` (registry 2.x) or `...v2+json`
 * (distribution v3). Every push is an event, blobs included; only manifest pushes are signable.
 *
 * v3 differences handled here: the envelope media type; `target` embeds a full OCI descriptor, so
 * events that carry no content (tag and repository deletes) still have `"mediaType": ""`,
 * `"digest": ""` and `"size": 0`; an optional `target.artifactType`; and `target.references`
 * (child descriptors, when the endpoint sets `includereferences`), which Signet does not need.
 */
import { InputError } from '../core/errors';
import {
  describe,
  get,
  hostOfUrl,
  invalid,
  isObject,
  mediaTypeEssence,
  normalizeHost,
  optionalId,
  optionalMediaType,
  optionalString,
  optionalTag,
  pathOfUrl,
  requireArray,
  requireDigest,
  requireObject,
  requireRepository,
  requireString,
  type JsonObject,
} from './json';
import {
  NOT_SHA256_REASON,
  SCHEMA1_MEDIA_TYPES,
  SCHEMA1_REASON,
  SIGNABLE_MANIFEST_MEDIA_TYPES,
} from './media-types';
import type { IgnoredNotification, NormalizedEvents, PushEvent } from './types';

/** Envelope media type of registry 2.x. */
export const DISTRIBUTION_EVENTS_V1 = 'application/vnd.docker.distribution.events.v1+json';
/** Envelope media type of distribution v3. */
export const DISTRIBUTION_EVENTS_V2 = 'application/vnd.docker.distribution.events.v2+json';
const ACCEPTED_CONTENT_TYPES: ReadonlySet<string> = new Set([
  DISTRIBUTION_EVENTS_V1,
  DISTRIBUTION_EVENTS_V2,
  'application/json',
]);

const MAX_ACTION_LENGTH = 64;
const MAX_ACTOR_LENGTH = 256;

/**
 * Normalizes one notification envelope. `contentType` is the request's Content-Type header;
 * `undefined` means the body did not come over HTTP (a file, a test) and is not checked.
 */
export function parseDistributionNotification(
  body: unknown,
  contentType: string | undefined,
): NormalizedEvents {
  checkContentType(contentType);
  if (!isObject(body)) throw invalid('body', `must be a notification envelope object, got ${describe(body)}`);
  const entries = requireArray(get(body, 'events'), 'events');
  const events: PushEvent[] = [];
  const ignored: IgnoredNotification[] = [];
  entries.forEach((entry, index) => {
    const field = `events[${index}]`;
    const outcome = parseEvent(entry, field);
    if (outcome.$case === 'push') events.push(outcome.event);
    else ignored.push({ field, reason: outcome.reason });
  });
  return { events, ignored };
}

function checkContentType(contentType: string | undefined): void {
  if (contentType === undefined) return;
  const essence = typeof contentType === 'string' ? mediaTypeEssence(contentType) : '';
  if (!ACCEPTED_CONTENT_TYPES.has(essence)) {
    throw new InputError(
      'UNSUPPORTED_MEDIA_TYPE',
      'content-type',
      `expected ${DISTRIBUTION_EVENTS_V1}, ${DISTRIBUTION_EVENTS_V2} or application/json, got ${describe(contentType)}`,
    );
  }
}

type EventOutcome =
  | { readonly $case: 'push'; readonly event: PushEvent }
  | { readonly $case: 'ignored'; readonly reason: string };

const ignore = (reason: string): EventOutcome => ({ $case: 'ignored', reason });

function parseEvent(entry: unknown, field: string): EventOutcome {
  const event = requireObject(entry, field);
  const action = requireString(get(event, 'action'), `${field}.action`, MAX_ACTION_LENGTH);
  switch (action) {
    case 'push':
      return parsePush(event, field);
    case 'pull':
      return ignore('pull event');
    case 'mount':
      return ignore('blob mount');
    case 'delete':
      return ignore('delete event');
    default:
      return ignore(`unknown action ${describe(action)}`);
  }
}

function parsePush(event: JsonObject, field: string): EventOutcome {
  const target = requireObject(get(event, 'target'), `${field}.target`);
  const mediaType = optionalMediaType(get(target, 'mediaType'), `${field}.target.mediaType`);
  const url = get(target, 'url');
  const kind = contentKind(url);

  // A blob URL settles it whatever the media type: distribution reports blob pushes as
  // application/octet-stream, a layer type, or whatever the client declared.
  if (kind === 'blob') return ignore(`blob push (${mediaType ?? 'no media type'})`);
  if (mediaType === undefined) {
    if (kind === 'manifest') {
      throw invalid(`${field}.target.mediaType`, 'a manifest push must give the manifest media type');
    }
    return ignore('push without a media type or a manifest URL: not a manifest');
  }
  if (SCHEMA1_MEDIA_TYPES.has(mediaType)) return ignore(SCHEMA1_REASON);
  if (!SIGNABLE_MANIFEST_MEDIA_TYPES.has(mediaType)) {
    return ignore(
      kind === 'manifest' ? `manifest of unsupported media type ${mediaType}` : `blob push (${mediaType})`,
    );
  }

  const repository = requireRepository(get(target, 'repository'), `${field}.target.repository`);
  const digest = requireDigest(get(target, 'digest'), `${field}.target.digest`);
  const tag = optionalTag(get(target, 'tag'), `${field}.target.tag`);
  const artifactType = optionalMediaType(get(target, 'artifactType'), `${field}.target.artifactType`);
  const registry = registryHost(event, url, field);
  const id = optionalId(get(event, 'id'), `${field}.id`);
  const pushedBy = actorName(event, field);
  if (digest.$case === 'other-algorithm') return ignore(NOT_SHA256_REASON);
  return {
    $case: 'push',
    event: {
      registry,
      repository,
      digest: digest.digest,
      tag,
      mediaType,
      artifactType,
      source: 'distribution',
      id,
      ...(pushedBy !== undefined ? { pushedBy } : {}),
    },
  };
}

/** The authenticated user who pushed (`actor.name`); distribution sends `{}` without auth. */
function actorName(event: JsonObject, field: string): string | undefined {
  const actor = get(event, 'actor');
  if (actor === undefined || actor === null) return undefined;
  if (!isObject(actor)) throw invalid(`${field}.actor`, `must be an object, got ${describe(actor)}`);
  return optionalString(get(actor, 'name'), `${field}.actor.name`, MAX_ACTOR_LENGTH);
}

/**
 * What a content URL points at. Its path is `/v2/<name>/(blobs|manifests)/<reference>` and only
 * the reference cannot hold a "/", so the segment before the last one decides (a repository
 * may well be called `team/blobs`).
 */
function contentKind(url: unknown): 'blob' | 'manifest' | undefined {
  const path = pathOfUrl(url);
  if (path === undefined) return undefined;
  const parent = path.slice(0, path.lastIndexOf('/'));
  if (parent.endsWith('/blobs')) return 'blob';
  if (parent.endsWith('/manifests')) return 'manifest';
  return undefined;
}

/**
 * The registry as clients address it: the request's Host header, else the host of the content
 * URL (which distribution builds from its `http.host` setting or the forwarded headers).
 */
function registryHost(event: JsonObject, url: unknown, field: string): string {
  const request = get(event, 'request');
  if (request !== undefined && request !== null && !isObject(request)) {
    throw invalid(`${field}.request`, `must be an object, got ${describe(request)}`);
  }
  const fromRequest =
    request === undefined || request === null ? undefined : normalizeHost(get(request, 'host'));
  const host = fromRequest ?? hostOfUrl(url);
  if (host === undefined) {
    throw invalid(
      `${field}.request.host`,
      'must be the registry host[:port] (or target.url an http(s) URL of the manifest)',
    );
  }
  return host;
}
