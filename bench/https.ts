/**
 * Admission over HTTPS against plain HTTP (`npm run bench -- https`, or
 * `node -r @swc-node/register bench/https.ts`; BENCH_QUICK=1 for a smoke run). Kubernetes calls
 * webhooks over HTTPS only, so what TLS costs under load is what a cluster pays.
 *
 * Two `signet serve` processes from the same bundle and the same config, one with `server.tls` (a
 * serving certificate from a private CA, test/support/tls-ca.ts), verify the same signed images.
 * Each run loads one of them, then the other (the order alternates), with the bench's load case:
 * 200 clients at once, each posting an 8-container Pod review by digest (warm cache: what a busy
 * cluster sends) as fast as answers come, over kept-alive connections (the apiserver keeps its
 * webhook connections). Prints reviews/s and p50/p99 latency per run, their medians, and the ratio
 * HTTP/HTTPS; goal: HTTPS within 1.2 × HTTP. Writes bench/results/https.json.
 *
 * The load generator runs on the same machine and pays its own side of TLS: on two cores the
 * figures are an upper bound on what TLS costs the service.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../lib/core/retry';
import { freePort } from '../test/support/ports';
import { startTestRegistry, type TestRegistry } from '../test/support/registry';
import { createCa } from '../test/support/tls-ca';
import { pushImage, pushLayer } from './bare';
import { buildCli } from './service';
import { fixed, median, msSince, percentile, pool } from './stats';

const QUICK = process.env['BENCH_QUICK'] === '1';

const SIZES = {
  runs: QUICK ? 3 : 5,
  runSeconds: QUICK ? 3 : 15,
  warmupSeconds: QUICK ? 1 : 5,
  concurrency: 200,
  images: 20,
  containers: 8,
};

/** The ratio HTTPS may cost over HTTP, in reviews/s. */
const GOAL_RATIO = 1.2;
const EVENTS_TOKEN = 'signet-bench-https-events-token-3b8d';
const EVENTS_V1 = 'application/vnd.docker.distribution.events.v1+json';

const log = (message: string) =>
  console.error(`[bench https ${new Date().toISOString().slice(11, 19)}] ${message}`);

