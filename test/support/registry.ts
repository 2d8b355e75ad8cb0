/**
 * A real CNCF distribution registry for integration tests, on a free loopback port in a temp dir.
 *
 *   const registry = await startTestRegistry();                         // anonymous
 *   const registry = await startTestRegistry({ basicAuth: { username, password } }); // htpasswd
 *   const registry = await startTestRegistry({ tokenAuth: true });       // bearer tokens
 *   ...
 *   await registry.stop();                                              // also deletes its data
 *
 * With `tokenAuth`, a token server (node:http) issues ES256 JWTs per the distribution token spec,
 * granting whatever is asked (checking `basicAuth` first when both are given); `tokenRequests`
 * records every request it answered.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { startEmbeddedRegistry, type EmbeddedRegistry } from '../../cli/embedded-registry';
import { freePort } from './ports';

/** What the test registry requires of clients. */
export interface TestRegistryOptions {
  /** Where the registry POSTs its notifications. */
  readonly notifyUrl?: string;
  /** The events bearer token the registry delivers notifications with. */
  readonly notifyToken?: string;
  /** Wait between re-deliveries once 3 in a row failed (the registry's `backoff`); default 1000 ms. */
  readonly notifyBackoffMs?: number;
  /** `127.0.0.1:<port>` to listen on (when something, a proxy, was pointed at it first); default a free port. */
  readonly host?: string;
  /** Basic auth (htpasswd), or the credentials the token server demands when `tokenAuth` is set too. */
  readonly basicAuth?: { readonly username: string; readonly password: string };
  /** Bearer-token auth through a token server started with the registry. */
  readonly tokenAuth?: true;
}

/** One request the token server answered. */
export interface TokenRequest {
  readonly service: string | null;
  readonly scopes: readonly string[];
  /** The username of the Basic credentials sent, if any. */
  readonly username: string | undefined;
}

/** A running test registry. */
export interface TestRegistry {
  /** `127.0.0.1:<port>`, as in image references. */
  readonly host: string;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly dataDir: string;
  /** Token requests answered so far (empty without `tokenAuth`). */
  readonly tokenRequests: readonly TokenRequest[];
  /** The token server's realm URL (with `tokenAuth`). */
  readonly tokenRealm: string | undefined;
  stop(): Promise<void>;
}

const TOKEN_SERVICE = 'signet-test-registry';
const TOKEN_ISSUER = 'signet-test-token-issuer';
const TOKEN_LIFETIME_S = 300;
const START_ATTEMPTS = 5;

export async function startTestRegistry(opts: TestRegistryOptions = {}): Promise<TestRegistry> {
  const dataDir = await mkdtemp(join(tmpdir(), 'signet-registry-'));
  const cleanups: (() => Promise<void>)[] = [() => rm(dataDir, { recursive: true, force: true })];
  const tokenRequests: TokenRequest[] = [];
  try {
    let htpasswd: { path: string } | undefined;
    let tokenAuth: Parameters<typeof startEmbeddedRegistry>[0]['tokenAuth'];
    if (opts.tokenAuth) {
      const tokens = await startTokenServer(dataDir, opts.basicAuth, tokenRequests);
      cleanups.unshift(tokens.close);
      tokenAuth = {
        realm: tokens.realm,
        service: TOKEN_SERVICE,
        issuer: TOKEN_ISSUER,
        rootCertBundlePath: tokens.certPath,
      };
    } else if (opts.basicAuth) {
      const path = join(dataDir, 'htpasswd');
      // distribution reads bcrypt entries only; cost 4 keeps tests fast.
      await writeFile(path, `${opts.basicAuth.username}:${bcrypt.hashSync(opts.basicAuth.password, 4)}\n`);
      htpasswd = { path };
    }
    let registry: EmbeddedRegistry | undefined;
    for (let attempt = 1; registry === undefined; attempt++) {
      const host = opts.host ?? `127.0.0.1:${await freePort()}`;
      try {
        registry = await startEmbeddedRegistry({
          host,
          dataDir: join(dataDir, 'registry'),
          notifyUrl: opts.notifyUrl,
          notifyBackoffMs: opts.notifyBackoffMs,
          ...(opts.notifyToken !== undefined ? { notifyToken: opts.notifyToken } : {}),
          htpasswd,
          tokenAuth,
          logFile: join(dataDir, 'registry.log'),
        });
      } catch (err) {
        // Another process took the port between freePort() and the registry's bind.
        const retry = opts.host === undefined && /address already in use/.test(String(err));
        if (attempt >= START_ATTEMPTS || !retry) throw err;
      }
    }
    const running = registry;
    cleanups.unshift(() => running.stop());
    return {
      host: running.host,
      url: running.url,
      dataDir,
      tokenRequests,
      tokenRealm: tokenAuth?.realm,
      stop: () => runAll(cleanups),
    };
  } catch (err) {
    await runAll(cleanups);
    throw err;
  }
}

