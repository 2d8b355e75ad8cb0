import { InputError, RegistryError } from '../core/errors';
import { isAnyDigest } from '../core/reference';
import { DEFAULT_RETRY, withRetry, type RetryObserver, type RetryPolicy } from '../core/retry';
import { RegistryAuthenticator, parseChallenges, type Access } from './auth';
import { registryBaseUrl, type RegistryEndpoint } from './endpoint';
import type { RegistryClientOptions } from './options';
import { RegistryHttp, systemLookup, type HttpRequest } from './http';
import {
  MANIFEST_ACCEPT,
  checkDigest,
  checkReference,
  checkRepository,
  contentType,
  digestOf,
  excerpt,
  nextLink,
  parseManifest,
  refSuffix,
  referrersIndex,
  sameAlgorithm,
  uploadUrl,
} from './manifests';
import {
  MEDIA_TYPES,
  type BlobReadOptions,
  type Descriptor,
  type FetchedManifest,
  type ImageIndex,
  type ManifestHead,
  type ReadOptions,
  type RegistryClient,
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
export { registryBaseUrl, resolveRegistry, type RegistryEndpoint } from './endpoint';
export { parseManifest, uploadUrl } from './manifests';
export type { RegistryClientOptions } from './options';

const MiB = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_MANIFEST_BYTES = 4 * MiB;
const DEFAULT_MAX_BLOB_BYTES = 16 * MiB;
const DEFAULT_REFERRERS_PROBE_TTL_MS = 10 * 60_000;
const MAX_REFERRER_PAGES = 20;
interface RegistryRequest extends HttpRequest {
  /** Scopes the bearer token; `undefined` for `/v2/`. */
  readonly repository: string | undefined;
  readonly access: Access;
  /** A token scope of another kind than a repository's (`registry:catalog:*`). */
  readonly scope?: string;
}

/** One page of a listing endpoint: its parsed JSON body and the next page's URL, if any. */
export interface ListPage {
  readonly json: unknown;
  readonly next: string | undefined;
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
      telemetry: options.telemetry,
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

  /**
   * One page of a listing endpoint, given by its path and query (`/v2/_catalog?n=100`, the first
   * page) or by the URL a `Link` header named (the next ones): the parsed JSON body and the next
   * page's URL. The catalog takes the `registry:catalog:*` token scope, tags the repository's pull
   * scope. A 404 (an unknown repository) reads as an empty page.
   */
  async listPage(page: string, repository: string | undefined, options: ReadOptions = {}): Promise<ListPage> {
    if (repository !== undefined) checkRepository(repository);
    const url = page.startsWith('/') ? `${this.baseUrl}${page}` : page;
    const what = repository === undefined ? 'GET catalog' : `GET tags ${repository}`;
    return this.retrying(what, options, async () => {
      const res = await this.send(
        {
          method: 'GET',
          url,
          repository,
          access: 'pull',
          headers: { accept: 'application/json' },
          what,
          ...(repository === undefined ? { scope: 'registry:catalog:*' } : {}),
        },
        options,
      );
      if (res.status === 404) {
        await this.http.drain(res, what, options);
        return { json: undefined, next: undefined };
      }
      if (!res.ok) throw await this.http.statusError(res, what, options);
      const bytes = await this.http.read(res, what, { limit: this.maxManifestBytes }, options);
      let json: unknown;
      try {
        json = JSON.parse(bytes.toString('utf8'));
      } catch (err) {
        throw new RegistryError('PROTOCOL', this.host, `${what}: the answer is not JSON`, { cause: err });
      }
      // The next page may be anywhere the registry says; `send` checks it like a redirect.
      const next = this.guarded(what, () => nextLink(res.headers.get('link'), res.url || url));
      return { json, next };
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
    const { manifest, mediaType } = parseManifest(this.host, bytes, contentType(res), what);
    return { digest, mediaType, bytes, manifest };
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
      request.scope ??
      (request.repository !== undefined
        ? `repository:${request.repository}:${request.access === 'push' ? 'pull,push' : 'pull'}`
        : undefined);
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
