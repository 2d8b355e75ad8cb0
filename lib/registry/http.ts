/**
 * The registry client's HTTP layer, where every answer is hostile until checked: requests over
 * global `fetch` (HEADs over a keep-alive node:http agent), redirects checked hop by hop, bodies
 * read under a byte limit and the caller's budget, aborts and timeouts turned into RegistryErrors.
 */
import { promises as dns, type LookupAddress } from 'node:dns';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { RegistryError, describeError } from '../core/errors';
import { isObject } from '../core/json';
import { report, type Telemetry } from '../core/telemetry';
import type { ReadOptions } from './types';

/** Largest error body, token answer or drained body read. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Resolves a host name to all its addresses, as `dns.promises.lookup(host, { all: true })` does. */
export type HostLookup = (hostname: string) => Promise<readonly LookupAddress[]>;

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), the one connections use too. */
export const systemLookup: HostLookup = (hostname) => dns.lookup(hostname, { all: true });

/** What an address means to the redirect and token-realm checks. */
export type AddressKind = 'link-local' | 'loopback' | 'routable';

const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6');
// EC2's instance metadata service over IPv6 sits at a unique-local address, not a link-local one.
LINK_LOCAL.addAddress('fd00:ec2::254', 'ipv6');
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
// A connection to the unspecified address reaches this very host, as loopback does.
LOOPBACK.addSubnet('0.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::', 'ipv6');

/**
 * The kind of an IP address literal (`[::1]` brackets allowed); IPv4-mapped IPv6 addresses count
 * as their IPv4 address (BlockList matches them). `undefined` when `host` is a name.
 */
export function addressKind(host: string): AddressKind | undefined {
  const address = bareHost(host);
  const family = isIP(address);
  if (family === 0) return undefined;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (LINK_LOCAL.check(address, type)) return 'link-local';
  if (LOOPBACK.check(address, type)) return 'loopback';
  return 'routable';
}

/** `host` without IPv6 brackets, zone index or the trailing dot of a fully-qualified name, lower-cased. */
function bareHost(host: string): string {
  const unbracketed = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const zone = unbracketed.indexOf('%');
  const unzoned = zone === -1 ? unbracketed : unbracketed.slice(0, zone);
  return unzoned.replace(/\.$/, '').toLowerCase();
}

/** Names that are loopback whatever a resolver says (RFC 6761). */
const isLoopbackName = (host: string): boolean => host === 'localhost' || host.endsWith('.localhost');

/** `scheme://host:port` of a URL: names a target without its path or query, which may carry signed tokens. */
export const originOf = (url: URL): string => `${url.protocol}//${url.host}`;

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

/** Errors that belong to one caller (its signal, its budget) rather than to the registry's answer. */
export const isCallerStop = (err: unknown): boolean =>
  err instanceof RegistryError && (err.code === 'ABORTED' || err.code === 'BUDGET_EXCEEDED');

/** One request as the HTTP layer sends it; `what` names it in errors (`GET manifest team-a/app:v1`). */
export interface HttpRequest {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST';
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  readonly what: string;
}

/** How much of a body to read: at most `limit` bytes, or with `exact` exactly `limit` bytes. */
export interface BodyBounds {
  readonly limit: number;
  readonly exact?: boolean;
}

/** Where and how the HTTP layer reaches one registry. */
export interface RegistryHttpSettings {
  readonly host: string;
  readonly baseUrl: string;
  /** Per request, body included. */
  readonly timeoutMs: number;
  readonly userAgent: string;
  readonly lookup: HostLookup;
  readonly telemetry?: Telemetry | undefined;
}

/**
 * undici's fetch closes the connection after every HEAD (its guard against servers that send a
 * body anyway), which costs a TCP and TLS handshake per tag lookup. Node's agent keeps HEAD
 * connections: a stray body could only confuse the next answer from the same origin, which that
 * origin could forge anyway. Free sockets are unref'd, so they never hold the process open.
 */
const HEAD_AGENTS = {
  http: new HttpAgent({ keepAlive: true }),
  https: new HttpsAgent({ keepAlive: true }),
};

/** Sends requests to one registry and reads its answers within bounds. */
export class RegistryHttp {
  readonly host: string;
  /** The registry's own origin: the only one Authorization headers go to. */
  readonly origin: string;
  private readonly base: URL;
  private readonly timeoutMs: number;
  readonly userAgent: string;
  private readonly lookup: HostLookup;
  private readonly telemetry: Telemetry | undefined;
  private loopbackRegistry: Promise<boolean> | undefined;

