/**
 * `signet serve` over HTTPS, as Kubernetes calls a webhook: a serving certificate from a private
 * CA (made with openssl, test/support/tls-ca.ts) that Node's own client and curl verify with that
 * CA only; renewals swapped on disk the way cert-manager and the kubelet do it (files renamed into
 * place, a Secret volume's `..data` symlink swapped), served to the next connection while open
 * connections keep their certificate; a half-written renewal that keeps the old certificate; and
 * mutual TLS with `clientCaFile`. The services reload every 200 ms (`tlsReloadMs`); waits are
 * bounded generously and no timing is asserted.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { Agent, request, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { startService, type RunningService } from '../../cli/serve';
import { parseConfig } from '../../lib/config/load';
import { jsonLogger } from '../../lib/core/logger';
import { waitFor } from '../reliability/harness';
import { createCa, type IssuedCertificate, type TestCa } from '../support/tls-ca';

const RELOAD_MS = 200;
/** "Within a few reload intervals", bounded generously for a loaded machine. */
const RELOAD_DEADLINE_MS = 15_000;

const exec = promisify(execFile);

let dir: string;
let ca: TestCa;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-tls-'));
  ca = await createCa(dir, 'webhook-ca');
});

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** A service started on its own directory (keys, journal) with `tls`, and its log lines. */
interface TlsService {
  readonly running: RunningService;
  readonly lines: string[];
  /** The log lines with this message, parsed. */
  logged(message: string): Record<string, unknown>[];
}

async function startTlsService(
  name: string,
  tls: { certFile: string; keyFile: string; clientCaFile?: string },
): Promise<TlsService> {
  const base = join(dir, name);
  await mkdir(base, { recursive: true });
  const yaml = `
registries:
  - host: 127.0.0.1:9
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: all
    repositories: ["**"]
    witness: release
    algorithm: ECDSA_SHA_256
server:
  tls:
    certFile: ${tls.certFile}
    keyFile: ${tls.keyFile}${tls.clientCaFile !== undefined ? `\n    clientCaFile: ${tls.clientCaFile}` : ''}
`;
  const config = parseConfig(yaml, { baseDir: base, source: join(base, 'signet.yaml') });
  const lines: string[] = [];
  const running = await startService(config, {
    logger: jsonLogger('debug', (line) => lines.push(line)),
    port: 0,
    tlsReloadMs: RELOAD_MS,
  });
  return {
    running,
    lines,
    logged: (message) =>
      lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line['message'] === message),
  };
}

/** What one HTTPS request got: the answer, the certificate the server presented, the connection. */
interface Answer {
  readonly status: number;
  readonly body: string;
  readonly fingerprint: string;
  /** The client's port: the same port means the same connection. */
  readonly localPort: number;
}

/** `GET <path>` over HTTPS to 127.0.0.1:<port>; rejects when the handshake or the request fails. */
function get(port: number, options: RequestOptions = {}, path = '/healthz'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, ...options }, (res) => {
      const socket = res.socket as TLSSocket;
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      const localPort = socket.localPort ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          fingerprint,
          localPort,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.end();
  });
}