async function runAll(cleanups: readonly (() => Promise<void>)[]): Promise<void> {
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
}

const run = promisify(execFile);

/**
 * A self-signed P-256 certificate and its key, made with the openssl CLI into
 * `<dir>/<name>.crt` and `<dir>/<name>.key` (the registry's token signer, a vendor's signing
 * certificate).
 */
export async function makeSelfSignedCertificate(
  dir: string,
  name: string,
  commonName: string,
): Promise<{ certPath: string; certPem: string; certDer: string; key: KeyObject }> {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  try {
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
      `/CN=${commonName}`,
    ]);
  } catch (err) {
    throw new Error(`certificates need the openssl CLI (apt-get install -y openssl): ${String(err)}`, {
      cause: err,
    });
  }
  const certPem = await readFile(certPath, 'utf8');
  const certDer = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return { certPath, certPem, certDer, key: createPrivateKey(await readFile(keyPath)) };
}

const base64url = (value: Buffer | string): string => Buffer.from(value).toString('base64url');

/** `repository:team-a/app:pull,push` → the token spec's access entry. */
function accessOf(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const parts = scope.split(':');
  if (parts.length < 3) return undefined;
  const type = parts[0] ?? '';
  const actions = (parts[parts.length - 1] ?? '').split(',').filter(Boolean);
  return { type, name: parts.slice(1, -1).join(':'), actions };
}

/**
 * A token server per the distribution token spec. distribution 2.8 accepts a token whose `x5c`
 * header holds a certificate that chains to its rootcertbundle: the self-signed cert is both.
 */
async function startTokenServer(
  dir: string,
  basicAuth: TestRegistryOptions['basicAuth'],
  requests: TokenRequest[],
): Promise<{ realm: string; certPath: string; close(): Promise<void> }> {
  const { certPath, certDer, key } = await makeSelfSignedCertificate(dir, 'token-signing', TOKEN_ISSUER);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const authorization = req.headers.authorization ?? '';
    const decoded = authorization.startsWith('Basic ')
      ? Buffer.from(authorization.slice(6), 'base64').toString('utf8')
      : undefined;
    const username = decoded?.slice(0, Math.max(0, decoded.indexOf(':')));
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
    if (basicAuth && decoded !== `${basicAuth.username}:${basicAuth.password}`) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="token"' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    requests.push({ service: url.searchParams.get('service'), scopes, username: username || undefined });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer] };
    const claims = {
      iss: TOKEN_ISSUER,
      sub: username ?? '',
      aud: url.searchParams.get('service') ?? TOKEN_SERVICE,
      exp: now + TOKEN_LIFETIME_S,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access: scopes.map(accessOf).filter((a) => a !== undefined),
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    // JWS ES256 signatures are raw r||s, not DER.
    const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        token: `${signingInput}.${base64url(signature)}`,
        expires_in: TOKEN_LIFETIME_S,
        issued_at: new Date(now * 1000).toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
