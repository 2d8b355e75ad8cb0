import { createHash } from 'node:crypto';
import type { RegistryConfig } from '../config/types';
import { InputError, RegistryError } from '../core/errors';
import { isAnyDigest, isRepository, isTag } from '../core/reference';
import { DEFAULT_RETRY, withRetry, type RetryObserver, type RetryPolicy } from '../core/retry';
import { RegistryAuthenticator, parseChallenges, type Access } from './auth';
import { EcrAuthorizationTokens, parseEcrHost, type EcrCredentialsProvider } from './ecr-auth';
import { RegistryHttp, isObject, systemLookup, type HostLookup, type HttpRequest } from './http';
import {
  MANIFEST_MEDIA_TYPES,
  MEDIA_TYPES,
  isIndexMediaType,
  type BlobReadOptions,
  type Descriptor,
  type FetchedManifest,
  type ImageIndex,
  type ImageManifest,
  type ManifestHead,
  type ReadOptions,
  type RegistryClient,
  type RegistryClientFactory,
} from './types';

/**
 * A distribution-spec registry client over global `fetch` (undici, keep-alive): anonymous, Basic,
 * bearer-token and ECR auth, digest-checked manifests and blobs, size caps, per-request timeouts,
 * bounded retries with full jitter that honour Retry-After. The HTTP layer (`./http`) bounds and
 * checks every answer (and sends HEADs over a keep-alive node:http agent); `./auth` answers
 * challenges.
 */

// What other modules and tests have always imported from here, wherever it now lives.
export { parseChallenges, type AuthChallenge } from './auth';
export { ByteBudget } from './budget';
export { parseRetryAfter, type HostLookup } from './http';

/** How registry clients behave; every field has a default. */
export interface RegistryClientOptions {
  /** Retries of throttling, 5xx and connection failures; default `DEFAULT_RETRY`. */
  readonly retry?: RetryPolicy;
  /** Told about every retry (tests and metrics count them). */
  readonly onRetry?: RetryObserver;
  /** Per HTTP request, body included; default 30 s. */
  readonly timeoutMs?: number;
  /** Largest manifest read or written; default 4 MiB (the distribution limit). */
  readonly maxManifestBytes?: number;
  /**
   * Largest blob read; default 16 MiB (Signet reads configs and signature payloads, never layers).
   * A read given the descriptor's size is bounded by that size, and refused when it is over this.
   */
  readonly maxBlobBytes?: number;
  /** Where ECR credentials come from; default one `EcrAuthorizationTokens` per factory. */
  readonly ecrCredentials?: EcrCredentialsProvider;
  readonly userAgent?: string;
  /**
   * How long a registry that answered the referrers API with 404 is taken not to have it (no
   * more requests to it); default 10 minutes. The OCI distribution spec forbids a registry that
   * implements the API to answer 404, so the answer is about the registry, not the digest.
   */
  readonly referrersProbeTtlMs?: number;
  /**
   * Resolves host names for the redirect and token-realm checks (is a target link-local, or
   * loopback?) and for deciding whether the registry is on loopback; default the system resolver.
   * Connections themselves always use the system resolver.
   */
  readonly lookup?: HostLookup;
}

/** The registry settings a client needs: the subset of `RegistryConfig` about reaching it. */
export type RegistryEndpoint = Pick<RegistryConfig, 'host' | 'insecure' | 'auth'>;

const MiB = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_MANIFEST_BYTES = 4 * MiB;
const DEFAULT_MAX_BLOB_BYTES = 16 * MiB;
const DEFAULT_REFERRERS_PROBE_TTL_MS = 10 * 60_000;
const MAX_REFERRER_PAGES = 20;
const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

/** `https://host`, or `http://host` only for a registry marked insecure. Docker Hub's API host is `registry-1.docker.io`. */
export function registryBaseUrl(host: string, insecure: boolean): string {
  const apiHost = host === 'docker.io' ? 'registry-1.docker.io' : host;
  return `${insecure ? 'http' : 'https'}://${apiHost}`;
}

/**
 * The settings for a host: the configured registry (host compared case-insensitively), else ECR
 * auth for an `<account>.dkr.ecr.<region>.amazonaws.com` host, else anonymous HTTPS.
 */
