import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError } from '../lib/core/errors';
import { sleep } from '../lib/core/retry';

/**
 * Runs a CNCF distribution registry (`docker-registry` on Debian, `registry` upstream) as a child
 * process, for `signet serve` with an embedded registry and for integration tests.
 */

/** How to start the embedded registry. */
export interface EmbeddedRegistryOptions {
  /** `host:port` to listen on, e.g. `127.0.0.1:5000`. */
  readonly host: string;
  /** Holds the generated config and the registry's storage. Created when missing. */
  readonly dataDir: string;
  /** Where the registry POSTs its push/pull notifications. */
  readonly notifyUrl?: string;
  /** Sent as `Authorization: Bearer <token>` with every notification (Signet's events token). */
  readonly notifyToken?: string;
  /**
   * How long the registry waits before delivering again once 3 deliveries in a row failed; it
   * re-delivers a notification until it is answered 2xx or 3xx. Default 1000 ms.
   */
  readonly notifyBackoffMs?: number;
  /** The registry binary; default: `docker-registry`, then `registry`, found on PATH. */
  readonly binary?: string;
  /** Basic auth from an htpasswd file (bcrypt entries only). */
  readonly htpasswd?: { readonly path: string };
  /** Bearer token auth per the distribution token spec. */
  readonly tokenAuth?: {
    readonly realm: string;
    readonly service: string;
    readonly issuer: string;
    /** PEM certificates whose keys (or chains) sign the tokens. */
    readonly rootCertBundlePath: string;
  };
  /** Appends the registry's stdout and stderr here. */
  readonly logFile?: string;
  /** How long to wait for `GET /v2/` to answer; default 15s. */
  readonly startTimeoutMs?: number;
}

/** A running embedded registry. */
export interface EmbeddedRegistry {
  /** `host:port` as given. */
  readonly host: string;
  /** `http://host:port`. */
  readonly url: string;
  readonly process: ChildProcess;
  /** Resolves when the process exits, for whatever reason (a crash, a kill, `stop`). */
  readonly exited: Promise<RegistryExit>;
  /** The last few KiB the registry wrote to stderr (its log). */
  logTail(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

/** How the registry process ended. */
export interface RegistryExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

/** `exited with code 2`, `exited with signal SIGKILL`, or the spawn error. */
export function describeExit(exit: RegistryExit): string {
  if (exit.error !== undefined) return exit.error.message;
  return `exited with ${exit.signal !== null ? `signal ${exit.signal}` : `code ${String(exit.code)}`}`;
}

const DEFAULT_START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
const STDERR_TAIL_BYTES = 4_096;
const CANDIDATE_BINARIES = ['docker-registry', 'registry'];

const INSTALL_HINT =
  'install the CNCF distribution registry: `apt-get install -y docker-registry` on Debian/Ubuntu, ' +
  'or put the upstream `registry` binary from distribution/distribution on PATH';

/** The distribution config Signet runs the registry with (exported for tests and `signet serve --print-config`). */
export function embeddedRegistryConfig(opts: EmbeddedRegistryOptions): Record<string, unknown> {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(resolve(opts.dataDir), 'storage') },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: opts.host,
      // A fixed secret per data dir would be nicer, but a single instance never shares upload state.
      secret: randomBytes(16).toString('hex'),
      headers: { 'X-Content-Type-Options': ['nosniff'] },
    },
  };
  const backoffMs = opts.notifyBackoffMs ?? 1000;
  if (!Number.isSafeInteger(backoffMs) || backoffMs < 0) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `notifyBackoffMs must be a whole number of milliseconds, got ${backoffMs}`,
    );
  }
  if (opts.notifyUrl !== undefined) {
    config['notifications'] = {
      endpoints: [
        {
          name: 'signet',
          url: opts.notifyUrl,
          // distribution sends each configured header with every delivery; values are lists.
          headers: opts.notifyToken !== undefined ? { Authorization: [`Bearer ${opts.notifyToken}`] } : {},
          timeout: '5s',
          threshold: 3,
          backoff: `${backoffMs}ms`,
        },
      ],
    };
  }
  if (opts.htpasswd !== undefined && opts.tokenAuth !== undefined) {
    throw new ConfigError('CONFIG_INVALID', 'the embedded registry takes htpasswd or token auth, not both');
  }
  if (opts.htpasswd !== undefined) {
    config['auth'] = { htpasswd: { realm: 'signet', path: resolve(opts.htpasswd.path) } };
  }
  if (opts.tokenAuth !== undefined) {
    config['auth'] = {
      token: {
        realm: opts.tokenAuth.realm,
        service: opts.tokenAuth.service,
        issuer: opts.tokenAuth.issuer,
        rootcertbundle: resolve(opts.tokenAuth.rootCertBundlePath),
      },
    };
  }
  return config;
}

