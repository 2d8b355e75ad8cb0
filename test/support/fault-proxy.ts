/**
 * A plain-HTTP proxy on loopback in front of a real registry, for tests that need the registry to
 * misbehave: it records every request and can answer some of them itself.
 *
 *   const proxy = await startFaultProxy(registry.host);
 *   proxy.fail(2, 503);                        // the next two requests get 503
 *   proxy.faultRate = 0.2;                     // 20% of requests: 429, 503 or a reset (seeded)
 *   proxy.injectNext('reset-after', 1, (r) => r.method === 'PUT');  // the next matching request
 *   await proxy.down(); ... await proxy.up();  // refuse connections for a while, same port
 *   proxy.injected                             // how many faults of each kind were injected
 *
 * Random faults come from a seeded generator, so a run injects the same sequence of faults (which
 * request gets which depends on arrival order). The Host header is forwarded unchanged: the
 * registry builds upload Locations from it, so they point back through the proxy.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { seeded } from './random';

/** What a random fault does. */
export type FaultKind =
  /** 429 Too Many Requests (with `Retry-After: 0`), the registry's throttling. */
  | '429'
  /** 503 Service Unavailable. */
  | '503'
  /** The connection is reset before the request reaches the registry. */
  | 'reset'
  /** The request reaches the registry, which does it; the connection is reset before the answer. */
  | 'reset-after';

/** One request the proxy received. */
export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  /** The fault injected instead of (or after) forwarding it, if any. */
  readonly fault: FaultKind | undefined;
}

/** A running fault proxy and its knobs. */
export interface FaultProxy {
  /** `127.0.0.1:<port>`: use it as the registry host. */
  readonly host: string;
  readonly requests: ProxiedRequest[];
  /** Answer the next `count` requests with `status` instead of forwarding them. */
  fail(count: number, status: number, headers?: Record<string, string>, body?: unknown): void;
  /** Append a byte to every manifest and blob body. */
  tamper: boolean;
  /** Never answer. */
  hang: boolean;
  /** Answer blob GETs with a 307 to this origin (as registries do to blob storage). */
  redirectBlobs: string | undefined;
  /**
   * The next `count` requests that `match` (default: any) get fault `kind`, whatever the fault
   * rate; counted in `injected` like random faults.
   */
  injectNext(
    kind: FaultKind,
    count: number,
    match?: (request: { method: string; path: string }) => boolean,
  ): void;
  /** Fraction of requests (0..1) that get a random fault of `faultKinds`. */
  faultRate: number;
  faultKinds: readonly FaultKind[];
  /** Faults injected so far, by kind. */
  readonly injected: Record<FaultKind, number>;
  /** The total of `injected`. */
  injectedTotal(): number;
  /** Closes the listening socket and every connection: the registry is unreachable until `up()`. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a proxy to `target` (`host:port` of a plain-HTTP registry). */
export async function startFaultProxy(
  target: string,
  options: { seed?: number; faultRate?: number; faultKinds?: readonly FaultKind[] } = {},
): Promise<FaultProxy> {
  const [targetHost, targetPort] = target.split(':');
  const random = seeded(options.seed ?? 1);
  let failures: { count: number; status: number; headers: Record<string, string>; body: string } | undefined;
  let targeted:
    | { kind: FaultKind; count: number; match: (request: { method: string; path: string }) => boolean }
    | undefined;
  let closed = false;
  const sockets = new Set<Socket>();

  const server: Server = createServer((req, res) => {
    const roll = proxy.faultRate > 0 ? random() : 1;
    let fault =
      roll < proxy.faultRate && proxy.faultKinds.length > 0
        ? proxy.faultKinds[Math.floor(random() * proxy.faultKinds.length)]
        : undefined;
    if (targeted && targeted.count > 0 && targeted.match({ method: req.method ?? '', path: req.url ?? '' })) {
      targeted.count--;
      fault = targeted.kind;
    }
    proxy.requests.push({
      method: req.method ?? '',
      path: req.url ?? '',
      authorization: req.headers.authorization,
      fault,
    });
    if (proxy.hang) return;
    if (fault !== undefined) proxy.injected[fault]++;
    switch (fault) {
      case '429':
      case '503':
        req.resume();
        res.writeHead(Number(fault), {
          'content-type': 'application/json',
          ...(fault === '429' ? { 'retry-after': '0' } : {}),
        });
        res.end(
          JSON.stringify({
            errors: [
              fault === '429'
                ? { code: 'TOOMANYREQUESTS', message: 'injected throttling' }
                : { code: 'UNAVAILABLE', message: 'injected outage' },
            ],
          }),
        );
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'reset-after':
      case undefined:
        break;
    }
    if (proxy.redirectBlobs !== undefined && req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '')) {
      res.writeHead(307, { location: `${proxy.redirectBlobs}${req.url ?? ''}` });
      res.end();
      return;
    }
    if (failures && failures.count > 0) {
      failures.count--;
      res.writeHead(failures.status, { 'content-type': 'application/json', ...failures.headers });
      res.end(failures.body);
      req.resume();
      return;
    }
    const upstream = httpRequest(
      { host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers },
      (up) => {
        if (fault === 'reset-after') {
          // The registry has done the work; the client never hears about it.
          up.resume();
          up.on('end', () => req.socket.destroy());
          return;
        }
        const tampered = proxy.tamper && req.method === 'GET' && /\/(manifests|blobs)\//.test(req.url ?? '');
        if (!tampered) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const body = Buffer.concat([...chunks, Buffer.from('\n')]);
          const headers: IncomingHttpHeaders = { ...up.headers, 'content-length': String(body.length) };
          res.writeHead(up.statusCode ?? 502, headers);
          res.end(body);
        });
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (port: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = (): Promise<void> =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const proxy: FaultProxy = {
    host: `127.0.0.1:${port}`,
    requests: [],
    tamper: false,
    hang: false,
    redirectBlobs: undefined,
    faultRate: options.faultRate ?? 0,
    faultKinds: options.faultKinds ?? ['429', '503', 'reset'],
    injected: { '429': 0, '503': 0, reset: 0, 'reset-after': 0 },
    injectedTotal: () => Object.values(proxy.injected).reduce((a, b) => a + b, 0),
    injectNext(kind, count, match = () => true) {
      targeted = { kind, count, match };
    },
    fail(count, status, headers = {}, body) {
      failures = { count, status, headers, body: body === undefined ? '' : JSON.stringify(body) };
    },
    down: stop,
    up: () => (closed ? Promise.reject(new Error('the proxy is closed')) : listen(port)),
    close: () => {
      closed = true;
      return stop();
    },
  };
  return proxy;
}