export function resolveRegistry(host: string, registries: readonly RegistryConfig[]): RegistryEndpoint {
  const wanted = host.toLowerCase();
  const configured = registries.find((r) => r.host.toLowerCase() === wanted);
  if (configured) return { host: configured.host, insecure: configured.insecure, auth: configured.auth };
  const ecr = parseEcrHost(host);
  if (ecr) return { host, insecure: false, auth: { $case: 'ecr', region: ecr.region, endpoint: undefined } };
  return { host, insecure: false, auth: { $case: 'anonymous' } };
}

interface RegistryRequest extends HttpRequest {
  /** Scopes the bearer token; `undefined` for `/v2/`. */
  readonly repository: string | undefined;
  readonly access: Access;
}

/** A RegistryClient for one host. Share one per host (see `RegistryClients`): it caches tokens. */
export class HttpRegistryClient implements RegistryClient {
  readonly host: string;
  readonly baseUrl: string;
  private readonly retry: RetryPolicy;
  private readonly onRetry: RetryObserver | undefined;
  private readonly maxManifestBytes: number;
  private readonly maxBlobBytes: number;
  private readonly referrersProbeTtlMs: number;
  private readonly http: RegistryHttp;
  private readonly authenticator: RegistryAuthenticator;
  /** Until when this registry is taken to have no referrers API (epoch ms). */
  private noReferrersApiUntil = 0;

  constructor(registry: RegistryEndpoint, options: RegistryClientOptions = {}) {
    this.host = registry.host;
    this.baseUrl = registryBaseUrl(registry.host, registry.insecure);
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.onRetry = options.onRetry;
    this.maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.maxBlobBytes = options.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES;
    this.referrersProbeTtlMs = options.referrersProbeTtlMs ?? DEFAULT_REFERRERS_PROBE_TTL_MS;
    this.http = new RegistryHttp({
      host: registry.host,
      baseUrl: this.baseUrl,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      userAgent: options.userAgent ?? 'signet',
      lookup: options.lookup ?? systemLookup,
    });
    this.authenticator = new RegistryAuthenticator(
      registry.host,
      registry.auth,
      this.http,
      options.ecrCredentials,
    );
  }

  async headManifest(
    repository: string,
    reference: string,
    options: ReadOptions = {},
  ): Promise<ManifestHead | undefined> {
    checkRepository(repository);
    checkReference(reference);
    const what = `HEAD manifest ${repository}${refSuffix(reference)}`;
    return this.retrying(what, options, async () => {
      const res = await this.send(
        {
          method: 'HEAD',
          url: this.url(repository, 'manifests', reference),
          repository,
          access: 'pull',
          headers: { accept: MANIFEST_ACCEPT },
          what,
        },
        options,
      );
      if (res.status === 404) return undefined;
      if (!res.ok) throw await this.http.statusError(res, what, options);
      const headerDigest = res.headers.get('docker-content-digest') ?? undefined;
      const mediaType = contentType(res);
      const size = Number(res.headers.get('content-length') ?? NaN);
      if (isAnyDigest(reference) && headerDigest !== undefined && headerDigest !== reference) {
        throw this.digestMismatch(`HEAD manifest ${repository}@${reference}`, headerDigest);
      }
      const digest = isAnyDigest(reference) ? reference : headerDigest;
      if (digest !== undefined && mediaType !== undefined && Number.isSafeInteger(size) && size >= 0) {
        return { digest, mediaType, size };
      }
      // Some registries leave the digest (or type) out of HEAD answers: fetch and hash instead.
      const fetched = await this.fetchManifest(repository, reference, options);
      return fetched && { digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.bytes.length };
    });
  }

  async getManifest(
    repository: string,
    reference: string,
    options: ReadOptions = {},
  ): Promise<FetchedManifest | undefined> {
    checkRepository(repository);
    checkReference(reference);
    const what = `GET manifest ${repository}${refSuffix(reference)}`;
    return this.retrying(what, options, () => this.fetchManifest(repository, reference, options));
  }

