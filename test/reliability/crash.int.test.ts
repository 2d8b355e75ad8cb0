/**
 * `kill -9` of `signet serve` in the middle of a burst: every push it answered 202 is signed by
 * the next start on the same journal, exactly once per witness, and nothing is signed twice.
 *
 * Signet runs as users run it, `signet serve` in a process of its own (bench/service.ts, from the
 * sources), on a real registry reached through a small proxy. The proxy lets the test catch the
 * one moment a crash is most likely to double a signature: a push whose `.sig` manifest is written
 * (the registry answered the PUT 201) while its journal entry is still `running` (the attempt
 * reads the manifest back before it completes the entry). The read-back of the first push that
 * gets there is held (the other attempts go on), and the process is killed once at least 60 deliveries were answered 202;
 * deliveries after the 60th wait for the kill, so that it lands mid-burst however fast the
 * machine is. The next start recovers the running entries and signs them again: the pipeline
 * finds the held push's signatures in place and writes no second layer.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import {
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
import { Journal, type JournalDepth } from '../../lib/journal';
import { checkSignatures, type TrustedKey } from '../support/oci-http';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  LOCAL_WITNESSES,
  auditSignatures,
  deliver,
  inPool,
  localConfigYaml,
  localTrustedKeys,
  pushEvent,
  pushImages,
  waitFor,
  type Pushed,
} from './harness';

jest.setTimeout(180_000);

const PUSHES = 200;
/** Deliveries answered 202 before the kill. */
const ACCEPTED_BEFORE_KILL = 60;
const NAMESPACE = 'crash';

/** A proxy in front of the registry that can hold the read-back of a `.sig` manifest just written. */
interface ReadBackTrap {
  readonly host: string;
  /**
   * While set, the first GET of a `.sig` manifest that a PUT through the proxy wrote is never
   * answered; everything else goes through.
   */
  armed: boolean;
  /** `/v2/<repository>/manifests/sha256-<hex>.sig` of the read-back held, if any. */
  readonly held: readonly string[];
  close(): Promise<void>;
}

const SIG_MANIFEST = /^\/v2\/.+\/manifests\/sha256-[a-f0-9]{64}\.sig$/;

