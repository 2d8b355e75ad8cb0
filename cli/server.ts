/**
 * The local service's HTTP(S) server: an adapter from `node:http`/`node:https` to `lib/http`'s
 * surface, which owns routing, credentials, body limits and error bodies for every edge. With TLS
 * (Kubernetes calls webhooks over HTTPS only) the certificate and key are read again whenever they
 * change on disk (cert-manager renews them; Kubernetes swaps a mounted Secret's `..data` link), and
 * the next connection is served with them; open connections are not dropped.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TlsSettings } from '../lib/config/types';
import { ConfigError, describeError } from '../lib/core/errors';
import type { Logger } from '../lib/core/logger';
import { declaredLength } from '../lib/http/body';
import { handleRequest, type HttpRequest, type HttpResponse, type SurfaceDeps } from '../lib/http/surface';

/** Slow clients may not hold a connection (and a slot) forever. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Longer than the usual load balancer idle timeout (60 s), so that it closes first. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** How often the TLS files are looked at for a renewal. */
const DEFAULT_TLS_RELOAD_MS = 5_000;

/** The PEM material of a TLS context, and a digest telling whether it changed. */
interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
  readonly digest: string;
}

function readTls(tls: TlsSettings): TlsMaterial {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError('CONFIG_UNREADABLE', `server.tls.${what} ${file}: ${describeError(err)}`, {
        cause: err,
      });
    }
  };
  const cert = read(tls.certFile, 'certFile');
  const key = read(tls.keyFile, 'keyFile');
  const ca = tls.clientCaFile === undefined ? undefined : read(tls.clientCaFile, 'clientCaFile');
  const digest = createHash('sha256')
    .update(cert)
    .update(key)
    .update(ca ?? Buffer.alloc(0))
    .digest('hex');
  return { cert, key, ca, digest };
}

/** How the server listens: plain HTTP, or HTTPS from files (reloaded when they change). */
export interface ServerOptions {
  readonly tls?: TlsSettings | undefined;
  /** How often the TLS files are checked for a renewal (default 5 s). */
  readonly tlsReloadMs?: number;
  readonly logger?: Logger;
}

/** The local service's listener. */
export class SignetServer {
  readonly server: Server | HttpsServer;
  readonly scheme: 'http' | 'https';
  private tlsMaterial: TlsMaterial | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  /** The last reload failure logged, so that a broken renewal is reported once. */
  private reloadProblem: string | undefined;
  private closing = false;

  constructor(
    private readonly surface: SurfaceDeps,
    private readonly options: ServerOptions = {},
  ) {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.dispatch(req, res);
    const tls = options.tls;
    if (tls === undefined) {
      this.scheme = 'http';
      this.server = createServer(handler);
    } else {
      this.scheme = 'https';
      this.tlsMaterial = readTls(tls);
      const { cert, key, ca } = this.tlsMaterial;
      this.server = createHttpsServer(
        {
          cert,
          key,
          minVersion: 'TLSv1.2',
          // Mutual TLS: only clients with a certificate from one of these CAs get a connection.
          ...(ca !== undefined ? { ca, requestCert: true, rejectUnauthorized: true } : {}),
        },
        handler,
      );
      this.reloadTimer = setInterval(() => this.reloadTls(tls), options.tlsReloadMs ?? DEFAULT_TLS_RELOAD_MS);
      this.reloadTimer.unref();
    }
    this.server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    this.server.headersTimeout = HEADERS_TIMEOUT_MS;
    this.server.requestTimeout = REQUEST_TIMEOUT_MS;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Stops accepting connections; resolves once those in flight are answered. Their answers close
   * the connection: a kept-alive connection (the apiserver's, a registry's notifier) would
   * otherwise hold the close up until the client or the keep-alive timeout ends it.
   */
  close(): Promise<void> {
    clearInterval(this.reloadTimer);
    this.closing = true;
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  /**
   * Reads the TLS files and, when they changed, serves new connections with them. A half-written
   * renewal (a certificate that does not match its key) keeps the old context until it is whole.
   */
  reloadTls(tls: TlsSettings): void {
    let next: TlsMaterial;
    try {
      next = readTls(tls);
      if (next.digest === this.tlsMaterial?.digest) return;
      (this.server as HttpsServer).setSecureContext({
        cert: next.cert,
        key: next.key,
        ...(next.ca !== undefined ? { ca: next.ca } : {}),
      });
    } catch (err) {
      // Said once per broken state, not at every look: the files stay broken until someone acts.
      const problem = describeError(err);
      if (problem !== this.reloadProblem) {
        this.options.logger?.warn('TLS files not reloaded; serving the previous certificate', {
          certFile: tls.certFile,
          cause: problem,
        });
      }
      this.reloadProblem = problem;
      return;
    }
    this.reloadProblem = undefined;
    this.tlsMaterial = next;
    this.options.logger?.info('TLS certificate reloaded', { certFile: tls.certFile });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let response: HttpResponse;
    try {
      response = await handleRequest(toRequest(req), this.surface);
    } catch {
      // handleRequest never throws; a broken logger must not leave the request hanging.
      response = {
        status: 500,
        body: { error: { code: 'INTERNAL', message: 'internal error' } },
        headers: {},
        close: true,
      };
    }
    write(res, this.closing ? { ...response, close: true } : response);
  }
}

function toRequest(req: IncomingMessage): HttpRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return {
    method: req.method ?? 'GET',
    path: (req.url ?? '/').split('?', 1)[0] ?? '/',
    headers,
    body: { $case: 'stream', stream: req, declaredLength: declaredLength(headers['content-length']) },
  };
}

function write(res: ServerResponse, response: HttpResponse): void {
  const text = response.contentType !== undefined ? String(response.body) : JSON.stringify(response.body);
  const bytes = Buffer.from(text);
  res.writeHead(response.status, {
    ...response.headers,
    'content-type': response.contentType ?? 'application/json',
    'content-length': bytes.length,
    // A body left unread is never read to keep the connection: the connection goes instead.
    ...(response.close ? { connection: 'close' } : {}),
  });
  res.end(bytes);
}