  async putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
  ): Promise<string> {
    checkRepository(repository);
    checkReference(reference);
    const what = `PUT manifest ${repository}${refSuffix(reference)}`;
    if (bytes.length > this.maxManifestBytes) {
      throw new RegistryError(
        'TOO_LARGE',
        this.host,
        `${what}: ${bytes.length} bytes is over the ${this.maxManifestBytes}-byte manifest limit`,
      );
    }
    const digest = digestOf(bytes, isAnyDigest(reference) ? reference : 'sha256:');
    if (isAnyDigest(reference) && digest !== reference) throw this.digestMismatch(what, digest);
    return this.retrying(what, {}, async () => {
      const res = await this.send({
        method: 'PUT',
        url: this.url(repository, 'manifests', reference),
        repository,
        access: 'push',
        headers: { 'content-type': mediaType },
        body: bytes,
        what,
      });
      if (!res.ok) throw await this.http.statusError(res, what, {});
      await this.http.drain(res, what, {});
      const answered = res.headers.get('docker-content-digest');
      if (answered && sameAlgorithm(answered, digest) && answered !== digest) {
        throw this.digestMismatch(`${what} (registry stored ${answered})`, digest);
      }
      return digest;
    });
  }

  async getBlob(repository: string, digest: string, options: BlobReadOptions = {}): Promise<Buffer> {
    checkRepository(repository);
    checkDigest(digest);
    const { size } = options;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
      throw new InputError('REFERENCE_INVALID', 'size', `${excerpt(size)} is not a blob size`);
    }
    const what = `GET blob ${repository}@${digest}`;
    if (size !== undefined && size > this.maxBlobBytes) {
      // The descriptor is the registry's word too: it may not raise the client's own ceiling.
      throw new RegistryError(
        'TOO_LARGE',
        this.host,
        `${what}: the descriptor's ${size} bytes are over the ${this.maxBlobBytes}-byte blob limit`,
      );
    }
    return this.retrying(what, options, async () => {
      const res = await this.send(
        { method: 'GET', url: this.url(repository, 'blobs', digest), repository, access: 'pull', what },
        options,
      );
      if (!res.ok) throw await this.http.statusError(res, what, options);
      const bounds = size === undefined ? { limit: this.maxBlobBytes } : { limit: size, exact: true };
      const bytes = await this.http.read(res, what, bounds, options);
      const actual = digestOf(bytes, digest);
      if (actual !== digest) throw this.digestMismatch(what, actual);
      return bytes;
    });
  }

  async pushBlob(repository: string, bytes: Buffer): Promise<string> {
    checkRepository(repository);
    const digest = digestOf(bytes, 'sha256:');
    const what = `push blob ${repository}@${digest}`;
    return this.retrying(what, {}, async () => {
      const head = await this.send({
        method: 'HEAD',
        url: this.url(repository, 'blobs', digest),
        repository,
        access: 'push',
        what,
      });
      if (head.ok) return digest;
      if (head.status !== 404) throw await this.http.statusError(head, what, {});
      const start = await this.send({
        method: 'POST',
        url: `${this.url(repository, 'blobs', 'uploads')}/`,
        repository,
        access: 'push',
        headers: { 'content-length': '0' },
        what,
      });
      if (start.status !== 202) {
        throw start.ok
          ? new RegistryError(
              'PROTOCOL',
              this.host,
              `${what}: upload start answered ${start.status}, not 202`,
            )
          : await this.http.statusError(start, what, {});
      }
      await this.http.drain(start, what, {});
      const location = start.headers.get('location');
      if (!location) throw new RegistryError('PROTOCOL', this.host, `${what}: upload start has no Location`);
      const put = await this.send({
        method: 'PUT',
        url: this.guarded(what, () => uploadUrl(location, start.url || this.baseUrl, digest)),
        repository,
        access: 'push',
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
        what,
      });
      if (!put.ok) throw await this.http.statusError(put, what, {});
      await this.http.drain(put, what, {});
      return digest;
    });
  }

  async getReferrers(
    repository: string,
    digest: string,
    artifactType?: string,
    options: ReadOptions = {},
  ): Promise<ImageIndex | undefined> {
    checkRepository(repository);
    checkDigest(digest);
    const what = `GET referrers ${repository}@${digest}`;
    if (Date.now() < this.noReferrersApiUntil) return undefined;
    const noApi = (): undefined => {
      this.noReferrersApiUntil = Date.now() + this.referrersProbeTtlMs;
      return undefined;
    };
    return this.retrying(what, options, async () => {
      let url: string | undefined =
        this.url(repository, 'referrers', digest) +
        (artifactType !== undefined ? `?artifactType=${encodeURIComponent(artifactType)}` : '');
      const manifests: Descriptor[] = [];
      let filtered = artifactType === undefined;
      for (let page = 0; url !== undefined && page < MAX_REFERRER_PAGES; page++) {
        const res = await this.send(
          { method: 'GET', url, repository, access: 'pull', headers: { accept: MEDIA_TYPES.ociIndex }, what },
          options,
        );
        if (res.status === 404) {
          await this.http.drain(res, what, options);
          return noApi();
        }
        if (!res.ok) throw await this.http.statusError(res, what, options);
        const bytes = await this.http.read(res, what, { limit: this.maxManifestBytes }, options);
        const index = referrersIndex(bytes);
        // A registry without the API may answer the path with anything but an OCI index.
        if (index === undefined) return noApi();
        manifests.push(...index.manifests);
        filtered ||= (res.headers.get('oci-filters-applied') ?? '')
          .split(',')
          .some((f) => f.trim() === 'artifactType');
        const base: string = res.url || url;
        // The next page may be anywhere the registry says; `send` checks it like a redirect.
        url = this.guarded(what, () => nextLink(res.headers.get('link'), base));
      }
      const selected = filtered ? manifests : manifests.filter((m) => m.artifactType === artifactType);
      return { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: selected };
    });
  }

  private async fetchManifest(
    repository: string,
    reference: string,
    options: ReadOptions,
  ): Promise<FetchedManifest | undefined> {
    const what = `GET manifest ${repository}${refSuffix(reference)}`;
    const res = await this.send(
      {
        method: 'GET',
        url: this.url(repository, 'manifests', reference),
        repository,
        access: 'pull',
        headers: { accept: MANIFEST_ACCEPT },
        what,
      },
      options,
    );
    if (res.status === 404) {
      await this.http.drain(res, what, options);
      return undefined;
    }
    if (!res.ok) throw await this.http.statusError(res, what, options);
    const bytes = await this.http.read(res, what, { limit: this.maxManifestBytes }, options);
    const digest = digestOf(bytes, isAnyDigest(reference) ? reference : 'sha256:');
    if (isAnyDigest(reference) && digest !== reference) throw this.digestMismatch(what, digest);
    const answered = res.headers.get('docker-content-digest');
    if (answered && sameAlgorithm(answered, digest) && answered !== digest) {
      throw this.digestMismatch(`${what} (Docker-Content-Digest ${answered})`, digest);
    }
    const { manifest, mediaType } = this.parseManifest(bytes, contentType(res), what);
    return { digest, mediaType, bytes, manifest };
  }

  private parseManifest(
    bytes: Buffer,
    headerType: string | undefined,
    what: string,
  ): { manifest: ImageManifest | ImageIndex; mediaType: string } {
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new RegistryError('PROTOCOL', this.host, `${what}: manifest is not JSON`, { cause: err });
    }
    const bad = (why: string): RegistryError => new RegistryError('PROTOCOL', this.host, `${what}: ${why}`);
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

  /**
   * Retries `op` under the policy; the caller's signal stops the retries, an abort during a
   * backoff wait (Retry-After included) surfacing as ABORTED for `what`.
   */
  private async retrying<T>(what: string, options: ReadOptions, op: () => Promise<T>): Promise<T> {
    try {
      return await withRetry(op, this.retry, { onRetry: this.onRetry, signal: options.signal });
    } catch (err) {
      // withRetry throws the signal's reason, which says nothing of what was being read.
      if (options.signal?.aborted && !(err instanceof RegistryError)) throw this.http.aborted(what, err);
      throw err;
    }
  }

  /** `make()`, whose URL parsing of registry-given text fails as PROTOCOL rather than a TypeError. */
  private guarded<T>(what: string, make: () => T): T {
    try {
      return make();
    } catch (err) {
      throw new RegistryError('PROTOCOL', this.host, `${what}: the registry gave a malformed URL`, {
        cause: err,
      });
    }
  }

  private url(repository: string, kind: 'manifests' | 'blobs' | 'referrers', reference: string): string {
    return `${this.baseUrl}/v2/${repository}/${kind}/${reference}`;
  }

  /** Sends a request, answering one auth challenge; any other status is for the caller to judge. */
  private async send(request: RegistryRequest, options: ReadOptions = {}): Promise<Response> {
    const scope =
      request.repository !== undefined
        ? `repository:${request.repository}:${request.access === 'push' ? 'pull,push' : 'pull'}`
        : undefined;
    const sent = await this.authenticator.known(scope, request.access, request.what, options);
    const first = await this.http.follow(request, sent, options);
    if (first.res.status !== 401) return first.res;
    // A challenge from elsewhere (the blob storage a redirect led to) could name any realm: not ours to answer.
    if (first.url.origin !== this.http.origin) return first.res;
    const challenges = parseChallenges(first.res.headers.get('www-authenticate') ?? '');
    const answer = await this.authenticator.answer(challenges, scope, sent, request.what, options);
    if (answer === undefined) return first.res;
    await this.http.drain(first.res, request.what, options);
    return (await this.http.follow(request, answer, options)).res;
  }

  private digestMismatch(what: string, actual: string): RegistryError {
    return new RegistryError('DIGEST_MISMATCH', this.host, `${what}: content has digest ${actual}`);
  }
}