async function startReadBackTrap(target: string): Promise<ReadBackTrap> {
  const [targetHost, targetPort] = target.split(':');
  const written = new Set<string>();
  const held: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    if (trap.armed && held.length === 0 && req.method === 'GET' && written.has(path)) {
      held.push(path);
      req.resume();
      return;
    }
    // The Host header goes through unchanged: the registry builds upload Locations from it.
    const upstream = httpRequest(
      { host: targetHost, port: Number(targetPort), method: req.method, path, headers: req.headers },
      (answer) => {
        if (req.method === 'PUT' && SIG_MANIFEST.test(path) && answer.statusCode === 201) written.add(path);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const trap: ReadBackTrap = {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    armed: false,
    held,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return trap;
}

/** One JSON log line of the service. */
interface LogLine {
  readonly message?: string;
  readonly digest?: string;
  readonly witness?: string;
}

async function logLines(file: string): Promise<LogLine[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Opens the journal without its lock, as `signet failures` does, reads it, and closes it. */
function readJournal<T>(config: SignetConfig, read: (journal: Journal) => T): T {
  const journal = Journal.openReadOnly(config.journal.path);
  try {
    return read(journal);
  } finally {
    journal.close();
  }
}

let dir: string;
let registry: TestRegistry;
let trap: ReadBackTrap;
let config: SignetConfig;
let configPath: string;
let keys: TrustedKey[];
let first: ServiceProcess | undefined;
let second: ServiceProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-crash-'));
  registry = await startTestRegistry();
  trap = await startReadBackTrap(registry.host);
  const yaml = localConfigYaml(trap.host, NAMESPACE);
  configPath = join(dir, 'signet.yaml');
  await writeFile(configPath, yaml);
  config = parseConfig(yaml, { baseDir: dir, source: configPath });
});

afterAll(async () => {
  await first?.kill('SIGKILL');
  await second?.stop();
  await trap?.close();
  await registry?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('when signet serve is killed with SIGKILL in the middle of a burst of pushes', () => {
  let pushed: Pushed[];
  /** The pushes whose delivery was answered 202 before the kill. */
  const accepted: Pushed[] = [];
  const statuses: number[] = [];
  let killedBy: NodeJS.Signals | null;
  /** The push whose signatures were written but whose attempt the kill cut short. */
  let held: Pushed;
  let heldBeforeRestart: string[];
  let depthAtKill: JournalDepth;
  let depthAfter: JournalDepth;

  beforeAll(async () => {
    const service = await startServiceProcess(SOURCE_CLI, configPath, join(dir, 'first.log'));
    first = service;
    // The service created the witnesses' keys at its start.
    keys = await localTrustedKeys(config);
    pushed = await pushImages(
      registry.url,
      Array.from({ length: PUSHES }, (_, i) => ({
        repository: `${NAMESPACE}/app-${i % 8}`,
        tag: `v${i}`,
        seed: `crash-${i}`,
      })),
    );
    trap.armed = true;
    const killed = waitFor(
      `${ACCEPTED_BEFORE_KILL} deliveries answered 202 and a signature read-back held`,
      () => accepted.length >= ACCEPTED_BEFORE_KILL && trap.held.length > 0,
      { intervalMs: 1 },
    ).then(() => service.kill('SIGKILL'));
    await inPool(pushed, 16, async (image) => {
      if (accepted.length >= ACCEPTED_BEFORE_KILL) await killed;
      const answer = await deliver(service.url, [
        pushEvent(trap.host, image.repository, image.digest, image.tag),
      ]);
      statuses.push(answer.status);
      if (answer.status === 202) accepted.push(image);
    });
    killedBy = (await killed).signal;
    first = undefined;

    const heldPath = trap.held[0] as string;
    held = pushed.find((p) => heldPath.endsWith(`/manifests/${p.digest.replace(':', '-')}.sig`)) as Pushed;
    heldBeforeRestart = await auditSignatures(registry.url, [held], keys);
    depthAtKill = readJournal(config, (journal) => journal.depth());
    trap.armed = false;

    second = await startServiceProcess(SOURCE_CLI, configPath, join(dir, 'second.log'));
    await waitFor(
      'the restarted service to drain the journal',
      () => {
        const depth = readJournal(config, (journal) => journal.depth());
        return depth.pending + depth.running === 0;
      },
      { intervalMs: 100, describe: () => JSON.stringify(readJournal(config, (journal) => journal.depth())) },
    );
    depthAfter = readJournal(config, (journal) => journal.depth());
  });

  it('was killed mid-burst: 60 or more deliveries answered 202, and later ones found no service', () => {
    expect(killedBy).toBe('SIGKILL');
    expect(accepted.length).toBeGreaterThanOrEqual(ACCEPTED_BEFORE_KILL);
    expect(statuses.filter((s) => s !== 202 && s !== 0)).toEqual([]);
    expect(statuses.filter((s) => s === 0).length).toBeGreaterThan(0);
  });

  it('left running entries in the journal, and the held push signed in the registry', () => {
    expect(depthAtKill.running).toBeGreaterThan(0);
    expect(heldBeforeRestart).toEqual([]);
  });

  it('signs every push answered 202 after the restart, exactly once per witness', async () => {
    expect(depthAfter).toEqual({ pending: 0, running: 0, deadLetters: 0 });
    expect(await auditSignatures(registry.url, accepted, keys)).toEqual([]);
  });

  it('recovered the held push at the restart, found it already signed, and wrote no second layer', async () => {
    const lines = (await logLines(join(dir, 'second.log'))).filter((l) => l.digest === held.digest);
    expect(lines.map((l) => [l.message, l.witness]).sort()).toEqual(
      LOCAL_WITNESSES.map((w) => ['already signed', w.witness]).sort(),
    );
    const check = await checkSignatures(registry.url, held.repository, held.digest, keys);
    expect(check.layers).toBe(LOCAL_WITNESSES.length);
  });

  it('attempted in the second process exactly the pushes the first had left in its journal', async () => {
    const outcomes = (await logLines(join(dir, 'second.log'))).filter(
      (l) => l.message === 'image signed' || l.message === 'already signed',
    );
    const digests = new Set(outcomes.map((l) => l.digest));
    expect(digests.size).toBe(depthAtKill.pending + depthAtKill.running);
    expect(outcomes).toHaveLength(digests.size * LOCAL_WITNESSES.length);
  });

  it('doubled no signature of any push, answered or not', async () => {
    const doubled: string[] = [];
    await inPool(pushed, 16, async (image) => {
      const check = await checkSignatures(registry.url, image.repository, image.digest, keys);
      const counts = [...check.byWitness.values()];
      if (check.problems.length > 0 || counts.some((n) => n > 1) || check.layers > keys.length) {
        doubled.push(
          `${image.repository}@${image.digest}: ${JSON.stringify({ ...check, byWitness: counts })}`,
        );
      }
    });
    expect(doubled).toEqual([]);
  });
});
