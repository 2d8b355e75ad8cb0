import { createHash } from 'node:crypto';
import type { RegistryAuth, RegistryConfig } from '../config/types';
import { InputError, RegistryError, describeError } from '../core/errors';
import { isAnyDigest, isRepository, isTag } from '../core/reference';
import { DEFAULT_RETRY, withRetry, type RetryObserver, type RetryPolicy } from '../core/retry';
import {
  EcrAuthorizationTokens,
  parseEcrHost,
  type BasicCredentials,
  type EcrCredentialsProvider,
} from './ecr-auth';
import {
  MANIFEST_MEDIA_TYPES,
  MEDIA_TYPES,
  isIndexMediaType,
  type Descriptor,
  type FetchedManifest,
  type ImageIndex,
  type ImageManifest,
  type ManifestHead,
  type RegistryClient,
  type RegistryClientFactory,
} from './types';

/**
 * A distribution-spec registry client over global `fetch` (undici, keep-alive): anonymous, Basic,
 * bearer-token and ECR auth, digest-checked manifests and blobs, size caps, per-request timeouts,
 * bounded retries with full jitter that honour Retry-After.
 */

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
  /** Largest blob read; default 16 MiB (Signet reads configs and signature payloads, never layers). */
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
}

/** The registry settings a client needs: the subset of `RegistryConfig` about reaching it. */
export type RegistryEndpoint = Pick<RegistryConfig, 'host' | 'insecure' | 'auth'>;

/** One challenge of a `WWW-Authenticate` header: lower-cased scheme and parameter names. */
export interface AuthChallenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

const MiB = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_MANIFEST_BYTES = 4 * MiB;
const DEFAULT_MAX_BLOB_BYTES = 16 * MiB;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_REDIRECTS = 5;
const DEFAULT_REFERRERS_PROBE_TTL_MS = 10 * 60_000;
const MAX_REFERRER_PAGES = 20;
const DEFAULT_TOKEN_LIFETIME_S = 60;
const TOKEN_MARGIN_MS = 10_000;
const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

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

/**
 * Parses a `WWW-Authenticate` header (RFC 7235): one or more challenges, each a scheme and
 * comma-separated `name=value` parameters whose values may be quoted strings holding commas,
 * `=` and backslash escapes. Malformed trailing input is ignored rather than fatal.
 */