/** The registry binary to run: the given one, or the first candidate on PATH. */
export function findRegistryBinary(binary?: string, path = process.env['PATH'] ?? ''): string {
  const candidates =
    binary === undefined
      ? CANDIDATE_BINARIES.flatMap((name) =>
          path
            .split(delimiter)
            .filter(Boolean)
            .map((dir) => join(dir, name)),
        )
      : isAbsolute(binary) || binary.includes('/')
        ? [resolve(binary)]
        : path
            .split(delimiter)
            .filter(Boolean)
            .map((dir) => join(dir, binary));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  const wanted = binary ?? CANDIDATE_BINARIES.join(' or ');
  throw new ConfigError('REGISTRY_BINARY_MISSING', `registry binary ${wanted} not found: ${INSTALL_HINT}`);
}

/** Writes the config into `dataDir`, starts the registry and waits until `GET /v2/` answers. */
export async function startEmbeddedRegistry(opts: EmbeddedRegistryOptions): Promise<EmbeddedRegistry> {
  const binary = findRegistryBinary(opts.binary);
  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  const configPath = join(dataDir, 'registry.yml');
  await writeFile(configPath, stringify(embeddedRegistryConfig(opts)), { mode: 0o600 });

  // REGISTRY_* variables override the config file; ours must be the whole truth.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('REGISTRY_')),
  );
  const child = spawn(binary, ['serve', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: WriteStream | undefined =
    opts.logFile !== undefined ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  let stderrTail = '';
  child.stdout?.on('data', (chunk: Buffer) => log?.write(chunk));
  child.stderr?.on('data', (chunk: Buffer) => {
    log?.write(chunk);
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
  });

  let exit: RegistryExit | undefined;
  const exitInfo = new Promise<RegistryExit>((done) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      done(exit);
    });
    child.once('error', (error) => {
      exit = { code: null, signal: null, error };
      done(exit);
    });
  });
  const exited = exitInfo.then(() => undefined);
  // If the parent dies without calling stop(), do not leave a registry behind.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exit === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      process.removeListener('exit', killOnExit);
      await new Promise<void>((done) => (log ? log.end(done) : done()));
    })();
    return stopping;
  };

  const url = `http://${opts.host}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  while (true) {
    if (exit !== undefined) {
      await stop();
      const how = describeExit(exit);
      // distribution exits at once when its address is taken ("bind: address already in use").
      const code = /address already in use/i.test(stderrTail) ? 'PORT_IN_USE' : 'CONFIG_INVALID';
      throw new ConfigError(code, `embedded registry ${binary} ${how}: ${stderrTail.trim()}`, {
        cause: exit.error,
      });
    }
    // Another process on the port would answer too; ours must still be alive afterwards.
    if ((await answers(`${url}/v2/`)) && (await sleep(50), exit === undefined)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new ConfigError(
        'CONFIG_INVALID',
        `embedded registry on ${opts.host} did not answer within ${opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms: ${stderrTail.trim()}`,
      );
    }
    await sleep(50);
  }
  return { host: opts.host, url, process: child, exited: exitInfo, logTail: () => stderrTail, stop };
}

/** A distribution answer (200, or 401 when auth is on) means the registry is serving. */
async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return res.headers.has('docker-distribution-api-version');
  } catch {
    return false;
  }
}
