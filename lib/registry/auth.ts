/**
 * Registry authentication: `WWW-Authenticate` challenges answered with Basic credentials or with
 * a bearer token from the challenge's realm, which is checked before any credential leaves; tokens
 * cached per scope and fetched once for concurrent requests.
 */
import type { RegistryAuth } from '../config/types';
import { RegistryError } from '../core/errors';
import { EcrAuthorizationTokens, type BasicCredentials, type EcrCredentialsProvider } from './ecr-auth';
import { isObject } from '../core/json';
import { MAX_ERROR_BODY_BYTES, isCallerStop, originOf, type RegistryHttp } from './http';
import type { ReadOptions } from './types';

/** One challenge of a `WWW-Authenticate` header: lower-cased scheme and parameter names. */
export interface AuthChallenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** What a request does to a repository, which decides the token scope it needs. */
export type Access = 'pull' | 'push';

const DEFAULT_TOKEN_LIFETIME_S = 60;
const TOKEN_MARGIN_MS = 10_000;

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

interface CachedToken {
  readonly token: string;
  readonly renewAt: number;
}

/** Decides the Authorization header of a registry's requests, and answers its challenges. */
export class RegistryAuthenticator {
  private readonly host: string;
  private readonly auth: RegistryAuth;
  private readonly http: RegistryHttp;
  private ecrCredentials: EcrCredentialsProvider | undefined;
  /** Learned from a `Basic` challenge: send credentials up front from then on. */
  private basicChallenged = false;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pendingTokens = new Map<string, Promise<CachedToken>>();

  constructor(
    host: string,
    auth: RegistryAuth,
    http: RegistryHttp,
    ecrCredentials: EcrCredentialsProvider | undefined,
  ) {
    this.host = host;
    this.auth = auth;
    this.http = http;
    this.ecrCredentials = ecrCredentials;
  }

  /** An Authorization header we can send before being challenged. */
  async known(
    scope: string | undefined,
    access: Access,
    what: string,
    options: ReadOptions,
  ): Promise<string | undefined> {
    if (this.basicChallenged) {
      const credentials = await this.credentials(what, options);
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

  /** The Authorization header answering a 401's challenges; `undefined` when there is no better one to send. */
  async answer(
    challenges: readonly AuthChallenge[],
    scope: string | undefined,
    sent: string | undefined,
    what: string,
    options: ReadOptions,
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
      const token = await this.token(key, realm, bearer.params['service'], scopes, what, options);
      return `Bearer ${token.token}`;
    }
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (basic && sent === undefined) {
      const credentials = await this.credentials(what, options);
      if (credentials === undefined) return undefined;
      this.basicChallenged = true;
      return basicHeader(credentials);
    }
    return undefined;
  }

  /**
   * One token request per key at a time; the answer is cached until shortly before it expires.
   * A caller waiting on another's request stops at its own signal; when that request ended on its
   * fetcher's own signal or budget, the waiter asks for itself.
   */
  private async token(
    key: string,
    realm: string,
    service: string | undefined,
    scopes: readonly string[],
    what: string,
    options: ReadOptions,
  ): Promise<CachedToken> {
    for (
      let pending = this.pendingTokens.get(key);
      pending !== undefined;
      pending = this.pendingTokens.get(key)
    ) {
      try {
        return await this.http.untilAborted(pending, what, options);
      } catch (err) {
        if (!isCallerStop(err) || options.signal?.aborted) throw err;
      }
    }
    const fetching: Promise<CachedToken> = this.fetchToken(realm, service, scopes, options)
      .then((token) => {
        this.tokens.set(key, token);
        return token;
      })
      .finally(() => {
        if (this.pendingTokens.get(key) === fetching) this.pendingTokens.delete(key);
      });
    this.pendingTokens.set(key, fetching);
    return fetching;
  }

  private async fetchToken(
    realm: string,
    service: string | undefined,
    scopes: readonly string[],
    options: ReadOptions,
  ): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch (err) {
      throw new RegistryError('PROTOCOL', this.host, `token realm "${realm.slice(0, 200)}" is not a URL`, {
        cause: err,
      });
    }
    const what = `GET token ${originOf(url)}${url.pathname} for ${scopes.join(' ') || 'registry'}`;
    await this.http.checkRealm(url, what, options);
    if (service !== undefined) url.searchParams.set('service', service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    // checkRealm let through only these two; say so again where the credentials leave.
    const mayCarryCredentials = url.origin === this.http.origin || url.protocol === 'https:';
    const credentials = mayCarryCredentials ? await this.credentials(what, options) : undefined;
    const res = await this.http.fetchOnce(
      'GET',
      url.href,
      {
        'user-agent': this.http.userAgent,
        ...(credentials ? { authorization: basicHeader(credentials) } : {}),
      },
      undefined,
      what,
      options,
    );
    if (!res.ok) throw await this.http.statusError(res, what, options);
    const body = await this.http.read(res, what, { limit: MAX_ERROR_BODY_BYTES }, options);
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
    // It goes into a header: a CR, LF or space would fail every request (or split it) from then on.
    if (!/^[\x21-\x7e]+$/.test(token)) {
      throw new RegistryError(
        'PROTOCOL',
        this.host,
        `${what}: the token has characters a header cannot carry`,
      );
    }
    const expiresIn =
      isObject(json) && typeof json['expires_in'] === 'number' && json['expires_in'] > 0
        ? json['expires_in']
        : DEFAULT_TOKEN_LIFETIME_S;
    const lifetimeMs = expiresIn * 1000;
    return { token, renewAt: Date.now() + Math.max(lifetimeMs - TOKEN_MARGIN_MS, lifetimeMs / 2) };
  }

  private async credentials(what: string, options: ReadOptions): Promise<BasicCredentials | undefined> {
    switch (this.auth.$case) {
      case 'anonymous':
        return undefined;
      case 'basic':
        return { username: this.auth.username, password: this.auth.password };
      case 'ecr':
        this.ecrCredentials ??= new EcrAuthorizationTokens();
        return this.http.untilAborted(
          this.ecrCredentials.credentials({
            host: this.host,
            region: this.auth.region,
            endpoint: this.auth.endpoint,
          }),
          what,
          options,
        );
    }
  }
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

const basicHeader = (c: BasicCredentials): string =>
  `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