/** One client per registry host, sharing tokens, ECR credentials and (through undici) connections. */
export class RegistryClients implements RegistryClientFactory {
  private readonly registries: readonly RegistryConfig[];
  private readonly options: RegistryClientOptions;
  private readonly clients = new Map<string, HttpRegistryClient>();

  constructor(registries: readonly RegistryConfig[], options: RegistryClientOptions = {}) {
    this.registries = registries;
    this.options = { ...options, ecrCredentials: options.ecrCredentials ?? new EcrAuthorizationTokens() };
  }

  client(host: string): HttpRegistryClient {
    const key = host.toLowerCase();
    let client = this.clients.get(key);
    if (!client) {
      client = new HttpRegistryClient(resolveRegistry(host, this.registries), this.options);
      this.clients.set(key, client);
    }
    return client;
  }
}

function checkRepository(repository: string): void {
  if (!isRepository(repository)) {
    throw new InputError(
      'REFERENCE_INVALID',
      'repository',
      `"${excerpt(repository)}" is not a repository name`,
    );
  }
}

function checkReference(reference: string): void {
  if (!isTag(reference) && !isAnyDigest(reference)) {
    throw new InputError(
      'REFERENCE_INVALID',
      'reference',
      `"${excerpt(reference)}" is neither a tag nor a digest`,
    );
  }
}

