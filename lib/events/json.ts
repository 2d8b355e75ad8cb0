/**
 * Reading untrusted notification JSON. Every helper either returns a value of the expected shape
 * or throws `InputError('EVENT_INVALID', field, ...)` naming the JSON path it rejected. Nothing
 * here recurses into the input, so no depth or size of input can exhaust the stack.
 */
import { InputError } from '../core/errors';
import { isObject as isJsonObject } from '../core/json';
import { canonicalHost, isAnyDigest, isDigest, isRegistryHost, isRepository, isTag } from '../core/reference';

/** A parsed JSON object whose values are still unchecked. */
export type JsonObject = { readonly [key: string]: unknown };

/** Most events one notification body may carry; registries batch far fewer. */
export const MAX_EVENTS_PER_NOTIFICATION = 1000;
const MAX_ID_LENGTH = 256;
/** Longest URL or reference read from a notification. */
export const MAX_URL_LENGTH = 2048;
const MAX_MEDIA_TYPE_LENGTH = 255;

// RFC 6838 restricted-name, type and subtype each 1-127 chars. The two character classes exclude
// "/", so the match is linear.
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export const invalid = (field: string, message: string): InputError =>
  new InputError('EVENT_INVALID', field, message);

/** A JSON object, as the event parsers read it (read-only). */
export const isObject = (value: unknown): value is JsonObject => isJsonObject(value);

/** An own property only: a key like `constructor` or `__proto__` never reaches the prototype. */
export const get = (object: JsonObject, key: string): unknown =>
  Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;

/** A short, safe rendering of any JSON value for error messages. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

export function requireObject(value: unknown, field: string): JsonObject {
  if (!isObject(value)) throw invalid(field, `must be an object, got ${describe(value)}`);
  return value;
}

export function requireArray(
  value: unknown,
  field: string,
  max = MAX_EVENTS_PER_NOTIFICATION,
): readonly unknown[] {
  if (!Array.isArray(value)) throw invalid(field, `must be an array, got ${describe(value)}`);
  if (value.length > max) throw invalid(field, `must hold at most ${max} entries, got ${value.length}`);
  return value;
}

export function requireString(value: unknown, field: string, maxLength: number): string {
  if (typeof value !== 'string') throw invalid(field, `must be a string, got ${describe(value)}`);
  if (value.length > maxLength) throw invalid(field, `must be at most ${maxLength} characters`);
  return value;
}

/** An optional string: absent, `null` and `""` all mean "not given". */
export function optionalString(value: unknown, field: string, maxLength: number): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return requireString(value, field, maxLength);
}

export function requireRepository(value: unknown, field: string): string {
  if (!isRepository(value)) {
    throw invalid(
      field,
      `must be a repository name (lowercase path components such as "team-a/app"), got ${describe(value)}`,
    );
  }
  return value;
}

/** An optional tag: absent, `null` and `""` mean untagged. */
export function optionalTag(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (!isTag(value)) {
    throw invalid(
      field,
      `must be a tag ([A-Za-z0-9_][A-Za-z0-9._-], at most 128 characters), got ${describe(value)}`,
    );
  }
  return value;
}

/** The outcome of reading a manifest digest: Signet signs sha256 manifests only. */
export type DigestCheck =
  | { readonly $case: 'sha256'; readonly digest: string }
  | { readonly $case: 'other-algorithm'; readonly digest: string };

const SHA512_DIGEST = /^sha512:[a-f0-9]{128}$/;

export function requireDigest(value: unknown, field: string): DigestCheck {
  if (isDigest(value)) return { $case: 'sha256', digest: value };
  // The registered algorithms have fixed encodings: a malformed "sha256:" digest is an error,
  // not another algorithm.
  const wellFormedOther =
    isAnyDigest(value) &&
    value.length <= 256 &&
    !value.startsWith('sha256:') &&
    (!value.startsWith('sha512:') || SHA512_DIGEST.test(value));
  if (wellFormedOther) return { $case: 'other-algorithm', digest: value };
  throw invalid(field, `must be a manifest digest (sha256:<64 lowercase hex>), got ${describe(value)}`);
}

/** The notification's id: optional, a string when present. */
export const optionalId = (value: unknown, field: string): string | undefined =>
  optionalString(value, field, MAX_ID_LENGTH);

/** A media type's essence: lowercased, parameters dropped. */
export function mediaTypeEssence(value: string): string {
  return (value.split(';', 1)[0] ?? '').trim().toLowerCase();
}

/** An optional media type (`type/subtype`), returned as its essence. */
export function optionalMediaType(value: unknown, field: string): string | undefined {
  const raw = optionalString(value, field, MAX_MEDIA_TYPE_LENGTH);
  if (raw === undefined) return undefined;
  const essence = mediaTypeEssence(raw);
  if (!MEDIA_TYPE.test(essence))
    throw invalid(field, `must be a media type (type/subtype), got ${describe(raw)}`);
  return essence;
}

/** The `host[:port]` of an http(s) URL, lowercased, or undefined when the value is not one. */
export function hostOfUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > MAX_URL_LENGTH) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  return normalizeHost(url.host);
}

/** The path of an http(s) URL, or undefined when the value is not one. */
export function pathOfUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > MAX_URL_LENGTH) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.pathname : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A registry host as rules and image references compare it (`canonicalHost`: lowercase, Docker
 * Hub's aliases as one, no `:443`), or undefined when the value is not a valid `host[:port]`.
 */
export function normalizeHost(value: unknown): string | undefined {
  if (!isRegistryHost(value)) return undefined;
  const host = canonicalHost(value);
  const colon = host.startsWith('[') ? host.indexOf(':', host.indexOf(']')) : host.indexOf(':');
  if (colon >= 0) {
    const port = Number(host.slice(colon + 1));
    if (!(port >= 1 && port <= 65535)) return undefined;
  }
  return host;
}
