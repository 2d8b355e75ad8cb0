/**
 * `/healthz` and `/readyz` while the embedded registry dies under the service: killed with
 * SIGKILL, it is reported not ready (503, the reason in JSON) within seconds, restarted with
 * backoff, ready again, and a push made after the restart is signed; killed over and over, it is
 * logged as `embedded registry keeps crashing` with its last log lines. `/healthz` (liveness)
 * answers 200 throughout: a dead registry is no reason to restart Signet.
 */
import { createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startService, type RunningService } from '../../cli/serve';
import { parseConfig } from '../../lib/config/load';
import { jsonLogger } from '../../lib/core/logger';
import { sleep } from '../../lib/core/retry';
import { checkSignatures, pushImageOverHttp, type TrustedKey } from '../support/oci-http';
import { freePort } from '../support/ports';
import { waitFor } from '../reliability/harness';

jest.setTimeout(120_000);

/** How long each step may take on a loaded machine; reached only when something is wrong. */
const STEP_TIMEOUT_MS = 30_000;

let dir: string;
let running: RunningService;
let host: string;
let registryUrl: string;
let keys: TrustedKey[];
const lines: string[] = [];

/** One answer of a probe. */
interface Probe {
  readonly path: string;
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function probe(path: '/healthz' | '/readyz'): Promise<Probe> {
  const res = await fetch(`${running.url}${path}`);
  return { path, status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Every answer of `/healthz` and `/readyz`, asked every 20 ms while the tests run. */
const probes: Probe[] = [];
let probing = true;
let prober: Promise<void>;

function logged(message: string): Record<string, unknown>[] {
  return lines
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line['message'] === message);
}

/** The registry process now running under supervision. */
function current(): ChildProcess {
  const child = running.registry?.process?.process;
  if (child === undefined) throw new Error('no embedded registry');
  return child;
}

/** Waits until the supervisor runs a registry process other than `killed`, and it is up. */
async function untilRestarted(killed: ChildProcess): Promise<ChildProcess> {
  await waitFor(
    'the embedded registry to be restarted',
    () => running.registry?.health().up === true && running.registry.process?.process !== killed,
    { timeoutMs: STEP_TIMEOUT_MS, describe: () => JSON.stringify(running.registry?.health()) },
  );
  return current();
}

/** Kills the registry process with SIGKILL and resolves once it is dead. */
async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-health-'));
  host = `127.0.0.1:${await freePort()}`;
  registryUrl = `http://${host}`;
  const yaml = `
registries:
  - host: ${host}
    embedded: true
    insecure: true
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: simple
`;
  const config = parseConfig(yaml, { baseDir: dir, source: join(dir, 'signet.yaml') });
  running = await startService(config, {
    logger: jsonLogger('debug', (line) => lines.push(line)),
    port: 0,
    // Restart fast (and, for a short test, back off to at most 1 s); the threshold is the default 5.
    supervisor: { baseBackoffMs: 200, maxBackoffMs: 1_000 },
  });
  keys = [
    {
      witness: 'release',
      algorithm: 'ECDSA_SHA_256',
      publicKey: createPublicKey(await readFile(join(dir, 'keys', 'release.pem'))),
    },
  ];
  prober = (async () => {
    while (probing) {
      probes.push(await probe('/healthz'), await probe('/readyz'));
      await sleep(20);
    }
  })();
});