function checkDigest(digest: string): void {
  if (!isAnyDigest(digest)) {
    throw new InputError('REFERENCE_INVALID', 'digest', `"${excerpt(digest)}" is not a digest`);
  }
}

const refSuffix = (reference: string): string => (isAnyDigest(reference) ? `@${reference}` : `:${reference}`);

const HASHES: Readonly<Record<string, string>> = { sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };

/** The digest of `bytes` with the algorithm of `like` (`sha256:...`). */
function digestOf(bytes: Buffer, like: string): string {
  const algorithm = like.slice(0, like.indexOf(':'));
  const hash = HASHES[algorithm];
  if (hash === undefined) {
    throw new InputError('REFERENCE_INVALID', 'digest', `digest algorithm "${algorithm}" is not supported`);
  }
  return `${algorithm}:${createHash(hash).update(bytes).digest('hex')}`;
}

const sameAlgorithm = (a: string, b: string): boolean =>
  a.slice(0, a.indexOf(':')) === b.slice(0, b.indexOf(':'));

function contentType(res: Response): string | undefined {
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
function nextLink(link: string | null, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const match = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (match?.[1] !== undefined && /rel="?next"?/i.test(match[2] ?? '')) return new URL(match[1], base).href;
  }
  return undefined;
}

function referrersIndex(bytes: Buffer): ImageIndex | undefined {
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

function isDescriptor(value: unknown): boolean {
  return (
    isObject(value) &&
    typeof value['mediaType'] === 'string' &&
    isAnyDigest(value['digest']) &&
    typeof value['size'] === 'number' &&
    Number.isSafeInteger(value['size']) &&
    value['size'] >= 0
  );
}

const excerpt = (value: unknown): string => String(value).slice(0, 200);