export function parseChallenges(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let i = 0;
  const at = (pattern: RegExp): string | undefined => {
    pattern.lastIndex = i;
    const match = pattern.exec(header);
    if (!match) return undefined;
    i = pattern.lastIndex;
    return match[0];
  };
  const quoted = (): string => {
    let value = '';
    for (i++; i < header.length && header[i] !== '"'; i++) {
      if (header[i] === '\\' && i + 1 < header.length) i++;
      value += header[i];
    }
    i++;
    return value;
  };
  while (i < header.length) {
    at(SEPARATORS);
    const scheme = at(TOKEN);
    if (scheme === undefined) break;
    const params: Record<string, string> = {};
    challenges.push({ scheme: scheme.toLowerCase(), params });
    at(SPACES);
    // `Basic dXNlcjpwYXNz` (a token68) carries no parameters: nothing to keep.
    if (at(TOKEN68) !== undefined) continue;
    while (i < header.length) {
      const start = i;
      at(SEPARATORS);
      const name = at(TOKEN);
      at(SPACES);
      if (name === undefined || header[i] !== '=') {
        i = start; // the next challenge's scheme
        break;
      }
      i++;
      at(SPACES);
      // Unquoted values should be tokens; be lenient with `realm=https://x/token` as some servers send.
      params[name.toLowerCase()] = header[i] === '"' ? quoted() : (at(UNQUOTED) ?? '');
    }
  }
  return challenges;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*(?=\s*(?:,|$))/y;
const UNQUOTED = /[^\s,"]+/y;
const SEPARATORS = /[\s,]*/y;
const SPACES = /[ \t]*/y;

/** A Retry-After header (delta seconds or HTTP date) in milliseconds from `now`; `undefined` when absent or unreadable. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

type Access = 'pull' | 'push';

interface RegistryRequest {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST';
  readonly url: string;
  /** Scopes the bearer token; `undefined` for `/v2/`. */
  readonly repository: string | undefined;
  readonly access: Access;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  /** For messages: `GET manifest team-a/app:v1`. */
  readonly what: string;
}

interface CachedToken {
  readonly token: string;
  readonly renewAt: number;
}

/** A RegistryClient for one host. Share one per host (see `RegistryClients`): it caches tokens. */
export class HttpRegistryClient implements RegistryClient {
  readonly host: string;
  readonly baseUrl: string;
  private readonly auth: RegistryAuth;
  private readonly retry: RetryPolicy;
  private readonly onRetry: RetryObserver | undefined;
  private readonly timeoutMs: number;
  private readonly maxManifestBytes: number;
  private readonly maxBlobBytes: number;
  private ecrCredentials: EcrCredentialsProvider | undefined;
  private readonly userAgent: string;
  private readonly referrersProbeTtlMs: number;
  /** Until when this registry is taken to have no referrers API (epoch ms). */
  private noReferrersApiUntil = 0;
  /** Learned from a `Basic` challenge: send credentials up front from then on. */
  private basicChallenged = false;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pendingTokens = new Map<string, Promise<CachedToken>>();

  constructor(registry: RegistryEndpoint, options: RegistryClientOptions = {}) {
    this.host = registry.host;
    this.auth = registry.auth;
    this.baseUrl = registryBaseUrl(registry.host, registry.insecure);
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.onRetry = options.onRetry;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.maxBlobBytes = options.maxBlobBytes ?? DEFAULT_MAX_BLOB_BYTES;
    this.ecrCredentials = options.ecrCredentials;
    this.userAgent = options.userAgent ?? 'signet';
    this.referrersProbeTtlMs = options.referrersProbeTtlMs ?? DEFAULT_REFERRERS_PROBE_TTL_MS;
  }

  async headManifest(repository: string, reference: string): Promise<ManifestHead | undefined> {
    checkRepository(repository);
    checkReference(reference);
    return this.retrying(async () => {
      const res = await this.send({
        method: 'HEAD',
        url: this.url(repository, 'manifests', reference),
        repository,
        access: 'pull',
        headers: { accept: MANIFEST_ACCEPT },
        what: `HEAD manifest ${repository}${refSuffix(reference)}`,
      });
      if (res.status === 404) return undefined;
      if (!res.ok) throw await this.statusError(res, `HEAD manifest ${repository}${refSuffix(reference)}`);
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
      const fetched = await this.fetchManifest(repository, reference);
      return fetched && { digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.bytes.length };
    });
  }

  async getManifest(repository: string, reference: string): Promise<FetchedManifest | undefined> {
    checkRepository(repository);
    checkReference(reference);
    return this.retrying(() => this.fetchManifest(repository, reference));
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
    return this.retrying(async () => {
      const res = await this.send({
        method: 'PUT',
        url: this.url(repository, 'manifests', reference),
        repository,
        access: 'push',
        headers: { 'content-type': mediaType },
        body: bytes,
        what,
      });
      if (!res.ok) throw await this.statusError(res, what);
      await drain(res);
      const answered = res.headers.get('docker-content-digest');
      if (answered && sameAlgorithm(answered, digest) && answered !== digest) {
        throw this.digestMismatch(`${what} (registry stored ${answered})`, digest);
      }
      return digest;
    });
  }

  async getBlob(repository: string, digest: string): Promise<Buffer> {
    checkRepository(repository);
    checkDigest(digest);
    const what = `GET blob ${repository}@${digest}`;
    return this.retrying(async () => {
      const res = await this.send({
        method: 'GET',
        url: this.url(repository, 'blobs', digest),
        repository,
        access: 'pull',
        what,
      });
      if (!res.ok) throw await this.statusError(res, what);
      const bytes = await this.read(res, this.maxBlobBytes, what);
      const actual = digestOf(bytes, digest);
      if (actual !== digest) throw this.digestMismatch(what, actual);
      return bytes;
    });
  }

  async pushBlob(repository: string, bytes: Buffer): Promise<string> {
    checkRepository(repository);
    const digest = digestOf(bytes, 'sha256:');
    const what = `push blob ${repository}@${digest}`;
    return this.retrying(async () => {
      const head = await this.send({
        method: 'HEAD',
        url: this.url(repository, 'blobs', digest),
        repository,
        access: 'push',
        what,
      });
      if (head.ok) return digest;
      if (head.status !== 404) throw await this.statusError(head, what);
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
          : await this.statusError(start, what);
      }
      await drain(start);
      const location = start.headers.get('location');
      if (!location) throw new RegistryError('PROTOCOL', this.host, `${what}: upload start has no Location`);
      const put = await this.send({
        method: 'PUT',
        url: uploadUrl(location, start.url || this.baseUrl, digest),
        repository,
        access: 'push',
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
        what,
      });
      if (!put.ok) throw await this.statusError(put, what);
      await drain(put);
      return digest;
    });
  }

  async getReferrers(
    repository: string,
    digest: string,
    artifactType?: string,
  ): Promise<ImageIndex | undefined> {
    checkRepository(repository);
    checkDigest(digest);
    const what = `GET referrers ${repository}@${digest}`;
    if (Date.now() < this.noReferrersApiUntil) return undefined;
    const noApi = (): undefined => {
      this.noReferrersApiUntil = Date.now() + this.referrersProbeTtlMs;
      return undefined;
    };
    return this.retrying(async () => {
      let url: string | undefined =
        this.url(repository, 'referrers', digest) +
        (artifactType !== undefined ? `?artifactType=${encodeURIComponent(artifactType)}` : '');
      const manifests: Descriptor[] = [];
      let filtered = artifactType === undefined;
      for (let page = 0; url !== undefined && page < MAX_REFERRER_PAGES; page++) {
        const res = await this.send({
          method: 'GET',
          url,
          repository,
          access: 'pull',
          headers: { accept: MEDIA_TYPES.ociIndex },
          what,
        });
        if (res.status === 404) {
          await drain(res);
          return noApi();
        }
        if (!res.ok) throw await this.statusError(res, what);
        const bytes = await this.read(res, this.maxManifestBytes, what);
        const index = referrersIndex(bytes);
        // A registry without the API may answer the path with anything but an OCI index.
        if (index === undefined) return noApi();
        manifests.push(...index.manifests);
        filtered ||= (res.headers.get('oci-filters-applied') ?? '')
          .split(',')
          .some((f) => f.trim() === 'artifactType');
        url = nextLink(res.headers.get('link'), res.url || url);
      }
      const selected = filtered ? manifests : manifests.filter((m) => m.artifactType === artifactType);
      return { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: selected };
    });
  }

  private async fetchManifest(repository: string, reference: string): Promise<FetchedManifest | undefined> {
    const what = `GET manifest ${repository}${refSuffix(reference)}`;
    const res = await this.send({
      method: 'GET',
      url: this.url(repository, 'manifests', reference),
      repository,
      access: 'pull',
      headers: { accept: MANIFEST_ACCEPT },
      what,
    });
    if (res.status === 404) {
      await drain(res);
      return undefined;
    }
    if (!res.ok) throw await this.statusError(res, what);
    const bytes = await this.read(res, this.maxManifestBytes, what);
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

  private retrying<T>(op: () => Promise<T>): Promise<T> {
    return withRetry(op, this.retry, { onRetry: this.onRetry });
  }

  private url(repository: string, kind: 'manifests' | 'blobs' | 'referrers', reference: string): string {
    return `${this.baseUrl}/v2/${repository}/${kind}/${reference}`;
  }

  /** Sends a request, answering one auth challenge; any other status is for the caller to judge. */
  private async send(request: RegistryRequest): Promise<Response> {
    const scope =
      request.repository !== undefined
        ? `repository:${request.repository}:${request.access === 'push' ? 'pull,push' : 'pull'}`
        : undefined;
    const sent = await this.knownAuthorization(scope, request.access);
    const res = await this.sendFollowing(request, sent);
    if (res.status !== 401) return res;
    const challenges = parseChallenges(res.headers.get('www-authenticate') ?? '');
    const answer = await this.answerChallenge(challenges, scope, sent, request.what);
    if (answer === undefined) return res;
    await drain(res);
    return this.sendFollowing(request, answer);
  }

  /** An Authorization header we can send before being challenged. */
  private async knownAuthorization(scope: string | undefined, access: Access): Promise<string | undefined> {
    if (this.basicChallenged) {
      const credentials = await this.credentials();
      return credentials && basicHeader(credentials);
    }
    // A push token also covers pulls.
    const keys =
      access === 'pull' && scope !== undefined ? [scope, scope.replace(/:pull$/, ':pull,push')] : [scope];
    const now = Date.now();
    for (const key of keys) {
      const cached = this.tokens.get(key ?? '');
      if (cached && cached.renewAt > now) return `Bearer ${cached.token}`;
    }
    return undefined;
  }

  private async answerChallenge(
    challenges: readonly AuthChallenge[],
    scope: string | undefined,
    sent: string | undefined,
    what: string,
  ): Promise<string | undefined> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      const realm = bearer.params['realm'];
      if (!realm) throw new RegistryError('PROTOCOL', this.host, `${what}: Bearer challenge without a realm`);
      const key = scope ?? bearer.params['scope'] ?? '';
      const cached = this.tokens.get(key);
      // A token we just sent was refused: it was revoked or lacks a scope; ask once more.
      if (cached && sent === `Bearer ${cached.token}`) this.tokens.delete(key);
      else if (cached && cached.renewAt > Date.now()) return `Bearer ${cached.token}`;
      const asked = bearer.params['scope'];
      const scopes = [scope, asked !== undefined && !covers(scope, asked) ? asked : undefined].filter(
        (s): s is string => !!s,
      );
      const token = await this.token(key, realm, bearer.params['service'], scopes);
      return `Bearer ${token.token}`;
    }
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (basic && sent === undefined) {
      const credentials = await this.credentials();
      if (credentials === undefined) return undefined;
      this.basicChallenged = true;
      return basicHeader(credentials);
    }
    return undefined;
  }

  /** One token request per key at a time; the answer is cached until shortly before it expires. */
  private token(
    key: string,
    realm: string,
    service: string | undefined,
    scopes: readonly string[],
  ): Promise<CachedToken> {
    let pending = this.pendingTokens.get(key);
    if (!pending) {
      pending = this.fetchToken(realm, service, scopes)
        .then((token) => {
          this.tokens.set(key, token);
          return token;
        })
        .finally(() => this.pendingTokens.delete(key));
      this.pendingTokens.set(key, pending);
    }
    return pending;
  }

  private async fetchToken(
    realm: string,
    service: string | undefined,
    scopes: readonly string[],
  ): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch (err) {
      throw new RegistryError('PROTOCOL', this.host, `token realm "${realm}" is not a URL`, { cause: err });
    }
    if (service !== undefined) url.searchParams.set('service', service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const credentials = await this.credentials();
    const what = `GET token ${url.origin}${url.pathname} for ${scopes.join(' ') || 'registry'}`;
    const res = await this.fetchOnce(
      'GET',
      url.href,
      { 'user-agent': this.userAgent, ...(credentials ? { authorization: basicHeader(credentials) } : {}) },
      undefined,
      what,
    );
    if (!res.ok) throw await this.statusError(res, what);
    const body = await this.read(res, MAX_ERROR_BODY_BYTES, what);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new RegistryError('PROTOCOL', this.host, `${what}: answer is not JSON`, { cause: err });
    }
    const token = isObject(json) ? (json['token'] ?? json['access_token']) : undefined;
    if (typeof token !== 'string' || token.length === 0) {
      throw new RegistryError('PROTOCOL', this.host, `${what}: answer has no token`);
    }
    const expiresIn =
      isObject(json) && typeof json['expires_in'] === 'number' && json['expires_in'] > 0
        ? json['expires_in']
        : DEFAULT_TOKEN_LIFETIME_S;
    const lifetimeMs = expiresIn * 1000;
    return { token, renewAt: Date.now() + Math.max(lifetimeMs - TOKEN_MARGIN_MS, lifetimeMs / 2) };
  }

  private async credentials(): Promise<BasicCredentials | undefined> {
    switch (this.auth.$case) {
      case 'anonymous':
        return undefined;
      case 'basic':
        return { username: this.auth.username, password: this.auth.password };
      case 'ecr':
        this.ecrCredentials ??= new EcrAuthorizationTokens();
        return this.ecrCredentials.credentials({
          host: this.host,
          region: this.auth.region,
          endpoint: this.auth.endpoint,
        });
    }
  }

  /** Follows GET/HEAD redirects (blob storage), dropping credentials when the origin changes. */
  private async sendFollowing(
    request: RegistryRequest,
    authorization: string | undefined,
  ): Promise<Response> {
    let url = request.url;
    const origin = new URL(this.baseUrl).origin;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...request.headers };
      if (authorization !== undefined && new URL(url).origin === origin)
        headers['authorization'] = authorization;
      const res = await this.fetchOnce(request.method, url, headers, request.body, request.what);
      const location = res.headers.get('location');
      if (!REDIRECT_STATUSES.has(res.status) || location === null) return res;
      if (request.method !== 'GET' && request.method !== 'HEAD') return res;
      if (hop >= MAX_REDIRECTS) {
        throw new RegistryError(
          'PROTOCOL',
          this.host,
          `${request.what}: more than ${MAX_REDIRECTS} redirects`,
        );
      }
      await drain(res);
      url = new URL(location, url).href;
    }
  }

  private async fetchOnce(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    what: string,
  ): Promise<Response> {
    try {
      return await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw this.networkError(err, what);
    }
  }

  private networkError(err: unknown, what: string): RegistryError {
    if (err instanceof RegistryError) return err;
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    const cause = (err as { cause?: unknown }).cause;
    const detail = timedOut
      ? `timed out after ${this.timeoutMs} ms`
      : cause instanceof Error
        ? `${describeError(err)}: ${(cause as { code?: string }).code ?? describeError(cause)}`
        : describeError(err);
    return new RegistryError('UNREACHABLE', this.host, `${what}: ${detail}`, { cause: err });
  }

  /** Reads a body up to `limit` bytes; more is TOO_LARGE. */
  private async read(res: Response, limit: number, what: string): Promise<Buffer> {
    const declared = Number(res.headers.get('content-length') ?? NaN);
    const tooLarge = (size: string): RegistryError =>
      new RegistryError('TOO_LARGE', this.host, `${what}: ${size} is over the ${limit}-byte limit`);
    if (Number.isFinite(declared) && declared > limit) {
      await res.body?.cancel().catch(() => undefined);
      throw tooLarge(`${declared} bytes`);
    }
    if (res.body === null) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let total = 0;
    const reader = res.body.getReader();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > limit) {
          await reader.cancel().catch(() => undefined);
          throw tooLarge('the body');
        }
        chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      }
    } catch (err) {
      throw this.networkError(err, what);
    }
    return Buffer.concat(chunks, total);
  }

  /** The RegistryError for a non-success answer, with the distribution error codes in the message. */
  private async statusError(res: Response, what: string): Promise<RegistryError> {
    let detail = '';
    let codes: readonly string[] = [];
    try {
      const body = await this.read(res, MAX_ERROR_BODY_BYTES, what);
      ({ detail, codes } = describeErrorBody(body));
    } catch {
      // the status says enough
    }
    const status = res.status;
    const message = `${what}: HTTP ${status}${detail ? ` ${detail}` : ''}`;
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    const options = { status, retryAfterMs };
    if (status === 401) return new RegistryError('UNAUTHORIZED', this.host, message, options);
    if (status === 403) return new RegistryError('DENIED', this.host, message, options);
    if (status === 404) return new RegistryError('NOT_FOUND', this.host, message, options);
    if (status === 405) return new RegistryError('NOT_ALLOWED', this.host, message, options);
    if (status === 413) return new RegistryError('TOO_LARGE', this.host, message, options);
    if ((status === 400 || status === 404) && codes.some((c) => BLOB_UNKNOWN_CODES.has(c)))
      return new RegistryError('BLOB_UNKNOWN', this.host, message, options);
    if (status === 429) return new RegistryError('RATE_LIMITED', this.host, message, options);
    if (status === 408 || status >= 500) return new RegistryError('UNAVAILABLE', this.host, message, options);
    return new RegistryError('PROTOCOL', this.host, message, options);
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

/** Whether token scope `ours` grants everything `theirs` asks (`repository:name:pull,push`). */
function covers(ours: string | undefined, theirs: string): boolean {
  if (ours === undefined) return false;
  const split = (scope: string): [string, string[]] => {
    const colon = scope.lastIndexOf(':');
    return [scope.slice(0, colon), scope.slice(colon + 1).split(',')];
  };
  const [resource, actions] = split(ours);
  const [wanted, wantedActions] = split(theirs);
  return resource === wanted && wantedActions.every((a) => actions.includes(a));
}

const sameAlgorithm = (a: string, b: string): boolean =>
  a.slice(0, a.indexOf(':')) === b.slice(0, b.indexOf(':'));

const basicHeader = (c: BasicCredentials): string =>
  `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;

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

/** `CODE: message; CODE: message` from a distribution error body, else a short excerpt of the body. */
/** Distribution error codes meaning a manifest names a blob the repository does not link. */
const BLOB_UNKNOWN_CODES: ReadonlySet<string> = new Set(['MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN']);

/** The distribution error body as one line, and its error codes. */
function describeErrorBody(body: Buffer): { detail: string; codes: readonly string[] } {
  const text = body.toString('utf8').trim();
  if (!text) return { detail: '', codes: [] };
  try {
    const json: unknown = JSON.parse(text);
    if (isObject(json) && Array.isArray(json['errors'])) {
      const errors = json['errors'].filter(isObject);
      return {
        detail: errors
          .map((e) => [e['code'], e['message']].filter((v) => typeof v === 'string' && v).join(': '))
          .filter(Boolean)
          .join('; '),
        codes: errors.map((e) => e['code']).filter((c): c is string => typeof c === 'string'),
      };
    }
  } catch {
    // not JSON
  }
  return { detail: text.length > 200 ? `${text.slice(0, 200)}…` : text, codes: [] };
}

async function drain(res: Response): Promise<void> {
  // Reading a small body to its end keeps the keep-alive connection reusable.
  try {
    const reader = res.body?.getReader();
    if (!reader) return;
    let total = 0;
    while (true) {
      const { done, value } = await reader.read();
      if (done) return;
      total += value.byteLength;
      if (total > MAX_ERROR_BODY_BYTES) {
        await reader.cancel();
        return;
      }
    }
  } catch {
    // the connection is gone; nothing to keep
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

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
