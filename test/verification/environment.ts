/**
 * The real world verification integration tests run in: a distribution registry (images pushed
 * with skopeo), a counting proxy in front of it (every request recorded), a proxy that answers 429
 * to signature reads, a closed port for an unreachable registry, witness keys generated with
 * node:crypto (and one certificate made with openssl), and Signet built from a YAML config.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { silentLogger } from '../../lib/core/logger';
import { parseReference } from '../../lib/core/reference';
import { createSignet, type Signet } from '../../lib/signet';
import type { SigningReport } from '../../lib/signing/pipeline';
import { ImageVerifier } from '../../lib/verification/verifier';
import { makeImage, skopeoCopy } from '../support/images';
import { freePort } from '../support/ports';
import { makeSelfSignedCertificate, startTestRegistry, type TestRegistry } from '../support/registry';

/** An HTTP proxy that records every request and may answer some itself. */
export interface RecordingProxy {
  readonly host: string;
  readonly requests: { readonly method: string; readonly path: string }[];
  count(method: string, pathPart: string): number;
  close(): Promise<void>;
}

/**
 * Forwards every request to `targetUrl`, recording method and path. `intercept` may answer a
 * request instead (e.g. 429 for signature reads).
 */
export async function startProxy(
  targetUrl: string,
  intercept?: (
    req: IncomingMessage,
  ) => { status: number; headers?: Record<string, string>; body?: string } | undefined,
): Promise<RecordingProxy> {
  const target = new URL(targetUrl);
  const requests: { method: string; path: string }[] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '' });
    const answer = intercept?.(req);
    if (answer !== undefined) {
      req.resume();
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body ?? '');
      return;
    }
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    count: (method, pathPart) =>
      requests.filter((r) => r.method === method && r.path.includes(pathPart)).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A key pair written the way the config refers to it. */
export interface EnvKey {
  readonly privateKey: KeyObject;
  readonly publicKeyPem: string;
}

function ecKey(): EnvKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

function rsaKey(): EnvKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

const indent = (text: string, spaces: number): string =>
  text
    .trim()
    .split('\n')
    .map((line) => `${' '.repeat(spaces)}${line}`)
    .join('\n');

/** Everything an integration test needs. */
export interface Environment {
  readonly registry: TestRegistry;
  /** Counting proxy in front of the registry: images are referenced through it. */
  readonly proxy: RecordingProxy;
  /** Forwards everything but signature reads, which get 429. */
  readonly limited: RecordingProxy;
  /** `127.0.0.1:<port>` where nothing listens. */
  readonly closedHost: string;
  readonly dir: string;
  readonly keys: {
    readonly release: EnvKey;
    readonly releaseRsa: EnvKey;
    readonly partner: EnvKey;
    readonly security: EnvKey;
    readonly vendor: EnvKey & { readonly certificatePem: string };
    readonly attacker: EnvKey;
  };
  readonly config: SignetConfig;
  /** The YAML the config was parsed from, on disk (for the CLI). */
  readonly configPath: string;
  readonly signet: Signet;
  /** A fresh verifier (empty cache) over the environment's config. */
  verifier(config?: SignetConfig): ImageVerifier;
  /** Pushes a new image to `repository:tag`; the same seed gives the same digest. */
  push(repository: string, tag: string, seed?: string): Promise<string>;
  /** Signs through Signet's real pipeline with the named rule (by tag, so default mode names it). */
  sign(repository: string, tag: string, rule: string): Promise<SigningReport>;
  /** `http://<registry>` for the cosign writer. */
  readonly registryUrl: string;
  stop(): Promise<void>;
}

/** Extra YAML appended to the `policies:` list, and admission settings. */
export interface EnvironmentOptions {
  readonly policies: (hosts: { proxy: string; limited: string; closed: string }) => string;
  readonly admission?: string;
  readonly server?: string;
}

