/**
 * Hostile registries for integration tests: node:http(s) servers on loopback whose every answer
 * the test writes, recording what they were asked, how many connections they took, and (through
 * `streamEndlessly`) how many bytes they managed to send before the client hung up.
 *
 *   const server = await startHostileServer((req, res) => { res.writeHead(401, {...}); res.end(); });
 *   server.host          // 127.0.0.1:<port>, for HttpRegistryClient({ host, insecure: true, ... })
 *   server.requests      // method, path and Authorization of each request, in arrival order
 *   server.connections   // TCP connections accepted so far
 *   await server.close();
 *
 *   const front = await startSameOriginFront(registry.host, registry.tokenRealm);
 *   // the registry, with its token server moved onto the registry's own origin (`/token`)
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** One request a hostile server received. */
export interface HostileRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
}

/** A running hostile server. */
export interface HostileServer {
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  /** `http://127.0.0.1:<port>` (or `https://`). */
  readonly url: string;
  readonly requests: readonly HostileRequest[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Stops listening and destroys every connection (keep-alive ones included). */
  close(): Promise<void>;
}

/** Answers one request; may leave it unanswered forever (a server that hangs). */
export type HostileHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** A self-signed certificate and key (PEM), and the path of the certificate for NODE_EXTRA_CA_CERTS. */
export interface LoopbackCertificate {
  readonly certPath: string;
  readonly cert: string;
  readonly key: string;
}

/** Starts a server on a free loopback port; with `tls`, it speaks https with that certificate. */
export async function startHostileServer(
  handler: HostileHandler,
  options: { tls?: LoopbackCertificate } = {},
): Promise<HostileServer> {
  const requests: HostileRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    requests.push({
      method: req.method ?? '',
      path: req.url ?? '',
      authorization: req.headers.authorization,
    });
    handler(req, res);
  };
  const server: Server = options.tls
    ? createTlsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest)
    : createServer(onRequest);
  // A TLS server's requests arrive on TLS sockets: count the TCP connections under them.
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/**
 * Writes `chunk` again and again, one at a time (each once the previous was handed to the
 * kernel, then `paceMs` later), until the client goes away. Resolves with the bytes written: how
 * much the client let through before cancelling.
 */
export function streamEndlessly(res: ServerResponse, chunk: Buffer, paceMs = 1): Promise<number> {
  return new Promise((resolve) => {
    let written = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve(written);
    };
    res.once('close', finish);
    const next = (): void => {
      if (done || res.destroyed) return finish();
      res.write(chunk, (err) => {
        if (err) return finish();
        written += chunk.length;
        setTimeout(next, paceMs);
      });
    };
    next();
  });
}

const run = promisify(execFile);

/** A self-signed P-256 certificate valid for 127.0.0.1 and localhost, made with the openssl CLI in `dir`. */
export async function makeLoopbackCertificate(dir: string): Promise<LoopbackCertificate> {
  const keyPath = join(dir, 'hostile.key');
  const certPath = join(dir, 'hostile.crt');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    '/CN=signet hostile test server',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { certPath, cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8') };
}

/**
 * A plain-http front for a test registry whose token server listens on another port: requests
 * for `/token` go to the token server, everything else to the registry, and the registry's
 * challenges name `<front>/token` as their realm. The client then sees a registry whose realm is
 * on its own origin, as distribution deployments behind one ingress are.
 */
export async function startSameOriginFront(registryHost: string, tokenRealm: string): Promise<HostileServer> {
  const realm = new URL(tokenRealm);
  const registry = new URL(`http://${registryHost}`);
  const forward: HostileHandler = (req, res) => {
    const toToken = (req.url ?? '/').startsWith(realm.pathname);
    const target = toToken ? realm : registry;
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: Number(target.port),
        method: req.method,
        path: req.url,
        // Host unchanged: the registry builds upload Locations from it, which then point at the front.
        headers: req.headers,
      },
      (up) => {
        const headers = { ...up.headers };
        const challenge = headers['www-authenticate'];
        if (typeof challenge === 'string') {
          headers['www-authenticate'] = challenge.split(realm.href).join(`${front.url}${realm.pathname}`);
        }
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  // `forward` runs only once requests arrive, by when `front` is set.
  const front = await startHostileServer(forward);
  return front;
}