/** A client for one service: a POST over kept-alive connections. */
interface Client {
  readonly scheme: 'http' | 'https';
  post(path: string, body: string, contentType: string, headers?: Record<string, string>): Promise<Answer>;
  close(): void;
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

function client(url: string, ca: string | undefined): Client {
  const https = url.startsWith('https:');
  const agent = https
    ? new HttpsAgent({ keepAlive: true, maxSockets: 256, ca })
    : new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const send = https ? httpsRequest : httpRequest;
  return {
    scheme: https ? 'https' : 'http',
    post: (path, body, contentType, headers = {}) =>
      new Promise((resolve, reject) => {
        const req = send(
          `${url}${path}`,
          {
            method: 'POST',
            agent,
            headers: { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
    close: () => agent.destroy(),
  };
}

/** `signet serve` in its own process, logging to a file. */
interface Service {
  readonly url: string;
  /** CPU time (user + system) the process has used so far, in ms (Linux /proc). */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

const CLOCK_TICKS_PER_SECOND =
  Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

async function startService(
  bundle: string,
  configPath: string,
  logFile: string,
  scheme: 'http' | 'https',
  ca: string | undefined,
): Promise<Service> {
  const port = await freePort();
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [bundle, 'serve', '--config', configPath, '--port', String(port)], {
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const url = `${scheme}://127.0.0.1:${port}`;
  const probe = (): Promise<boolean> =>
    new Promise((resolve) => {
      const get = scheme === 'https' ? httpsRequest : httpRequest;
      const req = get(`${url}/healthz`, { ca, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.end();
    });
  const deadline = Date.now() + 30_000;
  while (!(await probe())) {
    const tail = async () => (await readFile(logFile, 'utf8')).split('\n').slice(-20).join('\n');
    if (exited) throw new Error(`signet serve (${scheme}) exited; ${logFile} ends:\n${await tail()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`signet serve (${scheme}) did not answer /healthz within 30 s:\n${await tail()}`);
    }
    await sleep(50);
  }
  const pid = child.pid as number;
  return {
    url,
    cpuMs: () => cpuMsOf(pid),
    async stop() {
      if (!exited) child.kill('SIGTERM');
      await exit;
    },
  };
}

/** An AdmissionReview for a Pod CREATE with one container per image, as the apiserver sends it. */
function podReview(images: readonly string[]): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      name: 'bench',
      namespace: 'production',
      operation: 'CREATE',
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      object: {
        kind: 'Pod',
        apiVersion: 'v1',
        metadata: { name: 'bench', namespace: 'production' },
        spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) },
      },
      dryRun: false,
    },
  });
}

/** What one load run measured. */
interface LoadRun {
  readonly scheme: 'http' | 'https';
  readonly requests: number;
  readonly errors: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  /** The service's CPU time per review, µs: what TLS costs the service, without the client's side. */
  readonly serviceCpuUs: number;
}

/** `concurrency` clients posting reviews for `seconds`, each as soon as its last was answered. */
async function load(
  target: Client,
  service: Service,
  reviews: readonly string[],
  seconds: number,
): Promise<LoadRun> {
  const latencies: number[] = [];
  const cpuBefore = await service.cpuMs();
  let errors = 0;
  let sent = 0;
  const deadline = Date.now() + seconds * 1000;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: SIZES.concurrency }, async () => {
      while (Date.now() < deadline) {
        const body = reviews[sent++ % reviews.length] as string;
        const s = process.hrtime.bigint();
        try {
          const answer = await target.post('/admission', body, 'application/json');
          if (answer.status !== 200 || !answer.body.includes('"allowed":true')) errors++;
        } catch {
          errors++;
        }
        latencies.push(msSince(s));
      }
    }),
  );
  const elapsedMs = msSince(start);
  const cpuMs = (await service.cpuMs()) - cpuBefore;
  return {
    scheme: target.scheme,
    serviceCpuUs: (cpuMs * 1000) / latencies.length,
    requests: latencies.length,
    errors,
    perSecond: (latencies.length / elapsedMs) * 1000,
    p50: median(latencies),
    p99: percentile(latencies, 99),
  };
}

/** Medians over the runs of one scheme, and its errors in all. */
interface SchemeFigures {
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly serviceCpuUs: number;
  readonly errors: number;
}

/** What `measureHttps` found: every run, and the medians per scheme. */
export interface HttpsFigures {
  readonly runs: readonly LoadRun[];
  readonly http: SchemeFigures;
  readonly https: SchemeFigures;
  /** HTTP reviews/s over HTTPS reviews/s (of the medians): how many times slower HTTPS is. */
  readonly ratio: number;
  /** The same ratio within each run (the two loads run back to back), the median of the runs. */
  readonly pairedRatio: number;
  readonly met: boolean;
}

export async function measureHttps(): Promise<HttpsFigures> {
  const dir = await mkdtemp(join(tmpdir(), 'signet-bench-https-'));
  let registry: TestRegistry | undefined;
  const services: Service[] = [];
  const clients: Client[] = [];
  try {
    registry = await startTestRegistry();
    const host = registry.host;
    const ca = await createCa(dir, 'bench-ca');
    const serving = await ca.issue('bench-serving');
    await mkdir(join(dir, 'http'));
    await mkdir(join(dir, 'https'));
    // The same config but for `server.tls`; keys shared, a journal each.
    const yaml = (tls: string) => `
registries:
  - host: ${host}
    insecure: true
witnesses:
  - name: bench-ec
    key: file://${join(dir, 'keys', 'bench-ec.pem')}
signingRules:
  - name: bench
    repositories: ["bench/**"]
    witness: bench-ec
    algorithm: ECDSA_SHA_256
    signatureType: default
policies:
  - name: bench
    enabled: true
    namespaces: [production]
    images: ["${host}/bench/**"]
    attestors:
      - witnesses: [bench-ec]
server:
  eventsToken: ${EVENTS_TOKEN}${tls}
`;
    await writeFile(join(dir, 'http', 'signet.yaml'), yaml(''));
    await writeFile(
      join(dir, 'https', 'signet.yaml'),
      yaml(`\n  tls:\n    certFile: ${serving.certFile}\n    keyFile: ${serving.keyFile}`),
    );
    const bundle = await buildCli();
    // One after the other: the first creates the witness key the second reads.
    for (const scheme of ['http', 'https'] as const) {
      services.push(
        await startService(
          bundle,
          join(dir, scheme, 'signet.yaml'),
          join(dir, scheme, 'signet.log'),
          scheme,
          ca.cert,
        ),
      );
    }
    const [http, https] = services.map((s) => client(s.url, ca.cert)) as [Client, Client];
    clients.push(http, https);

    log(`pushing and signing ${SIZES.images} images`);
    const layer = await pushLayer(registry.url, 'bench/load');
    const images = await pool(
      Array.from({ length: SIZES.images }, (_, i) => `v${i}`),
      8,
      async (tag) => ({
        tag,
        digest: await pushImage(registry!.url, 'bench/load', tag, `https:${tag}`, layer),
      }),
    );
    for (const { tag, digest } of images) {
      const answer = await http.post(
        '/events/distribution',
        JSON.stringify({
          events: [
            {
              id: randomUUID(),
              action: 'push',
              target: {
                mediaType: 'application/vnd.oci.image.manifest.v1+json',
                digest,
                repository: 'bench/load',
                tag,
                url: `http://${host}/v2/bench/load/manifests/${digest}`,
              },
              request: { host },
            },
          ],
        }),
        EVENTS_V1,
        { authorization: `Bearer ${EVENTS_TOKEN}` },
      );
      if (answer.status !== 202)
        throw new Error(`push of bench/load:${tag}: HTTP ${answer.status} ${answer.body}`);
    }
    for (const { digest } of images) {
      const sig = `${registry.url}/v2/bench/load/manifests/${digest.replace(':', '-')}.sig`;
      const deadline = Date.now() + 60_000;
      for (;;) {
        const res = await fetch(sig, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
        await res.arrayBuffer();
        if (res.status === 200) break;
        if (Date.now() > deadline) throw new Error(`bench/load@${digest} not signed within 60 s`);
        await sleep(10);
      }
    }
    const reviews = images.map(({ tag, digest }) =>
      podReview(Array.from({ length: SIZES.containers }, () => `${host}/bench/load:${tag}@${digest}`)),
    );

    log(`warm-up, ${SIZES.warmupSeconds} s each`);
    const [httpService, httpsService] = services as [Service, Service];
    await load(http, httpService, reviews, SIZES.warmupSeconds);
    await load(https, httpsService, reviews, SIZES.warmupSeconds);
    const runs: LoadRun[] = [];
    for (let run = 0; run < SIZES.runs; run++) {
      const order: [Client, Service][] = [
        [https, httpsService],
        [http, httpService],
      ];
      if (run % 2 === 1) order.reverse();
      for (const [target, service] of order) {
        const measured = await load(target, service, reviews, SIZES.runSeconds);
        log(
          `run ${run + 1}/${SIZES.runs} ${measured.scheme}: ${fixed(measured.perSecond, 0)}/s, p50 ${fixed(measured.p50)} ms, p99 ${fixed(measured.p99)} ms, service CPU ${fixed(measured.serviceCpuUs, 0)} µs/review, ${measured.errors} errors`,
        );
        runs.push(measured);
      }
    }
    const medians = (scheme: 'http' | 'https') => {
      const of = runs.filter((r) => r.scheme === scheme);
      return {
        perSecond: median(of.map((r) => r.perSecond)),
        p50: median(of.map((r) => r.p50)),
        p99: median(of.map((r) => r.p99)),
        serviceCpuUs: median(of.map((r) => r.serviceCpuUs)),
        errors: of.reduce((sum, r) => sum + r.errors, 0),
      };
    };
    const httpFigures = medians('http');
    const httpsFigures = medians('https');
    const ratio = httpFigures.perSecond / httpsFigures.perSecond;
    // Load from other work drifts between runs; each run's two loads ran back to back.
    const paired = Array.from({ length: SIZES.runs }, (_, run) => {
      const [a, b] = runs.slice(run * 2, run * 2 + 2) as [LoadRun, LoadRun];
      const [h, s] = a.scheme === 'http' ? [a, b] : [b, a];
      return h.perSecond / s.perSecond;
    });
    return {
      runs,
      http: httpFigures,
      https: httpsFigures,
      ratio,
      pairedRatio: median(paired),
      met: ratio <= GOAL_RATIO && httpFigures.errors + httpsFigures.errors === 0,
    };
  } finally {
    for (const c of clients) c.close();
    await Promise.all(services.map((s) => s.stop()));
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the case, prints its figures, writes bench/results/https.json. */
export async function main(): Promise<void> {
  const loadavgStart = loadavg();
  log(
    `${QUICK ? 'quick' : 'full'} run; node ${process.version}, ${cpus().length} cpus, load average ${loadavgStart.map((l) => l.toFixed(2)).join(' ')}`,
  );
  const figures = await measureHttps();
  const row = (name: string, f: SchemeFigures) =>
    `${name.padEnd(6)} ${fixed(f.perSecond, 0).padStart(7)}/s  p50 ${fixed(f.p50).padStart(8)} ms  p99 ${fixed(f.p99).padStart(8)} ms  service CPU ${fixed(f.serviceCpuUs, 0).padStart(5)} µs/review  ${f.errors} errors`;
  console.log(
    `\nAdmission by digest, ${SIZES.concurrency} concurrent, ${SIZES.containers}-container Pod, kept-alive connections; medians of ${SIZES.runs} runs of ${SIZES.runSeconds} s${QUICK ? ' (BENCH_QUICK)' : ''}\n`,
  );
  console.log(row('HTTP', figures.http));
  console.log(row('HTTPS', figures.https));
  console.log(
    `\nHTTP/HTTPS reviews/s: ${fixed(figures.ratio)} × (goal ≤ ${GOAL_RATIO} ×): ${figures.met ? 'met' : 'NOT met'}; within each run ${fixed(figures.pairedRatio)} × (median); p50 ${fixed(figures.https.p50 / figures.http.p50)} ×, p99 ${fixed(figures.https.p99 / figures.http.p99)} ×, service CPU per review ${fixed(figures.https.serviceCpuUs / figures.http.serviceCpuUs)} ×`,
  );
  const resultsDir = join(__dirname, 'results');
  await mkdir(resultsDir, { recursive: true });
  await writeFile(
    join(resultsDir, 'https.json'),
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        quick: QUICK,
        loadavg: { start: loadavgStart, end: loadavg() },
        sizes: SIZES,
        ...figures,
      },
      null,
      2,
    )}\n`,
  );
  log('wrote bench/results/https.json');
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