afterAll(async () => {
  probing = false;
  await prober;
  await running?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('when the service has started with its embedded registry', () => {
  it('is ready, every check passing', async () => {
    const ready = await probe('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({
      status: 'ready',
      ready: true,
      checks: { config: { ok: true }, keys: { ok: true }, journal: { ok: true }, registry: { ok: true } },
    });
  });
});

describe('when the embedded registry is killed with SIGKILL', () => {
  let killed: ChildProcess;
  let notReady: Probe | undefined;
  let before: number;

  beforeAll(async () => {
    before = probes.length;
    killed = current();
    await kill(killed);
    await waitFor(
      '/readyz to answer 503',
      () => {
        notReady = probes.slice(before).find((p) => p.path === '/readyz' && p.status === 503);
        return notReady !== undefined;
      },
      { timeoutMs: STEP_TIMEOUT_MS },
    );
  });

  it('answers /readyz 503 with the registry check failing and the reason in JSON', () => {
    expect(notReady?.body).toEqual({
      status: 'not ready',
      ready: false,
      checks: {
        config: { ok: true },
        keys: { ok: true },
        journal: { ok: true },
        registry: { ok: false, reason: 'the embedded registry exited with signal SIGKILL; restarting' },
      },
    });
  });

  it('logs the exit with the registry last log lines', () => {
    expect(logged('embedded registry exited')).toEqual([
      expect.objectContaining({
        level: 'error',
        registry: host,
        exit: 'exited with signal SIGKILL',
        restartInMs: 200,
        lastLines: expect.any(Array),
      }),
    ]);
  });

  it('is ready again once the registry is restarted', async () => {
    await untilRestarted(killed);
    await waitFor(
      '/readyz to answer 200 again',
      () => probes.slice(before).some((p) => p.path === '/readyz' && p.status === 200),
      { timeoutMs: STEP_TIMEOUT_MS },
    );
    expect(running.registry?.health()).toEqual({ up: true, restarts: 1, reason: undefined });
    expect(logged('embedded registry restarted')).toEqual([
      expect.objectContaining({ level: 'info', registry: host, restarts: 1 }),
    ]);
  });

  it('signs a push made after the restart', async () => {
    await untilRestarted(killed);
    const digest = await pushImageOverHttp(registryUrl, 'team-a/after-restart', 'v1', 'after-restart');
    await waitFor(
      'the push after the restart to be signed',
      async () => (await checkSignatures(registryUrl, 'team-a/after-restart', digest, keys)).exists,
      { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 50 },
    );
    const check = await checkSignatures(registryUrl, 'team-a/after-restart', digest, keys);
    expect(check.problems).toEqual([]);
    expect(check.byWitness.get('release')).toBe(1);
  });
});

describe('when the embedded registry is killed 5 times in a row', () => {
  /** A line each killed registry process logged just before its kill. */
  const markers: string[] = [];
  let last: ChildProcess;

  beforeAll(async () => {
    let victim = current();
    for (let crash = 1; crash <= 5; crash++) {
      // A request for an unknown manifest makes the registry log an error line naming it.
      const marker = `crash-marker-${crash}`;
      const res = await fetch(`${registryUrl}/v2/${marker}/manifests/latest`);
      await res.arrayBuffer();
      markers.push(marker);
      await waitFor(`the registry to log ${marker}`, () =>
        (running.registry?.process?.logTail() ?? '').includes(marker),
      );
      await kill(victim);
      last = victim;
      if (crash < 5) victim = await untilRestarted(victim);
    }
  });

  it('logs `embedded registry keeps crashing` as an error, with the registry last log lines', () => {
    const crashing = logged('embedded registry keeps crashing');
    // 6 crashes within the window (the one above and these 5): from the 5th on, past the threshold.
    expect(crashing).toHaveLength(2);
    expect(crashing[1]).toMatchObject({
      level: 'error',
      registry: host,
      exit: 'exited with signal SIGKILL',
      crashes: 6,
      windowMs: 60_000,
    });
    const lastLines = crashing[1]?.['lastLines'] as string[];
    expect(lastLines.some((line) => line.includes(markers[4] as string))).toBe(true);
  });

  it('backs off further with each crash, up to its longest backoff', () => {
    const waits = [...logged('embedded registry exited'), ...logged('embedded registry keeps crashing')].map(
      (line) => line['restartInMs'],
    );
    expect(waits).toEqual([200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it('restarts it once more and is ready again', async () => {
    await untilRestarted(last);
    await waitFor('/readyz to answer 200', async () => (await probe('/readyz')).status === 200, {
      timeoutMs: STEP_TIMEOUT_MS,
    });
    expect(running.registry?.health()).toMatchObject({ up: true, restarts: 6 });
  });
});

describe('while the registry was dying and coming back', () => {
  it('answered /healthz 200 every time', () => {
    const health = probes.filter((p) => p.path === '/healthz');
    expect(health.length).toBeGreaterThan(10);
    expect(health.filter((p) => p.status !== 200)).toEqual([]);
  });

  it('answered /readyz both 503 and 200, and nothing else', () => {
    const statuses = new Set(probes.filter((p) => p.path === '/readyz').map((p) => p.status));
    expect([...statuses].sort()).toEqual([200, 503]);
  });
});
