/**
 * HTTP to one Sigstore service (a Rekor log, an RFC 3161 timestamp authority), where every answer
 * is hostile until checked: requests go to the configured origin only (a redirect is an invalid
 * answer, never followed), bodies are read under a byte limit, and failures become
 * SigstoreServiceErrors whose code says whether another attempt may cure them.
 */
import { SigstoreServiceError, describeError, type SigstoreServiceErrorCode } from '../core/errors';

/** Bounds on one service's answers. */
export interface ServiceHttpOptions {
  /** Per request, body included. */
  readonly timeoutMs: number;
  /** Largest answer read; a longer one is an invalid answer. */
  readonly maxResponseBytes: number;
  readonly userAgent: string;
}

export const DEFAULT_SERVICE_HTTP_OPTIONS: ServiceHttpOptions = {
  timeoutMs: 15_000,
  maxResponseBytes: 256 * 1024,
  userAgent: 'signet',
};

/** The three codes of one service: outage (retried), refusal, invalid answer. */
export interface ServiceCodes {
  readonly unavailable: SigstoreServiceErrorCode;
  readonly refused: SigstoreServiceErrorCode;
  readonly invalid: SigstoreServiceErrorCode;
}

/** An answer read whole (within the limit). */
export interface ServiceAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

/** Largest error body read for its message. */
const MAX_ERROR_BODY_BYTES = 4 * 1024;

/** Sends requests to one service's origin and reads its answers within bounds. */
export class ServiceHttp {
  /** `scheme://host[:port]`: the only origin requests go to, and the name in errors. */
  readonly origin: string;

  constructor(
    readonly base: URL,
    private readonly codes: ServiceCodes,
    private readonly options: ServiceHttpOptions,
  ) {
    this.origin = base.origin;
  }

  /** The error of `kind` for this service. */
  error(kind: keyof ServiceCodes, message: string, cause?: unknown): SigstoreServiceError {
    return new SigstoreServiceError(this.codes[kind], this.origin, message, { cause });
  }

  /** `location` resolved against `from`, when it stays on this service's origin; otherwise an invalid answer. */
  sameOrigin(location: string, from: URL, what: string): URL {
    let url: URL;
    try {
      url = new URL(location, from);
    } catch (err) {
      throw this.error('invalid', `${what}: "${location.slice(0, 200)}" is not a URL`, err);
    }
    if (url.origin !== this.origin) {
      throw this.error('invalid', `${what}: refused to follow the service to ${url.origin}`);
    }
    return url;
  }

  /**
   * One request to `url` (which must be on this origin), no redirect followed. 2xx answers (and
   * the statuses in `accept`) are read whole and returned; 408, 429, 5xx and network failures are
   * `unavailable`, a redirect `invalid`, any other status `refused`.
   */
  async send(
    request: {
      readonly method: 'GET' | 'POST';
      readonly url: URL;
      readonly headers: Readonly<Record<string, string>>;
      readonly body?: Buffer;
      readonly what: string;
    },
    accept: readonly number[] = [],
  ): Promise<ServiceAnswer> {
    const { method, url, what } = request;
    if (url.origin !== this.origin)
      throw this.error('invalid', `${what}: ${url.origin} is not the configured service`);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { 'user-agent': this.options.userAgent, 'accept-encoding': 'identity', ...request.headers },
        body:
          request.body === undefined
            ? undefined
            : new Uint8Array(request.body.buffer, request.body.byteOffset, request.body.byteLength),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (err) {
      throw this.error('unavailable', `${what}: ${networkDetail(err, this.options.timeoutMs)}`, err);
    }
    if ((res.status >= 200 && res.status < 300) || accept.includes(res.status)) {
      return { status: res.status, headers: res.headers, body: await this.read(res, what) };
    }
    const detail = await this.errorDetail(res);
    const message = `${what}: HTTP ${res.status}${detail === '' ? '' : ` ${detail}`}`;
    if (res.status === 408 || res.status === 429 || res.status >= 500)
      throw this.error('unavailable', message);
    if (res.status >= 300 && res.status < 400)
      throw this.error('invalid', `${message} (redirects are not followed)`);
    throw this.error('refused', message);
  }

  /** Reads a body of at most `maxResponseBytes`; a longer one is cut off at the first chunk past the limit. */
  private async read(res: Response, what: string, limit = this.options.maxResponseBytes): Promise<Buffer> {
    const declared = res.headers.get('content-length')?.trim();
    if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > limit) {
      await res.body?.cancel().catch(() => undefined);
      throw this.error('invalid', `${what}: Content-Length ${declared} is over the ${limit}-byte limit`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    if (res.body !== null) {
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          total += value.byteLength;
          if (total > limit)
            throw this.error('invalid', `${what}: the answer is over the ${limit}-byte limit`);
          chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
        }
      } catch (err) {
        await reader.cancel().catch(() => undefined);
        if (err instanceof SigstoreServiceError) throw err;
        throw this.error('unavailable', `${what}: ${networkDetail(err, this.options.timeoutMs)}`, err);
      }
    }
    return Buffer.concat(chunks, total);
  }

  /** The first line of a small error body (Rekor's `{"code", "message"}`), or nothing. */
  private async errorDetail(res: Response): Promise<string> {
    try {
      const text = (await this.read(res, 'error body', MAX_ERROR_BODY_BYTES)).toString('utf8').trim();
      try {
        const json = JSON.parse(text) as { message?: unknown };
        if (typeof json.message === 'string') return json.message.slice(0, 300);
      } catch {
        // not JSON: the text itself
      }
      return text.split('\n')[0]?.slice(0, 300) ?? '';
    } catch {
      return '';
    }
  }
}

function networkDetail(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return `timed out after ${timeoutMs} ms`;
  }
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error
    ? `${describeError(err)}: ${(cause as { code?: string }).code ?? describeError(cause)}`
    : describeError(err);
}
