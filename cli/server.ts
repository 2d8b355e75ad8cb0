/**
 * The local service's HTTP server: an adapter from `node:http` to `lib/http`'s surface, which
 * owns routing, credentials, body limits and error bodies for every edge.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { declaredLength } from '../lib/http/body';
import { handleRequest, type HttpRequest, type HttpResponse, type SurfaceDeps } from '../lib/http/surface';

/** Slow clients may not hold a connection (and a slot) forever. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Longer than the usual load balancer idle timeout (60 s), so that it closes first. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** The local service's listener. */
export class SignetServer {
  readonly server: Server;

  constructor(private readonly surface: SurfaceDeps) {
    this.server = createServer((req, res) => void this.dispatch(req, res));
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

  /** Stops accepting connections; resolves once those in flight are answered. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
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
    write(res, response);
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
  const bytes = Buffer.from(JSON.stringify(response.body));
  res.writeHead(response.status, {
    ...response.headers,
    'content-type': 'application/json',
    'content-length': bytes.length,
    // A body left unread is never read to keep the connection: the connection goes instead.
    ...(response.close ? { connection: 'close' } : {}),
  });
  res.end(bytes);
}