/** `curl` exit status and output (0: verified and answered). */
async function curl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec('curl', ['--silent', '--show-error', '--max-time', '10', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Writes next to `path` and renames over it: readers see the old bytes or the new, never a mix. */
async function writeAtomically(path: string, content: string): Promise<void> {
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, content);
  await rename(temp, path);
}

/** The fingerprint a new connection is served with. */
async function servedTo(port: number): Promise<string> {
  return (await get(port, { ca: ca.cert })).fingerprint;
}

/** Waits until new connections get `certificate`. */
async function untilServed(port: number, certificate: IssuedCertificate): Promise<void> {
  await waitFor(
    `new connections to get ${certificate.certFile}`,
    async () => (await servedTo(port)) === certificate.fingerprint,
    { timeoutMs: RELOAD_DEADLINE_MS, intervalMs: 50 },
  );
}

describe('when the service serves HTTPS with a certificate from a private CA', () => {
  let service: TlsService;
  let serving: IssuedCertificate;

  beforeAll(async () => {
    serving = await ca.issue('chain-serving');
    service = await startTlsService('chain', { certFile: serving.certFile, keyFile: serving.keyFile });
  });

  afterAll(async () => {
    await service?.running.stop();
  });

  it('listens on an https:// URL', () => {
    expect(service.running.url).toBe(`https://127.0.0.1:${service.running.port}`);
  });

  it("verifies with Node's client given the CA, for the IP SAN and for the localhost SAN", async () => {
    const byIp = await get(service.running.port, { ca: ca.cert });
    expect(byIp).toMatchObject({ status: 200, fingerprint: serving.fingerprint });
    expect(JSON.parse(byIp.body)).toEqual({ status: 'ok' });
    const byName = await get(service.running.port, { ca: ca.cert, servername: 'localhost' });
    expect(byName.status).toBe(200);
  });

  it('verifies with curl --cacert, by IP and by name', async () => {
    const port = service.running.port;
    const byIp = await curl(['--cacert', ca.certFile, `https://127.0.0.1:${port}/healthz`]);
    expect(byIp).toMatchObject({ code: 0, stdout: '{"status":"ok"}' });
    const byName = await curl([
      '--cacert',
      ca.certFile,
      '--resolve',
      `localhost:${port}:127.0.0.1`,
      `https://localhost:${port}/healthz`,
    ]);
    expect(byName).toMatchObject({ code: 0, stdout: '{"status":"ok"}' });
  });

  it('is refused by a client without the CA, and by one that trusts another CA', async () => {
    await expect(get(service.running.port)).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    const other = await createCa(join(dir, 'chain'), 'other-ca');
    await expect(get(service.running.port, { ca: other.cert })).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    // curl 60: the peer certificate cannot be authenticated with the known CA certificates.
    const plain = await curl([`https://127.0.0.1:${service.running.port}/healthz`]);
    expect(plain.code).toBe(60);
  });

  it('is refused for a name the certificate does not hold', async () => {
    await expect(
      get(service.running.port, { ca: ca.cert, servername: 'signet.example.com' }),
    ).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });
});

describe('when a renewed certificate and key are renamed into place', () => {
  let service: TlsService;
  let before: IssuedCertificate;
  let after: IssuedCertificate;
  let tlsDir: string;
  /** One kept-alive connection, opened before the renewal. */
  let agent: Agent;
  let first: Answer;

  beforeAll(async () => {
    tlsDir = join(dir, 'rename', 'tls');
    await mkdir(tlsDir, { recursive: true });
    before = await ca.issue('rename-before');
    after = await ca.issue('rename-after');
    await writeAtomically(join(tlsDir, 'tls.crt'), before.cert);
    await writeAtomically(join(tlsDir, 'tls.key'), before.key);
    service = await startTlsService('rename', {
      certFile: join(tlsDir, 'tls.crt'),
      keyFile: join(tlsDir, 'tls.key'),
    });
    agent = new Agent({ keepAlive: true, maxSockets: 1, ca: ca.cert });
    first = await get(service.running.port, { agent });
    // Two renames: a reload between them sees the new key with the old certificate and must
    // keep serving the old pair until the certificate follows.
    await writeAtomically(join(tlsDir, 'tls.key'), after.key);
    await writeAtomically(join(tlsDir, 'tls.crt'), after.cert);
  });

  afterAll(async () => {
    agent?.destroy();
    await service?.running.stop();
  });

  it('served the old certificate before the swap', () => {
    expect(first).toMatchObject({ status: 200, fingerprint: before.fingerprint });
  });

  it('serves the new certificate to the next connections within a few reload intervals', async () => {
    await untilServed(service.running.port, after);
    expect(service.logged('TLS certificate reloaded').length).toBeGreaterThanOrEqual(1);
  });

  it('keeps the connection opened before the swap working, with the certificate it was opened with', async () => {
    await untilServed(service.running.port, after);
    const again = await get(service.running.port, { agent });
    expect(again).toMatchObject({ status: 200, fingerprint: before.fingerprint, localPort: first.localPort });
  });

  it('is verified by curl with the new certificate', async () => {
    await untilServed(service.running.port, after);
    const answer = await curl(['--cacert', ca.certFile, `https://127.0.0.1:${service.running.port}/healthz`]);
    expect(answer).toMatchObject({ code: 0, stdout: '{"status":"ok"}' });
  });
});

describe("when a mounted Secret's ..data symlink is swapped, as the kubelet does", () => {
  let service: TlsService;
  let before: IssuedCertificate;
  let after: IssuedCertificate;
  let secret: string;
  let agent: Agent;
  let first: Answer;

  /** Writes a timestamped directory with tls.crt and tls.key and points `..data` at it atomically. */
  async function project(version: string, pair: IssuedCertificate): Promise<void> {
    const target = `..${version}`;
    await mkdir(join(secret, target));
    await writeFile(join(secret, target, 'tls.crt'), pair.cert);
    await writeFile(join(secret, target, 'tls.key'), pair.key);
    await symlink(target, join(secret, '..data_tmp'));
    await rename(join(secret, '..data_tmp'), join(secret, '..data'));
  }

  beforeAll(async () => {
    secret = join(dir, 'symlink', 'secret');
    await mkdir(secret, { recursive: true });
    before = await ca.issue('symlink-before');
    after = await ca.issue('symlink-after');
    await project('2026_01_01_00_00_00.1', before);
    await symlink('..data/tls.crt', join(secret, 'tls.crt'));
    await symlink('..data/tls.key', join(secret, 'tls.key'));
    service = await startTlsService('symlink', {
      certFile: join(secret, 'tls.crt'),
      keyFile: join(secret, 'tls.key'),
    });
    agent = new Agent({ keepAlive: true, maxSockets: 1, ca: ca.cert });
    first = await get(service.running.port, { agent });
    await project('2026_02_01_00_00_00.2', after);
    await rm(join(secret, '..2026_01_01_00_00_00.1'), { recursive: true });
  });

  afterAll(async () => {
    agent?.destroy();
    await service?.running.stop();
  });

  it('serves the new certificate to the next connections within a few reload intervals', async () => {
    expect(first.fingerprint).toBe(before.fingerprint);
    await untilServed(service.running.port, after);
  });

  it('keeps the connection opened before the swap working', async () => {
    await untilServed(service.running.port, after);
    const again = await get(service.running.port, { agent });
    expect(again).toMatchObject({ status: 200, fingerprint: before.fingerprint, localPort: first.localPort });
  });

  it('never warned: both files changed at once', () => {
    expect(service.logged('TLS files not reloaded; serving the previous certificate')).toEqual([]);
  });
});

describe('when a renewal is half-written', () => {
  const WARNING = 'TLS files not reloaded; serving the previous certificate';
  let service: TlsService;
  let before: IssuedCertificate;
  let after: IssuedCertificate;
  let certFile: string;
  let keyFile: string;

  /** Waits for a reload warning logged after `count` earlier ones whose cause matches `cause`. */
  async function untilWarned(count: number, cause: RegExp): Promise<Record<string, unknown>> {
    let found: Record<string, unknown> | undefined;
    await waitFor(
      `a reload warning matching ${cause}`,
      () => {
        found = service
          .logged(WARNING)
          .slice(count)
          .find((w) => cause.test(String(w['cause'])));
        return found !== undefined;
      },
      { timeoutMs: RELOAD_DEADLINE_MS, describe: () => service.lines.slice(-5).join('\n') },
    );
    return found as Record<string, unknown>;
  }

  beforeAll(async () => {
    const tlsDir = join(dir, 'half', 'tls');
    await mkdir(tlsDir, { recursive: true });
    before = await ca.issue('half-before');
    after = await ca.issue('half-after');
    certFile = join(tlsDir, 'tls.crt');
    keyFile = join(tlsDir, 'tls.key');
    await writeFile(certFile, before.cert);
    await writeFile(keyFile, before.key);
    service = await startTlsService('half', { certFile, keyFile });
  });

  afterAll(async () => {
    await service?.running.stop();
  });

  it('keeps the old certificate, and warns, while the certificate file is cut short', async () => {
    const count = service.logged(WARNING).length;
    await writeFile(certFile, after.cert.slice(0, Math.floor(after.cert.length / 2)));
    const warning = await untilWarned(count, /./);
    expect(warning).toMatchObject({ level: 'warn', certFile });
    expect(await servedTo(service.running.port)).toBe(before.fingerprint);
  });

  it('keeps the old certificate, and warns, while the new certificate does not match the key', async () => {
    const count = service.logged(WARNING).length;
    await writeFile(certFile, after.cert);
    await untilWarned(count, /key values mismatch/i);
    expect(await servedTo(service.running.port)).toBe(before.fingerprint);
  });

  it('serves the new certificate once its key is written too', async () => {
    await writeFile(keyFile, after.key);
    await untilServed(service.running.port, after);
    expect(service.logged('TLS certificate reloaded')).toEqual([
      expect.objectContaining({ level: 'info', certFile }),
    ]);
  });
});

/**
 * How the server refuses a client certificate during a TLS 1.3 handshake, as the client sees it:
 * the server's alert, or the connection closed after it.
 */
const REFUSALS = [
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ECONNRESET',
  'EPIPE',
];

/** The error code a request failed with; throws if it got an answer. */
async function refusal(answer: Promise<Answer>): Promise<string> {
  const outcome = await answer.then(
    (got) => ({ got }),
    (err: unknown) => ({ code: String((err as { code?: unknown }).code) }),
  );
  if ('got' in outcome) throw new Error(`answered ${outcome.got.status}: ${outcome.got.body}`);
  return outcome.code;
}

describe('when the service requires client certificates (clientCaFile)', () => {
  let service: TlsService;
  let clientCa: TestCa;
  let client: IssuedCertificate;
  let stranger: IssuedCertificate;
  let serving: IssuedCertificate;

  beforeAll(async () => {
    const mtls = join(dir, 'mtls');
    await mkdir(mtls, { recursive: true });
    clientCa = await createCa(mtls, 'client-ca');
    client = await clientCa.issue('apiserver', { client: true });
    stranger = await (await createCa(mtls, 'stranger-ca')).issue('stranger', { client: true });
    serving = await ca.issue('mtls-serving');
    service = await startTlsService('mtls', {
      certFile: serving.certFile,
      keyFile: serving.keyFile,
      clientCaFile: clientCa.certFile,
    });
  });

  afterAll(async () => {
    await service?.running.stop();
  });

  it('serves a client with a certificate from that CA', async () => {
    const answer = await get(service.running.port, { ca: ca.cert, cert: client.cert, key: client.key });
    expect(answer).toMatchObject({ status: 200, fingerprint: serving.fingerprint });
    const byCurl = await curl([
      '--cacert',
      ca.certFile,
      '--cert',
      client.certFile,
      '--key',
      client.keyFile,
      `https://127.0.0.1:${service.running.port}/healthz`,
    ]);
    expect(byCurl).toMatchObject({ code: 0, stdout: '{"status":"ok"}' });
  });

  it('refuses a client without a certificate', async () => {
    expect(await refusal(get(service.running.port, { ca: ca.cert }))).toBe(
      'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
    );
    const byCurl = await curl(['--cacert', ca.certFile, `https://127.0.0.1:${service.running.port}/healthz`]);
    expect(byCurl.code).not.toBe(0);
    expect(byCurl.stdout).toBe('');
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    expect(REFUSALS).toContain(
      await refusal(get(service.running.port, { ca: ca.cert, cert: stranger.cert, key: stranger.key })),
    );
  });

  it('still requires client certificates after the serving certificate is renewed', async () => {
    const renewed = await ca.issue('mtls-renewed');
    await writeAtomically(serving.keyFile, renewed.key);
    await writeAtomically(serving.certFile, renewed.cert);
    await waitFor(
      'the renewed certificate to be served to a client with a certificate',
      async () =>
        (await get(service.running.port, { ca: ca.cert, cert: client.cert, key: client.key })).fingerprint ===
        renewed.fingerprint,
      { timeoutMs: RELOAD_DEADLINE_MS, intervalMs: 50 },
    );
    expect(await refusal(get(service.running.port, { ca: ca.cert }))).toBe(
      'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
    );
  });
});
