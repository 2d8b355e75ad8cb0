import { ECRClient, GetAuthorizationTokenCommand, type ECRClientConfig } from '@aws-sdk/client-ecr';
import { ConfigError, RegistryError, describeError } from '../core/errors';

/** A username and password for HTTP Basic auth (and for bearer-token requests). */
export interface BasicCredentials {
  readonly username: string;
  readonly password: string;
}

/** Which ECR registry needs credentials, and where its API is. */
export interface EcrTokenRequest {
  /** The registry host, for error messages. */
  readonly host: string;
  /** The AWS region; `undefined` takes it from the host name, then from the environment. */
  readonly region: string | undefined;
  /** An ECR API endpoint override (VPC endpoint, or a local stand-in in tests). */
  readonly endpoint: string | undefined;
}

/** Hands out Basic credentials for Amazon ECR registries. */
export interface EcrCredentialsProvider {
  credentials(request: EcrTokenRequest): Promise<BasicCredentials>;
}

const ECR_HOST = /^([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/i;

/** The account and region of an ECR registry host, or `undefined` for any other host. */
export function parseEcrHost(host: string): { accountId: string; region: string } | undefined {
  const match = ECR_HOST.exec(host);
  if (!match?.[1] || !match[2]) return undefined;
  return { accountId: match[1], region: match[2].toLowerCase() };
}

/** How `EcrAuthorizationTokens` talks to ECR and how long it keeps tokens. */
export interface EcrAuthorizationTokensOptions {
  /** Passed to every `ECRClient` (credentials, request handler...). Retries default to 1 attempt: the registry client retries. */
  readonly clientConfig?: Omit<ECRClientConfig, 'region' | 'endpoint'>;
  /** Tokens are renewed this long before they expire; default 5 minutes. */
  readonly refreshMarginMs?: number;
  readonly now?: () => number;
}

interface CachedCredentials {
  readonly credentials: BasicCredentials;
  readonly renewAt: number;
}

const DEFAULT_REFRESH_MARGIN_MS = 5 * 60_000;
// ECR tokens live 12 hours; when the answer has no expiry, keep it for a safe fraction of that.
const DEFAULT_LIFETIME_MS = 60 * 60_000;

/**
 * Credentials from ECR `GetAuthorizationToken` (base64 `AWS:<password>`), one call per region and
 * endpoint, reused until 5 minutes before they expire.
 */
export class EcrAuthorizationTokens implements EcrCredentialsProvider {
  private readonly clientConfig: Omit<ECRClientConfig, 'region' | 'endpoint'>;
  private readonly refreshMarginMs: number;
  private readonly now: () => number;
  private readonly clients = new Map<string, ECRClient>();
  private readonly cache = new Map<string, CachedCredentials>();
  private readonly pending = new Map<string, Promise<BasicCredentials>>();

  constructor(options: EcrAuthorizationTokensOptions = {}) {
    this.clientConfig = { maxAttempts: 1, ...options.clientConfig };
    this.refreshMarginMs = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
    this.now = options.now ?? Date.now;
  }

  async credentials(request: EcrTokenRequest): Promise<BasicCredentials> {
    const region = request.region ?? parseEcrHost(request.host)?.region;
    const key = `${region ?? ''}|${request.endpoint ?? ''}`;
    const cached = this.cache.get(key);
    if (cached && cached.renewAt > this.now()) return cached.credentials;
    // Concurrent requests for one registry share one GetAuthorizationToken call.
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.fetch(key, region, request).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  private async fetch(
    key: string,
    region: string | undefined,
    request: EcrTokenRequest,
  ): Promise<BasicCredentials> {
    let client = this.clients.get(key);
    if (!client) {
      client = new ECRClient({ ...this.clientConfig, region, endpoint: request.endpoint });
      this.clients.set(key, client);
    }
    let data;
    try {
      const out = await client.send(new GetAuthorizationTokenCommand({}));
      data = out.authorizationData?.[0];
    } catch (err) {
      throw ecrError(err, request.host);
    }
    const credentials = decodeAuthorizationToken(data?.authorizationToken, request.host);
    const now = this.now();
    const expiresAt = data?.expiresAt?.getTime() ?? now + DEFAULT_LIFETIME_MS;
    this.cache.set(key, { credentials, renewAt: expiresAt - this.refreshMarginMs });
    return credentials;
  }
}

/** Decodes ECR's base64 `user:password` token. */
export function decodeAuthorizationToken(token: string | undefined, host: string): BasicCredentials {
  const decoded = token ? Buffer.from(token, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) {
    throw new RegistryError(
      'PROTOCOL',
      host,
      'ECR GetAuthorizationToken returned no usable authorization token',
    );
  }
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

const THROTTLED = new Set([
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
]);
const UNAUTHENTICATED = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignature',
  'ExpiredTokenException',
  'ExpiredToken',
  'InvalidClientTokenId',
  'MissingAuthenticationToken',
  'CredentialsProviderError',
]);
/** Converts an AWS SDK error from ECR into a RegistryError (or a ConfigError when no region is known). */
export function ecrError(err: unknown, host: string): RegistryError | ConfigError {
  if (err instanceof RegistryError || err instanceof ConfigError) return err;
  const e = (err ?? {}) as {
    name?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  const message = `ECR GetAuthorizationToken failed: ${name ? `${name}: ` : ''}${describeError(err)}`;
  const options = { cause: err, status };
  if (/region is missing/i.test(e.message ?? '')) {
    return new ConfigError(
      'CONFIG_INVALID',
      `${host}: no AWS region for ECR; set the registry's auth.region or AWS_REGION`,
      { cause: err },
    );
  }
  if (THROTTLED.has(name) || status === 429) return new RegistryError('RATE_LIMITED', host, message, options);
  if (UNAUTHENTICATED.has(name) || status === 401)
    return new RegistryError('UNAUTHORIZED', host, message, options);
  if (name === 'AccessDeniedException' || status === 403)
    return new RegistryError('DENIED', host, message, options);
  if (name === 'ServerException' || (status !== undefined && status >= 500)) {
    return new RegistryError('UNAVAILABLE', host, message, options);
  }
  // No HTTP status: the request never got an answer (refused, reset, timed out).
  if (status === undefined) return new RegistryError('UNREACHABLE', host, message, options);
  return new RegistryError('PROTOCOL', host, message, options);
}