  constructor(settings: RegistryHttpSettings) {
    this.host = settings.host;
    this.base = new URL(settings.baseUrl);
    this.origin = this.base.origin;
    this.timeoutMs = settings.timeoutMs;
    this.userAgent = settings.userAgent;
    this.lookup = settings.lookup;
    this.telemetry = settings.telemetry;
  }

  /**
   * Sends `request`, following GET and HEAD redirects (blob storage). Every target off the
   * registry's origin is checked first (`checkTarget`); `authorization` goes to the registry's
   * origin only. Answers the last response and the URL that gave it.
   */
  async follow(
    request: HttpRequest,
    authorization: string | undefined,
    options: ReadOptions,
  ): Promise<{ res: Response; url: URL }> {
    let url = this.parseUrl(request.url, this.base, request.what);
    let from = this.base;
    for (let hop = 0; ; hop++) {
      if (url.origin !== this.origin) {
        await this.checkTarget(url, from, hop === 0 ? 'request' : 'redirect', request.what, options);
      }
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...request.headers };
      if (authorization !== undefined && url.origin === this.origin) headers['authorization'] = authorization;
      const res = await this.fetchOnce(
        request.method,
        url.href,
        headers,
        request.body,
        request.what,
        options,
      );
      const location = res.headers.get('location');
      if (!REDIRECT_STATUSES.has(res.status) || location === null) return { res, url };
      if (request.method !== 'GET' && request.method !== 'HEAD') return { res, url };
      if (hop >= MAX_REDIRECTS) {
        await discard(res);
        throw new RegistryError(
          'PROTOCOL',
          this.host,
          `${request.what}: more than ${MAX_REDIRECTS} redirects`,
        );
      }
      await this.drain(res, request.what, options);
      from = url;
      url = this.parseUrl(location, url, request.what);
    }
  }

  /**
   * Refuses a target off the registry's origin that a hostile registry could aim us at: anything
   * but http(s), a step down from https to http, a link-local address (cloud metadata services),
   * or a loopback address unless the registry itself is on loopback. Names are resolved and
   * refused when any of their addresses is. Refusals are PROTOCOL, naming the target's origin.
   */
  async checkTarget(target: URL, from: URL, role: string, what: string, options: ReadOptions): Promise<void> {
    const refuse = (why: string): RegistryError =>
      new RegistryError('PROTOCOL', this.host, `${what}: ${role} to ${originOf(target)} refused: ${why}`);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw refuse('not http or https');
    if (target.origin === this.origin) return;
    if (from.protocol === 'https:' && target.protocol === 'http:') throw refuse('it leaves https for http');
    const kinds = await this.kindsOf(target, what, options);
    if (kinds.has('link-local')) throw refuse('link-local address');
    if (kinds.has('loopback') && !(await this.isLoopbackRegistry())) {
      throw refuse('loopback address, and the registry is not on loopback');
    }
  }

  /**
   * Refuses a token realm that is neither the registry's own origin nor https (credentials would
   * cross the network in clear to whoever the challenge named), or whose address `checkTarget`
   * refuses.
   */
  async checkRealm(realm: URL, what: string, options: ReadOptions): Promise<void> {
    if (realm.origin === this.origin) return;
    if (realm.protocol !== 'https:') {
      throw new RegistryError(
        'PROTOCOL',
        this.host,
        `${what}: insecure token realm ${originOf(realm)}: neither https nor the registry's origin`,
      );
    }
    await this.checkTarget(realm, this.base, 'token realm', what, options);
  }

  /** One request, no redirect followed; the caller's signal and the per-request timeout both end it. */
  async fetchOnce(
    method: HttpRequest['method'],
    url: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    what: string,
    options: ReadOptions,
  ): Promise<Response> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
    const started = performance.now();
    let status = 0;
    try {
      const res =
        method === 'HEAD'
          ? await this.head(new URL(url), headers, signal, what)
          : await fetch(url, {
              method,
              // Bytes as sent: budgets count what crossed the network, and no gzip bomb inflates past a limit.
              headers: { 'accept-encoding': 'identity', ...headers },
              body:
                body === undefined
                  ? undefined
                  : new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
              redirect: 'manual',
              signal,
            });
      status = res.status;
      return res;
    } catch (err) {
      throw this.networkError(err, what, options);
    } finally {
      // Time to the answer's headers: what the registry costs a review, without the body read.
      report(this.telemetry, 'registryRequest', {
        registry: this.host,
        method,
        status,
        seconds: (performance.now() - started) / 1000,
      });
    }
  }

  /**
   * Reads a body of at most `bounds.limit` bytes (with `exact`, exactly that many), charging every
   * chunk to the caller's budget as it arrives. A Content-Length over the limit (or, with `exact`,
   * any other length) fails before the body is read; a longer body is cut off, and its connection
   * cancelled, at the first chunk that passes the limit.
   */
  async read(res: Response, what: string, bounds: BodyBounds, options: ReadOptions): Promise<Buffer> {
    const { limit, exact = false } = bounds;
    const tooLarge = (size: string): RegistryError =>
      new RegistryError('TOO_LARGE', this.host, `${what}: ${size} is over the ${limit}-byte limit`);
    const declared = declaredLength(res);
    if (declared !== undefined && declared > limit) {
      await discard(res);
      throw tooLarge(`Content-Length ${declared}`);
    }
    if (exact && declared !== undefined && declared !== limit) {
      await discard(res);
      throw new RegistryError(
        'PROTOCOL',
        this.host,
        `${what}: Content-Length ${declared} is not the descriptor's ${limit} bytes`,
      );
    }
    const chunks: Buffer[] = [];
    let total = 0;
    if (res.body !== null) {
      const reader = res.body.getReader();
      try {
        while (true) {
          const { done, value } = await reader.read();
          if (done) break;
          total += value.byteLength;
          // Charged before judged: those bytes crossed the network whatever becomes of them.
          this.charge(value.byteLength, what, options);
          if (total > limit) throw tooLarge(exact ? `a body past ${limit} bytes` : `the body`);
          chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
        }
      } catch (err) {
        await reader.cancel().catch(() => undefined);
        throw this.networkError(err, what, options);
      }
    }
    if (exact && total !== limit) {
      throw new RegistryError(
        'PROTOCOL',
        this.host,
        `${what}: the body ended after ${total} of the descriptor's ${limit} bytes`,
      );
    }
    return Buffer.concat(chunks, total);
  }

  /**
   * Reads a small body to its end so that its keep-alive connection can serve again; a larger one
   * is cut off. Charged to the budget like any read; only the caller's own stops are thrown.
   */
  async drain(res: Response, what: string, options: ReadOptions): Promise<void> {
    try {
      await this.read(res, what, { limit: MAX_ERROR_BODY_BYTES }, options);
    } catch (err) {
      if (isCallerStop(err)) throw err;
      // otherwise the connection is gone, or was cut: nothing to keep
    }
  }

  /** The RegistryError for a non-success answer, with the distribution error codes in the message. */
  async statusError(res: Response, what: string, options: ReadOptions): Promise<RegistryError> {
    let detail = '';
    let codes: readonly string[] = [];
    try {
      const body = await this.read(res, what, { limit: MAX_ERROR_BODY_BYTES }, options);
      ({ detail, codes } = describeErrorBody(body));
    } catch (err) {
      if (isCallerStop(err)) throw err;
      // the status says enough
    }
    const status = res.status;
    const message = `${what}: HTTP ${status}${detail ? ` ${detail}` : ''}`;
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    const errorOptions = { status, retryAfterMs };
    const error = (code: RegistryError['code']): RegistryError =>
      new RegistryError(code, this.host, message, errorOptions);
    if (status === 401) return error('UNAUTHORIZED');
    if (status === 403) return error('DENIED');
    if (status === 404) return error('NOT_FOUND');
    if (status === 405) return error('NOT_ALLOWED');
    if (status === 413) return error('TOO_LARGE');
    if (status === 400 && codes.some((c) => BLOB_UNKNOWN_CODES.has(c))) return error('BLOB_UNKNOWN');
    if (status === 429) return error('RATE_LIMITED');
    if (status === 408 || status >= 500) return error('UNAVAILABLE');
    return error('PROTOCOL');
  }

  /** `promise`, or ABORTED the moment the caller's signal aborts (the work behind it goes on for others). */
  untilAborted<T>(promise: Promise<T>, what: string, options: ReadOptions): Promise<T> {
    const { signal } = options;
    if (signal === undefined) return promise;
    if (signal.aborted) return Promise.reject(this.aborted(what, signal.reason));
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(this.aborted(what, signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** ABORTED for `what`, keeping the signal's reason as the cause. */
  aborted(what: string, reason: unknown): RegistryError {
    const why = reason instanceof Error && reason.name !== 'AbortError' ? ` (${describeError(reason)})` : '';
    return new RegistryError('ABORTED', this.host, `${what}: aborted${why}`, { cause: reason });
  }

  /** A failure to send or read as a RegistryError: ABORTED when the caller's signal caused it, else UNREACHABLE. */
  networkError(err: unknown, what: string, options: ReadOptions): RegistryError {
    if (err instanceof RegistryError) return err;
    if (options.signal?.aborted) return this.aborted(what, options.signal.reason);
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    const cause = (err as { cause?: unknown }).cause;
    const detail = timedOut
      ? `timed out after ${this.timeoutMs} ms`
      : cause instanceof Error
        ? `${describeError(err)}: ${(cause as { code?: string }).code ?? describeError(cause)}`
        : describeError(err);
    return new RegistryError('UNREACHABLE', this.host, `${what}: ${detail}`, { cause: err });
  }

  /** Charges the caller's budget; its refusal names this registry, the one whose read passed it. */
  private charge(bytes: number, what: string, options: ReadOptions): void {
    try {
      options.budget?.take(bytes, what);
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'BUDGET_EXCEEDED' && err.registry === this.host)
        throw err;
      const message =
        err instanceof RegistryError ? err.message.slice(err.registry.length + 2) : describeError(err);
      throw new RegistryError('BUDGET_EXCEEDED', this.host, message, { cause: err });
    }
  }

  /** A HEAD over the keep-alive agent, answered as a `Response` with no body. */
  private head(
    url: URL,
    headers: Record<string, string>,
    signal: AbortSignal,
    what: string,
  ): Promise<Response> {
    const secure = url.protocol === 'https:';
    const send = secure ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      const req = send(url, {
        method: 'HEAD',
        headers,
        signal,
        agent: secure ? HEAD_AGENTS.https : HEAD_AGENTS.http,
      });
      req.once('error', reject);
      req.once('response', (res) => {
        res.once('error', reject);
        // Only at the end of the (empty) answer does the agent take the socket back.
        res.once('end', () => {
          try {
            resolve(headResponse(res));
          } catch (err) {
            reject(new RegistryError('PROTOCOL', this.host, `${what}: malformed answer`, { cause: err }));
          }
        });
        res.resume();
      });
      req.end();
    });
  }

  /** The kinds of every address `target`'s host is or resolves to. */
  private async kindsOf(target: URL, what: string, options: ReadOptions): Promise<ReadonlySet<AddressKind>> {
    const host = bareHost(target.hostname);
    const literal = addressKind(host);
    if (literal !== undefined) return new Set([literal]);
    if (isLoopbackName(host)) return new Set(['loopback']);
    let addresses: readonly LookupAddress[];
    try {
      addresses = await this.untilAborted(this.lookup(host), what, options);
    } catch (err) {
      if (isCallerStop(err)) throw err;
      throw new RegistryError(
        'UNREACHABLE',
        this.host,
        `${what}: cannot resolve ${host}: ${describeError(err)}`,
        {
          cause: err,
        },
      );
    }
    return new Set(addresses.map((a) => addressKind(a.address) ?? 'routable'));
  }

  /**
   * Whether the registry itself is on loopback (a local or test registry, whose blob storage may
   * well be too): its host is a loopback address, or resolves to loopback addresses only.
   */
  private async isLoopbackRegistry(): Promise<boolean> {
    const host = bareHost(this.base.hostname);
    const literal = addressKind(host);
    if (literal !== undefined) return literal === 'loopback';
    this.loopbackRegistry ??= this.lookup(host).then(
      (addresses) => addresses.length > 0 && addresses.every((a) => addressKind(a.address) === 'loopback'),
    );
    try {
      return await this.loopbackRegistry;
    } catch {
      // Unresolvable now: not loopback, and ask again next time.
      this.loopbackRegistry = undefined;
      return false;
    }
  }

  private parseUrl(value: string, base: URL, what: string): URL {
    try {
      return new URL(value, base);
    } catch (err) {
      throw new RegistryError('PROTOCOL', this.host, `${what}: "${value.slice(0, 200)}" is not a URL`, {
        cause: err,
      });
    }
  }
}

/** The Content-Length of a body as sent (no content coding), when it is a plain number. */
function declaredLength(res: Response): number | undefined {
  const encoding = res.headers.get('content-encoding');
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') return undefined;
  const value = res.headers.get('content-length')?.trim();
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** Gives up a body unread; for a body still arriving, undici closes its connection. */
async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

function headResponse(res: IncomingMessage): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    headers.append(res.rawHeaders[i] ?? '', res.rawHeaders[i + 1] ?? '');
  }
  return new Response(null, { status: res.statusCode ?? 0, headers });
}

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
