/**
 * SIGTERM to `signet serve` in the middle of a burst of pushes, as Kubernetes stops a pod: the
 * process stops taking requests, answers those in flight, lets the signings in flight finish, and
 * exits 0 within `server.shutdownGraceSeconds`; what it accepted and did not sign waits in the
 * journal, and the next start on that journal signs it. Every push answered 202 ends up signed
 * exactly once per witness, checked independently (plain fetch and node:crypto).
 *
 * Signet runs in a process of its own, from the sources (bench/service.ts), in front of a real
 * registry reached through a small proxy that holds the `.sig` manifest writes until the service
 * is shutting down: signings are then certainly in flight when SIGTERM arrives, and finish during
 * the grace period. Deliveries go over kept-alive connections, as the registry's notification
 * client and the Kubernetes apiserver send them.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SOURCE_CLI, startServiceProcess, type ServiceProcess } from '../../bench/service';
import { parseConfig } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { sleep } from '../../lib/core/retry';
import { DISTRIBUTION_EVENTS_V1 } from '../../lib/events';
import { Journal, type JournalDepth } from '../../lib/journal';
import { checkSignatures, type TrustedKey } from '../support/oci-http';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  TEST_EVENTS_TOKEN,
  auditSignatures,
  inPool,
  localTrustedKeys,
  localWitnesses,
  pushEvent,
  pushImages,
  waitFor,
  type Pushed,
} from '../reliability/harness';

jest.setTimeout(180_000);

const PUSHES = 100;
/** Deliveries answered 202 before SIGTERM. */
const ACCEPTED_BEFORE_SIGTERM = 30;
const GRACE_SECONDS = 20;
/** Deliveries whose request is in the service's hands when SIGTERM arrives. */
const IN_FLIGHT = 4;
const NAMESPACE = 'shutdown';

/** A proxy in front of the registry that can hold `.sig` manifest PUTs until released. */
interface WriteHold {
  readonly host: string;
  /** `.sig` manifest PUTs waiting for `release()`. */
  readonly held: number;
  /** Forwards every held PUT, and every later one at once. */
  release(): void;
  close(): Promise<void>;
}

const SIG_MANIFEST = /^\/v2\/.+\/manifests\/sha256-[a-f0-9]{64}\.sig$/;

