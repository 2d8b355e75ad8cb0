/** Manifest and reference plumbing of the registry client: parsing, digests, checks, links. */
import { createHash } from 'node:crypto';
import { InputError, RegistryError } from '../core/errors';
import { isAnyDigest, isRepository, isTag } from '../core/reference';
import { isObject } from '../core/json';
import {
  MANIFEST_MEDIA_TYPES,
  MEDIA_TYPES,
  isIndexMediaType,
  type ImageIndex,
  type ImageManifest,
} from './types';

/** The Accept header of manifest requests: every manifest media type Signet understands. */
export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

/** Parses manifest bytes (an OCI or Docker image manifest or index) or fails as PROTOCOL for `host`. */
export function parseManifest(
  host: string,
  bytes: Buffer,
  headerType: string | undefined,
  what: string,
): { manifest: ImageManifest | ImageIndex; mediaType: string } {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new RegistryError('PROTOCOL', host, `${what}: manifest is not JSON`, { cause: err });
  }
  const bad = (why: string): RegistryError => new RegistryError('PROTOCOL', host, `${what}: ${why}`);
  if (!isObject(json)) throw bad('manifest is not a JSON object');
  if (json['schemaVersion'] !== 2)
    throw bad(`schemaVersion ${String(json['schemaVersion'])} is not supported`);
  const isIndex = Array.isArray(json['manifests']);
  const isImage = isObject(json['config']) && Array.isArray(json['layers']);
  const declared = typeof json['mediaType'] === 'string' ? json['mediaType'] : undefined;
  const mediaType =
    declared ??
    (headerType !== undefined && MANIFEST_MEDIA_TYPES.includes(headerType)
      ? headerType
      : isIndex
        ? MEDIA_TYPES.ociIndex
        : MEDIA_TYPES.ociManifest);
  if (isIndexMediaType(mediaType) ? !isIndex : !isImage)
    throw bad(`manifest does not have the shape of ${mediaType}`);
  const descriptors = isIndex
    ? (json['manifests'] as unknown[])
    : [json['config'], ...(json['layers'] as unknown[])];
  if (json['subject'] !== undefined) descriptors.push(json['subject']);
  if (!descriptors.every(isDescriptor)) throw bad('manifest has a malformed descriptor');
  return { manifest: json as unknown as ImageManifest | ImageIndex, mediaType };
}

export function checkRepository(repository: string): void {
  if (!isRepository(repository)) {
    throw new InputError(
      'REFERENCE_INVALID',
      'repository',
      `"${excerpt(repository)}" is not a repository name`,
    );
  }
}

export function checkReference(reference: string): void {
  if (!isTag(reference) && !isAnyDigest(reference)) {
    throw new InputError(
      'REFERENCE_INVALID',
      'reference',
      `"${excerpt(reference)}" is neither a tag nor a digest`,
    );
  }
}

export function checkDigest(digest: string): void {
  if (!isAnyDigest(digest)) {
    throw new InputError('REFERENCE_INVALID', 'digest', `"${excerpt(digest)}" is not a digest`);
  }
}

export const refSuffix = (reference: string): string =>
  isAnyDigest(reference) ? `@${reference}` : `:${reference}`;

const HASHES: Readonly<Record<string, string>> = { sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };

/** The digest of `bytes` with the algorithm of `like` (`sha256:...`). */
export function digestOf(bytes: Buffer, like: string): string {
  const algorithm = like.slice(0, like.indexOf(':'));
  const hash = HASHES[algorithm];
  if (hash === undefined) {
    throw new InputError('REFERENCE_INVALID', 'digest', `digest algorithm "${algorithm}" is not supported`);
  }
  return `${algorithm}:${createHash(hash).update(bytes).digest('hex')}`;
}

export const sameAlgorithm = (a: string, b: string): boolean =>
  a.slice(0, a.indexOf(':')) === b.slice(0, b.indexOf(':'));

export function contentType(res: Response): string | undefined {
  const value = res.headers.get('content-type');
  if (!value) return undefined;
  return value.split(';', 1)[0]?.trim().toLowerCase() || undefined;
}

/** Builds the PUT URL of a monolithic upload from the POST's Location (relative or absolute, maybe with a query). */
export function uploadUrl(location: string, requestUrl: string, digest: string): string {
  const url = new URL(location, requestUrl);
  // Append rather than rebuild the query: the registry's opaque state must come back byte for byte.
  url.search = `${url.search ? `${url.search}&` : '?'}digest=${encodeURIComponent(digest)}`;
  return url.href;
}

/** The `rel="next"` target of a Link header, resolved against the request URL. */
export function nextLink(link: string | null, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const match = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (match?.[1] !== undefined && /rel="?next"?/i.test(match[2] ?? '')) return new URL(match[1], base).href;
  }
  return undefined;
}

export function referrersIndex(bytes: Buffer): ImageIndex | undefined {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(json) || json['schemaVersion'] !== 2 || !Array.isArray(json['manifests'])) return undefined;
  if (json['mediaType'] !== undefined && json['mediaType'] !== MEDIA_TYPES.ociIndex) return undefined;
  if (!json['manifests'].every(isDescriptor)) return undefined;
  return json as unknown as ImageIndex;
}

export function isDescriptor(value: unknown): boolean {
  return (
    isObject(value) &&
    typeof value['mediaType'] === 'string' &&
    isAnyDigest(value['digest']) &&
    typeof value['size'] === 'number' &&
    Number.isSafeInteger(value['size']) &&
    value['size'] >= 0
  );
}

export const excerpt = (value: unknown): string => String(value).slice(0, 200);