export async function startEnvironment(options: EnvironmentOptions): Promise<Environment> {
  const dir = await mkdtemp(join(tmpdir(), 'signet-verify-'));
  const registry = await startTestRegistry();
  const registryUrl = registry.url;
  const proxy = await startProxy(registryUrl);
  const limited = await startProxy(registryUrl, (req) =>
    (req.url ?? '').includes('.sig')
      ? {
          status: 429,
          headers: { 'retry-after': '0' },
          body: JSON.stringify({
            errors: [{ code: 'TOOMANYREQUESTS', message: 'pull rate limit exceeded' }],
          }),
        }
      : undefined,
  );
  const closedHost = `127.0.0.1:${await freePort()}`;

  await mkdir(join(dir, 'keys'));
  const release = ecKey();
  const releaseRsa = rsaKey();
  const partner = ecKey();
  const security = rsaKey();
  const attacker = ecKey();
  await writeFile(
    join(dir, 'keys', 'release.pem'),
    release.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    { mode: 0o600 },
  );
  await writeFile(
    join(dir, 'keys', 'release-rsa.pem'),
    releaseRsa.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    { mode: 0o600 },
  );
  await writeFile(join(dir, 'keys', 'security.pub'), security.publicKeyPem);
  // A vendor signing certificate (verify-only certificate witness), as `cosign sign --cert` uses.
  const vendorCertificate = await makeSelfSignedCertificate(join(dir, 'keys'), 'vendor', 'vendor signing');
  const vendor = {
    privateKey: vendorCertificate.key,
    publicKeyPem: '',
    certificatePem: vendorCertificate.certPem,
  };

  const hosts = { proxy: proxy.host, limited: limited.host, closed: closedHost };
  const yaml = `
registries:
  - host: ${registry.host}
    insecure: true
  - host: ${proxy.host}
    insecure: true
  - host: ${limited.host}
    insecure: true
  - host: ${closedHost}
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
  - name: release-rsa
    key: file://keys/release-rsa.pem
  - name: partner
    publicKey: |
${indent(partner.publicKeyPem, 6)}
  - name: security
    publicKey: file://keys/security.pub
  - name: vendor
    certificate: file://keys/vendor.crt
  - name: ci
    keyless:
      issuer: https://token.actions.githubusercontent.com
      subject: https://github.com/example/app/.github/workflows/release.yaml@refs/heads/main
signingRules:
  - name: release-default
    repositories: ["**"]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: default
    trigger: manual
  - name: release-simple
    repositories: ["**"]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: simple
    trigger: manual
  - name: release-pss
    repositories: ["**"]
    witness: release-rsa
    algorithm: RSA_PSS_SHA_256
    signatureType: simple
    trigger: manual
policies:
${options.policies(hosts)}
${options.admission ?? ''}
${options.server ?? ''}
`;
  const configPath = join(dir, 'signet.yaml');
  await writeFile(configPath, yaml);
  const config = parseConfig(yaml, { baseDir: dir, source: configPath });
  const signet = createSignet(config, {
    logger: silentLogger,
    registryRetry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
  });
  const layouts = new Map<string, string>();

  return {
    registry,
    proxy,
    limited,
    closedHost,
    dir,
    keys: { release, releaseRsa, partner, security, vendor, attacker },
    config,
    configPath,
    signet,
    registryUrl,
    verifier: (cfg = config) =>
      new ImageVerifier({
        config: cfg,
        registries: signet.registries,
        keys: signet.keys,
        logger: silentLogger,
      }),
    async push(repository, tag, seed) {
      const key = seed ?? `${repository}:${tag}:${Math.random()}`;
      let layout = layouts.get(key);
      if (layout === undefined) {
        layout = await mkdtemp(join(dir, 'layout-'));
        await makeImage(layout, { seed: key });
        layouts.set(key, layout);
      }
      return skopeoCopy(layout, `${registry.host}/${repository}:${tag}`);
    },
    sign(repository, tag, rule) {
      // Through the proxy: images are admitted by that name, so that is the identity they are signed for.
      return signet.pipeline.signImage(parseReference(`${proxy.host}/${repository}:${tag}`), rule);
    },
    async stop() {
      signet.keys.close();
      await Promise.all([proxy.close(), limited.close()]);
      await registry.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