async function startWriteHold(target: string): Promise<WriteHold> {
  const [targetHost, targetPort] = target.split(':');
  let holding = true;
  const waiting: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    // The Host header goes through unchanged: the registry builds upload Locations from it.
    const upstream = httpRequest(
      { host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  const server: Server = createServer((req, res) => {
    if (holding && req.method === 'PUT' && SIG_MANIFEST.test(req.url ?? '')) {
      // Paused until released: the body stays in the socket buffer.
      req.pause();
      waiting.push(() => forward(req, res));
      return;
    }
    forward(req, res);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get held() {
      return waiting.length;
    },
    release() {
      holding = false;
      for (const go of waiting.splice(0)) go();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Kept-alive connections with no idle timeout of their own, like Go's HTTP clients. */
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

/** POSTs one push notification with the events token; 0 when no answer came. */
function deliver(serviceUrl: string, event: unknown): Promise<number> {
  const body = JSON.stringify({ events: [event] });
  return new Promise((resolve) => {
    const req = httpRequest(
      `${serviceUrl}/events/distribution`,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': DISTRIBUTION_EVENTS_V1,
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${TEST_EVENTS_TOKEN}`,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** A delivery whose headers and first half of the body are sent; `finish` sends the rest. */
interface OpenDelivery {
  finish(): Promise<number>;
}

function openDelivery(serviceUrl: string, event: unknown): Promise<OpenDelivery> {
  const body = Buffer.from(JSON.stringify({ events: [event] }));
  const half = Math.floor(body.length / 2);
  return new Promise((opened) => {
    const req = httpRequest(`${serviceUrl}/events/distribution`, {
      method: 'POST',
      agent,
      headers: {
        'content-type': DISTRIBUTION_EVENTS_V1,
        'content-length': body.length,
        authorization: `Bearer ${TEST_EVENTS_TOKEN}`,
      },
    });
    const answered = new Promise<number>((resolve) => {
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      });
      req.on('error', () => resolve(0));
    });
    req.write(body.subarray(0, half), () =>
      opened({
        finish: () => {
          req.end(body.subarray(half));
          return answered;
        },
      }),
    );
  });
}

/** One JSON log line of the service. */
interface LogLine {
  readonly level?: string;
  readonly message?: string;
  readonly pending?: number;
}

async function logLines(file: string): Promise<LogLine[]> {
  return (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Opens the journal without its lock, as `signet failures` does, reads it, and closes it. */
function journalDepth(config: SignetConfig): JournalDepth {
  const journal = Journal.openReadOnly(config.journal.path);
  try {
    return journal.depth();
  } finally {
    journal.close();
  }
}

let dir: string;
let registry: TestRegistry;
let hold: WriteHold;
let config: SignetConfig;
let configPath: string;
let keys: TrustedKey[];
let first: ServiceProcess | undefined;
let second: ServiceProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-shutdown-'));
  registry = await startTestRegistry();
  hold = await startWriteHold(registry.host);
  const witnesses = localWitnesses();
  const yaml = `
registries:
  - host: ${hold.host}
    insecure: true
witnesses:
${witnesses.map((w) => `  - name: ${w.witness}\n    key: ${w.key}`).join('\n')}
signingRules:
${witnesses
  .map(
    (w) => `  - name: rule-${w.witness}
    namespaces: [${NAMESPACE}]
    witness: ${w.witness}
    algorithm: ${w.algorithm}
    signatureType: ${w.signatureType}`,
  )
  .join('\n')}
server:
  eventsToken: ${TEST_EVENTS_TOKEN}
  shutdownGraceSeconds: ${GRACE_SECONDS}
journal:
  retryBaseSeconds: 0.05
  retryMaxSeconds: 0.5
`;
  configPath = join(dir, 'signet.yaml');
  await writeFile(configPath, yaml);
  config = parseConfig(yaml, { baseDir: dir, source: configPath });
});

afterAll(async () => {
  agent.destroy();
  await first?.kill('SIGKILL');
  await second?.stop();
  await hold?.close();
  await registry?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('when signet serve gets SIGTERM in the middle of a burst of pushes', () => {
  let pushed: Pushed[];
  /** The pushes whose delivery was answered 202. */
  const accepted: Pushed[] = [];
  const statuses: number[] = [];
  /** What the deliveries sent after the service logged `shutting down` were answered. */
  const afterStop: number[] = [];
  let exit: { code: number | null; signal: NodeJS.Signals | null } | 'still running';
  let heldAtSigterm: number;
  /** What the deliveries in flight at SIGTERM were answered. */
  let inFlightStatuses: number[];
  let secondsToExit: number;
  let depthAtExit: JournalDepth;
  let depthAfter: JournalDepth;

  beforeAll(async () => {
    const service = await startServiceProcess(SOURCE_CLI, configPath, join(dir, 'first.log'));
    first = service;
    keys = await localTrustedKeys(config);
    pushed = await pushImages(
      registry.url,
      Array.from({ length: PUSHES }, (_, i) => ({
        repository: `${NAMESPACE}/app-${i % 8}`,
        tag: `v${i}`,
        seed: `shutdown-${i}`,
      })),
    );
    // The burst: deliveries after the 30th accepted wait until the service is shutting down.
    let shuttingDown = (): void => undefined;
    const stopping = new Promise<void>((resolve) => (shuttingDown = resolve));
    const burst = inPool(pushed.slice(IN_FLIGHT), 16, async (image) => {
      const late = accepted.length >= ACCEPTED_BEFORE_SIGTERM;
      if (late) await stopping;
      const status = await deliver(
        service.url,
        pushEvent(hold.host, image.repository, image.digest, image.tag),
      );
      statuses.push(status);
      if (late) afterStop.push(status);
      if (status === 202) accepted.push(image);
    });
    await waitFor(
      `${ACCEPTED_BEFORE_SIGTERM} deliveries answered 202 and a signing in flight`,
      () => accepted.length >= ACCEPTED_BEFORE_SIGTERM && hold.held > 0,
      { intervalMs: 1 },
    );
    // Deliveries in flight at SIGTERM: headers and half the body sent over kept-alive connections.
    const open = await Promise.all(
      pushed
        .slice(0, IN_FLIGHT)
        .map((image) =>
          openDelivery(service.url, pushEvent(hold.host, image.repository, image.digest, image.tag)),
        ),
    );
    await sleep(100);
    heldAtSigterm = hold.held;
    const sigtermAt = Date.now();
    const terminated = service.kill('SIGTERM');
    await waitFor(
      'the service to log that it is shutting down',
      async () => (await logLines(join(dir, 'first.log'))).some((l) => l.message === 'shutting down'),
      { intervalMs: 10, timeoutMs: 10_000 },
    );
    // The requests in flight are answered; the signings in flight finish within the grace period.
    inFlightStatuses = await Promise.all(open.map((delivery) => delivery.finish()));
    pushed.slice(0, IN_FLIGHT).forEach((image, i) => {
      if (inFlightStatuses[i] === 202) accepted.push(image);
    });
    hold.release();
    // The rest of the burst comes after the service began to stop.
    shuttingDown();
    await burst;
    // The bound a stop must keep (Kubernetes kills the pod after its grace period), with room
    // for a loaded machine to start the stop.
    let timer: NodeJS.Timeout | undefined;
    exit = await Promise.race([
      terminated,
      new Promise<'still running'>((resolve) => {
        timer = setTimeout(() => resolve('still running'), (GRACE_SECONDS + 10) * 1000);
      }),
    ]);
    clearTimeout(timer);
    secondsToExit = (Date.now() - sigtermAt) / 1000;
    if (exit === 'still running') return;
    first = undefined;
    depthAtExit = journalDepth(config);

    second = await startServiceProcess(SOURCE_CLI, configPath, join(dir, 'second.log'));
    await waitFor(
      'the restarted service to drain the journal',
      () => {
        const depth = journalDepth(config);
        return depth.pending + depth.running === 0;
      },
      { intervalMs: 100, describe: () => JSON.stringify(journalDepth(config)) },
    );
    depthAfter = journalDepth(config);
  });

  it('got SIGTERM mid-burst, with deliveries and signings in flight', () => {
    expect(accepted.length).toBeGreaterThanOrEqual(ACCEPTED_BEFORE_SIGTERM);
    expect(heldAtSigterm).toBeGreaterThan(0);
  });

  it('answered the deliveries in flight at SIGTERM', () => {
    expect(inFlightStatuses).toEqual(Array(IN_FLIGHT).fill(202));
  });

  it('refused the deliveries that came after it began to stop, kept-alive connections included', () => {
    expect(statuses).toHaveLength(PUSHES - IN_FLIGHT);
    expect(statuses.filter((s) => s !== 202 && s !== 0)).toEqual([]);
    expect(afterStop.length).toBeGreaterThan(0);
    expect(afterStop.filter((s) => s !== 0)).toEqual([]);
  });

  it('exited 0 within the grace period', () => {
    expect(exit).toEqual({ code: 0, signal: null });
    expect(secondsToExit).toBeLessThan(GRACE_SECONDS);
  });

  it('let the signings in flight finish and logged `signet stopped`', async () => {
    const lines = await logLines(join(dir, 'first.log'));
    expect(lines.map((l) => l.message)).toEqual(expect.arrayContaining(['shutting down', 'signet stopped']));
    // Not `journal worker stopped with attempts in flight`; the only warning is the config's PSS one.
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual(['config']);
    expect(depthAtExit.running).toBe(0);
  });

  it('left the accepted pushes it had not signed in the journal for the next start', async () => {
    expect(depthAtExit.pending).toBeGreaterThan(0);
    const started = (await logLines(join(dir, 'second.log'))).find((l) => l.message === 'signet listening');
    expect(started?.pending).toBe(depthAtExit.pending);
  });

  it('signs every push answered 202, exactly once per witness, after the restart', async () => {
    expect(depthAfter).toEqual({ pending: 0, running: 0, deadLetters: 0 });
    expect(await auditSignatures(registry.url, accepted, keys)).toEqual([]);
  });

  it('doubled no signature of any push, answered or not', async () => {
    const doubled: string[] = [];
    await inPool(pushed, 16, async (image) => {
      const check = await checkSignatures(registry.url, image.repository, image.digest, keys);
      const counts = [...check.byWitness.values()];
      if (check.problems.length > 0 || counts.some((n) => n > 1) || check.layers > keys.length) {
        doubled.push(
          `${image.repository}@${image.digest}: ${check.layers} layers, ${check.problems.join('; ')}`,
        );
      }
    });
    expect(doubled).toEqual([]);
  });
});
