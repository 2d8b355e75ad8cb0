/**
 * The local service's `Image Trust Lost` webhook (`reverify.webhookUrl`): one POST of JSON per
 * finding, in the envelope EventBridge would give it. The URL is the operator's, but it must not
 * become a way to reach what Signet can reach, so it gets the registries' care: https only (http
 * to a loopback host only, checked when the config loads), no redirects followed, never a
 * link-local address (cloud metadata), never a loopback address unless the URL names a loopback
 * host, and the connection goes to the address that was checked (no second DNS answer).
 */
import type { LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { isLoopbackHost } from '../config/hosts';
import { describeError } from '../core/errors';
import type { Finding } from '../ledger/types';
import { addressKind, systemLookup, type HostLookup } from '../registry/http';
import { IMAGE_TRUST_LOST, trustLostDetail } from './events';
import type { FindingSink } from './reverifier';

/** How the webhook is called. */
export interface WebhookOptions {
  /** Per POST; default 5 s. */
  readonly timeoutMs?: number;
  /** Resolves the host (tests); default the system resolver. */
  readonly lookup?: HostLookup;
}

/** A POST the webhook refused to make, or that did not succeed. */
export class WebhookError extends Error {
  override readonly name = 'WebhookError';
}

/** Announces findings to one URL. */
export class WebhookSink implements FindingSink {
  private readonly url: URL;
  private readonly timeoutMs: number;
  private readonly lookup: HostLookup;
  private readonly loopbackAllowed: boolean;

  constructor(url: string, options: WebhookOptions = {}) {
    this.url = new URL(url);
    if (this.url.protocol !== 'https:' && !(this.url.protocol === 'http:' && isLoopbackHost(this.url.host))) {
      throw new WebhookError(`${this.url.origin}: only https, or http to a loopback host`);
    }
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.lookup = options.lookup ?? systemLookup;
    this.loopbackAllowed = isLoopbackHost(this.url.host);
  }

  async announce(findings: readonly Finding[]): Promise<void> {
    for (const finding of findings) {
      await this.post({
        version: '0',
        id: finding.id,
        source: 'signet',
        'detail-type': IMAGE_TRUST_LOST,
        time: new Date(finding.announcedAt ?? finding.lastFoundAt).toISOString(),
        detail: trustLostDetail(finding),
      });
    }
  }

  private post(body: unknown): Promise<void> {
    const payload = Buffer.from(JSON.stringify(body));
    const host = this.url.hostname;
    const literal = addressKind(host);
    if (literal !== undefined) this.check([literal], host);
    const options: RequestOptions = {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': String(payload.length),
        'user-agent': 'signet',
      },
      timeout: this.timeoutMs,
      ...(literal === undefined ? { lookup: this.pinnedLookup() } : {}),
    };
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<void>((resolve, reject) => {
      const req = send(this.url, options, (res: IncomingMessage) => {
        res.resume();
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve();
        else if (status >= 300 && status < 400)
          reject(new WebhookError(`${this.url.origin}: answered ${status}; redirects are not followed`));
        else reject(new WebhookError(`${this.url.origin}: answered ${status}`));
      });
      req.on('timeout', () =>
        req.destroy(new WebhookError(`${this.url.origin}: no answer in ${this.timeoutMs} ms`)),
      );
      req.on('error', (err) =>
        reject(
          err instanceof WebhookError ? err : new WebhookError(`${this.url.origin}: ${describeError(err)}`),
        ),
      );
      req.end(payload);
    });
  }

  /** Resolves, refuses what must not be reached, and connects to the addresses it checked. */
  private pinnedLookup(): LookupFunction {
    return (hostname, options, callback) => {
      this.lookup(hostname)
        .then((addresses) => {
          if (addresses.length === 0) throw new WebhookError(`${hostname}: no address`);
          this.check(
            addresses.map((a) => addressKind(a.address) ?? 'routable'),
            hostname,
          );
          const wanted = addresses.filter(
            (a) => options.family === undefined || options.family === 0 || a.family === options.family,
          );
          const usable: LookupAddress[] = wanted.length > 0 ? wanted : [...addresses];
          if (options.all === true) callback(null, usable);
          else callback(null, (usable[0] as LookupAddress).address, (usable[0] as LookupAddress).family);
        })
        .catch((err: unknown) => callback(err as NodeJS.ErrnoException, '', 0));
    };
  }

  private check(kinds: readonly string[], host: string): void {
    if (kinds.includes('link-local'))
      throw new WebhookError(`${host}: a link-local address is never contacted`);
    if (kinds.includes('loopback') && !this.loopbackAllowed)
      throw new WebhookError(
        `${host}: resolves to a loopback address, and the URL does not name a loopback host`,
      );
    if (this.url.protocol === 'http:' && kinds.some((k) => k !== 'loopback'))
      throw new WebhookError(`${host}: plain http goes to loopback addresses only`);
  }
}
