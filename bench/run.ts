/**
 * Signet's benchmark table (`npm run bench`; `BENCH_QUICK=1 npm run bench` for a smoke run).
 *
 * Starts a real distribution registry (no notifications: the benchmark decides when Signet hears
 * of a push) and Signet's local service in a child process (bench/service.ts, the same
 * `startService` as `signet serve`), pushes minimal images with direct HTTP uploads, then times
 * each case next to its floor. Signet answers a push notification 202 once it is journaled and
 * signs it afterwards, so a signing case is timed from the POST until the `.sig` manifest is
 * readable in the registry (polled every 2 ms) (bench/bare.ts: the same registry requests and crypto with plain
 * `fetch` and node:crypto, no Signet code), measured in the same run and interleaved with it so
 * that drift on a shared machine hits both alike. Prints a table and writes
 * bench/results/latest.json. docs/PERFORMANCE.md describes the method and keeps the figures.
 *
 * Environment: BENCH_QUICK=1 (short runs), BENCH_PROFILE=<dir> (`--cpu-prof` of the service
 * process into <dir>). `npm run bench -- https` runs bench/https.ts (admission over HTTPS and HTTP).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  type KeyObject,
} from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdmissionController } from '../lib/admission/controller';
import { parseConfig } from '../lib/config/load';
import { silentLogger } from '../lib/core/logger';
import { sleep } from '../lib/core/retry';
import { Journal } from '../lib/journal/store';
import { LedgerRecorder } from '../lib/ledger/recorder';
import { SqliteLedger } from '../lib/ledger/sqlite';
import type { RegistryConfig } from '../lib/config/types';
import { inventoryOf } from '../lib/registry/catalog';
import { createSignet } from '../lib/signet';
import { backfill, parseBackfillPattern } from '../lib/signing/backfill';
import { startTestRegistry, type TestRegistry } from '../test/support/registry';
import { floorAppend, floorVerify, pushImage, pushLayer } from './bare';
import { measureBundles, type BundleFigures } from './bundles';
import { measureCrypto, type CryptoFigures } from './crypto';
import { startFaultProxy, type FaultProxy } from '../test/support/fault-proxy';
import { buildCli, startServiceProcess, type ServiceProcess } from './service';
import { fixed, median, msSince, percentile, pool } from './stats';

const QUICK = process.env['BENCH_QUICK'] === '1';
const PROFILE_DIR = process.env['BENCH_PROFILE'];

/** How much of everything; the full run stays under ten minutes on two cores. */
const SIZES = {
  warmup: QUICK ? 3 : 10,
  signRuns: QUICK ? 15 : 80,
  burst: QUICK ? 200 : 1_000,
  backfill: QUICK ? 100 : 300,
  burstConcurrency: 64,
  verifyRuns: QUICK ? 15 : 80,
  hitIterations: QUICK ? 5_000 : 50_000,
  loadSeconds: QUICK ? 5 : 60,
  loadConcurrency: 200,
  loadImages: 20,
  cryptoIterations: QUICK ? 100 : 1_000,
  bundleRuns: QUICK ? 3 : 7,
  setupConcurrency: 16,
};

const RSS_GOAL_BYTES = 256 * 1024 * 1024;
/** The events token the bench config sets (`server.eventsToken`) and every push notification sends. */
const EVENTS_TOKEN = 'signet-bench-events-token-7c1e9a';
/** Sleep between two looks at a `.sig` manifest that is not there yet. */
const SIG_POLL_MS = 2;
/** How long a push may take to be signed before the run gives up on it. */
const SIGN_DEADLINE_MS = 120_000;

// ---------------------------------------------------------------------------------------------
// HTTP to Signet: node:http with keep-alive, lighter than fetch, so the client costs little.

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function post(
  url: string,
  body: string,
  contentType: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
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
  });
}

const EVENTS_V1 = 'application/vnd.docker.distribution.events.v1+json';

/** A distribution 2.8 notification envelope for one manifest push, as the registry POSTs it. */
function pushEnvelope(host: string, repository: string, tag: string, digest: string): string {
  return JSON.stringify({
    events: [
      {
        id: randomUUID(),
        timestamp: new Date().toISOString(),
        action: 'push',
        target: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          size: 0,
          digest,
          length: 0,
          repository,
          url: `http://${host}/v2/${repository}/manifests/${digest}`,
          tag,
        },
        request: { id: randomUUID(), addr: '127.0.0.1:1', host, method: 'PUT', useragent: 'signet-bench' },
        actor: {},
        source: { addr: 'bench', instanceID: 'bench' },
      },
    ],
  });
}

/**
 * Posts a push notification with the events token; resolves when Signet has accepted it into its
 * journal (202), which is before it is signed.
 */
async function notifyPush(service: string, host: string, repository: string, tag: string, digest: string) {
  const answer = await post(
    `${service}/events/distribution`,
    pushEnvelope(host, repository, tag, digest),
    EVENTS_V1,
    { authorization: `Bearer ${EVENTS_TOKEN}` },
  );
  const body = JSON.parse(answer.body) as { accepted?: { id: string }[] };
  if (answer.status !== 202 || body.accepted?.length !== 1) {
    throw new Error(`push of ${repository}:${tag}: HTTP ${answer.status}, ${answer.body.slice(0, 1500)}`);
  }
}

/** True when the `.sig` manifest of `digest` is in the registry with at least one layer. */
async function isSigned(base: string, repository: string, digest: string): Promise<boolean> {
  const res = await fetch(`${base}/v2/${repository}/manifests/${digest.replace(':', '-')}.sig`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  const body = Buffer.from(await res.arrayBuffer());
  // distribution's filesystem storage rewrites a tag's link file in place: a read at that moment
  // gets a 500 (an empty link); the manifest is being written, so it is not readable yet.
  if (res.status === 404 || res.status >= 500) return false;
  if (res.status !== 200) throw new Error(`GET ${repository} .sig of ${digest}: HTTP ${res.status}`);
  const layers = (JSON.parse(body.toString('utf8')) as { layers?: unknown[] }).layers;
  return Array.isArray(layers) && layers.length > 0;
}

/** Resolves once the `.sig` manifest of `digest` is readable, looking every SIG_POLL_MS. */
async function untilSigned(base: string, repository: string, digest: string): Promise<void> {
  const deadline = Date.now() + SIGN_DEADLINE_MS;
  while (!(await isSigned(base, repository, digest))) {
    if (Date.now() > deadline)
      throw new Error(`${repository}@${digest} not signed after ${SIGN_DEADLINE_MS} ms`);
    await sleep(SIG_POLL_MS);
  }
}

/**
 * Notifies Signet of one push and resolves once its signature is in the registry, with how long
 * the 202 took (from the same start).
 */
async function signPush(
  service: string,
  base: string,
  host: string,
  repository: string,
  tag: string,
  digest: string,
): Promise<{ acceptedMs: number }> {
  const start = process.hrtime.bigint();
  await notifyPush(service, host, repository, tag, digest);
  const acceptedMs = msSince(start);
  await untilSigned(base, repository, digest);
  return { acceptedMs };
}

/**
 * Notifies Signet of a push through the proxy (the notification names the proxy's host, so Signet
 * signs through it) and resolves once Signet has read back the `.sig` it wrote: its last request
 * for a push, made after the signature is readable.
 */
async function signThroughProxy(
  service: string,
  base: string,
  proxy: FaultProxy,
  repository: string,
  image: { tag: string; digest: string },
): Promise<void> {
  const before = proxy.requests.length;
  await signPush(service, base, proxy.host, repository, image.tag, image.digest);
  const sig = `/manifests/${image.digest.replace(':', '-')}.sig`;
  const readBack = () => {
    const since = proxy.requests.slice(before);
    const put = since.findIndex((r) => r.method === 'PUT' && r.path.endsWith(sig));
    return put >= 0 && since.slice(put + 1).some((r) => r.method === 'GET' && r.path.endsWith(sig));
  };
  while (!readBack()) await sleep(SIG_POLL_MS);
}

/**
 * Notifies Signet of every push, `concurrency` at a time, then waits until every signature is in
 * the registry. The journal signs oldest first, so one poller walking the pushes in the order
 * they were accepted looks at most signatures only once, and loads the registry little.
 */
async function signAll(
  service: string,
  base: string,
  host: string,
  images: readonly { repository: string; tag: string; digest: string }[],
  concurrency: number,
  onAccepted?: (ms: number) => void,
): Promise<void> {
  const order: (typeof images)[number][] = [];
  await pool(images, concurrency, async (image) => {
    const s = process.hrtime.bigint();
    await notifyPush(service, host, image.repository, image.tag, image.digest);
    onAccepted?.(msSince(s));
    order.push(image);
  });
  for (const image of order) await untilSigned(base, image.repository, image.digest);
}

/** An AdmissionReview for a Pod CREATE with one container per image, as the apiserver sends it. */
function podReview(images: readonly string[]): Record<string, unknown> {
  const uid = randomUUID();
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: 'bench',
      namespace: 'production',
      operation: 'CREATE',
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      object: {
        kind: 'Pod',
        apiVersion: 'v1',
        metadata: { name: 'bench', namespace: 'production', labels: { app: 'bench' } },
        spec: {
          containers: images.map((image, i) => ({
            name: `c${i}`,
            image,
            resources: {},
            terminationMessagePath: '/dev/termination-log',
            terminationMessagePolicy: 'File',
            imagePullPolicy: 'IfNotPresent',
          })),
          restartPolicy: 'Always',
          dnsPolicy: 'ClusterFirst',
          serviceAccountName: 'default',
        },
        status: {},
      },
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  };
}

/** Posts an AdmissionReview; throws unless Signet allowed it. */
async function admit(service: string, review: Record<string, unknown>): Promise<void> {
  const answer = await post(`${service}/admission`, JSON.stringify(review), 'application/json');
  if (answer.status !== 200 || !answer.body.includes('"allowed":true')) {
    throw new Error(`admission: HTTP ${answer.status}, ${answer.body.slice(0, 1000)}`);
  }
}

// ---------------------------------------------------------------------------------------------

/** A goal line of the table. */
interface Row {
  readonly case: string;
  readonly measure: string;
  readonly signet: string;
  readonly floor: string;
  readonly ratio: string;
  readonly goal: string;
  readonly met: boolean | undefined;
}

function printTable(rows: readonly Row[]): void {
  const headers = ['case', 'measure', 'Signet', 'floor / base', 'ratio', 'goal', 'met'];
  const cells = rows.map((r) => [
    r.case,
    r.measure,
    r.signet,
    r.floor,
    r.ratio,
    r.goal,
    r.met === undefined ? '–' : r.met ? 'yes' : 'NO',
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (values: readonly string[]) => values.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ');
  console.log(line(headers));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const c of cells) console.log(line(c));
}

const log = (message: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

/** Requests seen by the proxy (no faults injected) during `work`, as `METHOD kind` lines. */
async function countRequests(proxy: FaultProxy, work: () => Promise<unknown>): Promise<string[]> {
  const before = proxy.requests.length;
  await work();
  return proxy.requests.slice(before).map(({ method, path }) => {
    const kind = path.includes('/blobs/uploads')
      ? 'blob upload'
      : path.includes('/blobs/')
        ? 'blob'
        : path.includes('/referrers/')
          ? 'referrers'
          : path.includes('.sig')
            ? '.sig manifest'
            : /\/manifests\/sha256-[a-f0-9]{64}$/.test(path.split('?')[0] ?? '')
              ? 'referrers fallback tag'
              : 'image manifest';
    return `${method} ${kind}`;
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'signet-bench-'));
  let registry: TestRegistry | undefined;
  let proxy: FaultProxy | undefined;
  let service: ServiceProcess | undefined;
  try {
    const loadavgStart = loadavg();
    log(
      `${QUICK ? 'quick' : 'full'} run; node ${process.version}, ${cpus().length} cpus, load average ${loadavgStart.map((l) => l.toFixed(2)).join(' ')}`,
    );
    if ((loadavgStart[0] ?? 0) > cpus().length / 2) {
      log('the machine is already busy: absolute figures will drift, compare the ratios');
    }
    // ---- crypto first: nothing else is running yet.
    log('crypto');
    const crypto: CryptoFigures[] = await measureCrypto(SIZES.cryptoIterations);

    // ---- registry, a recording proxy, keys, config, service
    registry = await startTestRegistry();
    proxy = await startFaultProxy(registry.host);
    const host = registry.host;
    const base = registry.url;
    await mkdir(join(dir, 'keys'));
    const { privateKey: ecKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'keys', 'bench-ec.pem'), ecKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    const privateKey: KeyObject = createPrivateKey(await readFile(join(dir, 'keys', 'bench-ec.pem')));
    const publicKey = createPublicKey(privateKey);
    const yaml = `
registries:
  - host: ${host}
    insecure: true
  - host: ${proxy.host}
    insecure: true
witnesses:
  - name: bench-ec
    key: file://keys/bench-ec.pem
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
    images: ["${host}/bench/**", "${proxy.host}/bench/**"]
    attestors:
      - witnesses: [bench-ec]
    mutateDigest: true
server:
  eventsToken: ${EVENTS_TOKEN}
`;
    const configPath = join(dir, 'signet.yaml');
    await writeFile(configPath, yaml);
    if (PROFILE_DIR !== undefined) await mkdir(PROFILE_DIR, { recursive: true });
    const bundle = await buildCli();
    service = await startServiceProcess(bundle, configPath, join(dir, 'signet.log'), PROFILE_DIR);
    const svc = service.url;

    // ---- images
    log('pushing images');
    const pushAll = async (repository: string, prefix: string, count: number) => {
      const layer = await pushLayer(base, repository);
      return pool(
        Array.from({ length: count }, (_, i) => `${prefix}${i}`),
        SIZES.setupConcurrency,
        async (tag) => ({
          tag,
          digest: await pushImage(base, repository, tag, `${repository}:${tag}:${Math.random()}`, layer),
        }),
      );
    };
    const signCount = SIZES.warmup + SIZES.signRuns;
    const verifyCount = SIZES.warmup + SIZES.verifyRuns;
    const signImages = await pushAll('bench/push', 's', signCount);
    const floorImages = await pushAll('bench/push', 'f', signCount);
    const burstImages = await pushAll('bench/burst', 's', SIZES.burst);
    const burstFloorImages = await pushAll('bench/burst', 'f', SIZES.burst);
    // Pushed with no notification: only the backfill finds them.
    await pushAll('bench/backfill', 'b', SIZES.backfill);
    const pipelineImages = await pushAll('bench/pipeline', 'p', signCount);
    const pipelineFloorImages = await pushAll('bench/pipeline', 'q', signCount);
    const singleImages = await pushAll('bench/verify', 'one', verifyCount);
    const eightImages = await pushAll('bench/verify', 'eight', verifyCount);
    const floorVerifyImages = await pushAll('bench/verify', 'floor', verifyCount);
    const loadImages = await pushAll('bench/load', 'v', SIZES.loadImages);
    const countImages = await pushAll('bench/count', 'c', 4);

    // Images to verify are signed by Signet itself, through the push endpoint.
    log('signing the images to verify');
    await signAll(
      svc,
      base,
      host,
      [
        ...singleImages.map((i) => ({ ...i, repository: 'bench/verify' })),
        ...eightImages.map((i) => ({ ...i, repository: 'bench/verify' })),
        ...floorVerifyImages.map((i) => ({ ...i, repository: 'bench/verify' })),
        ...loadImages.map((i) => ({ ...i, repository: 'bench/load' })),
        ...countImages.slice(3).map((i) => ({ ...i, repository: 'bench/count' })),
      ],
      SIZES.setupConcurrency,
    );
    // Admitted through the proxy below: signed under the proxy's name, the repository the
    // signature names must be the one admitted (the policy's default signedIdentity).
    await signThroughProxy(
      svc,
      base,
      proxy,
      'bench/count',
      countImages[2] as { tag: string; digest: string },
    );

    // ---- request counts, through the counting proxy (not timed)
    log('counting requests');
    const [c0, c1, c2, c3] = countImages as [
      (typeof countImages)[0],
      (typeof countImages)[0],
      (typeof countImages)[0],
      (typeof countImages)[0],
    ];
    const requests = {
      // Until Signet has read back the .sig it wrote: its last request for a push.
      signSignet: await countRequests(proxy, () => signThroughProxy(svc, base, proxy!, 'bench/count', c0)),
      signFloor: await countRequests(proxy, () =>
        floorAppend(`http://${proxy!.host}`, proxy!.host, 'bench/count', c1.digest, c1.tag, privateKey),
      ),
      verifySignet: await countRequests(proxy, () =>
        admit(svc, podReview([`${proxy!.host}/bench/count:${c2.tag}`])),
      ),
      verifyFloor: await countRequests(proxy, () =>
        floorVerify(`http://${proxy!.host}`, 'bench/count', c3.tag, publicKey),
      ),
    };

    // ---- sign, one push
    log('sign, one push');
    const signSignet: number[] = [];
    const signAccepted: number[] = [];
    const signFloor: number[] = [];
    for (let i = 0; i < signCount; i++) {
      const s = signImages[i] as { tag: string; digest: string };
      const f = floorImages[i] as { tag: string; digest: string };
      let accepted = 0;
      const timeSignet = async () => {
        const t = process.hrtime.bigint();
        accepted = (await signPush(svc, base, host, 'bench/push', s.tag, s.digest)).acceptedMs;
        return msSince(t);
      };
      const timeFloor = async () => {
        const t = process.hrtime.bigint();
        await floorAppend(base, host, 'bench/push', f.digest, f.tag, privateKey);
        return msSince(t);
      };
      // Alternate the order so neither always runs right after the other.
      let signet: number;
      let floor: number;
      if (i % 2 === 0) {
        signet = await timeSignet();
        floor = await timeFloor();
      } else {
        floor = await timeFloor();
        signet = await timeSignet();
      }
      if (i >= SIZES.warmup) {
        signSignet.push(signet);
        signAccepted.push(accepted);
        signFloor.push(floor);
      }
    }

    // ---- verify, miss (1 container) and 8 containers, cold cache: each run a never-seen image
    log('verify, miss and 8 containers');
    const verifyOne: number[] = [];
    const verifyEight: number[] = [];
    const verifyFloor: number[] = [];
    for (let i = 0; i < verifyCount; i++) {
      const one = singleImages[i] as { tag: string };
      const eight = eightImages[i] as { tag: string };
      const floor = floorVerifyImages[i] as { tag: string };
      const jobs: (() => Promise<void>)[] = [
        async () => {
          const review = podReview([`${host}/bench/verify:${one.tag}`]);
          const t = process.hrtime.bigint();
          await admit(svc, review);
          if (i >= SIZES.warmup) verifyOne.push(msSince(t));
        },
        async () => {
          const review = podReview(Array.from({ length: 8 }, () => `${host}/bench/verify:${eight.tag}`));
          const t = process.hrtime.bigint();
          await admit(svc, review);
          if (i >= SIZES.warmup) verifyEight.push(msSince(t));
        },
        async () => {
          const t = process.hrtime.bigint();
          await floorVerify(base, 'bench/verify', floor.tag, publicKey);
          if (i >= SIZES.warmup) verifyFloor.push(msSince(t));
        },
      ];
      // Rotate the order each run.
      for (let j = 0; j < jobs.length; j++) await (jobs[(i + j) % jobs.length] as () => Promise<void>)();
    }

    // ---- sign, burst
    log(`sign, burst of ${SIZES.burst} at concurrency ${SIZES.burstConcurrency}`);
    // Until every signature is in the registry; per push, how long the 202 took.
    const burstAcceptLatencies: number[] = [];
    let t = process.hrtime.bigint();
    await signAll(
      svc,
      base,
      host,
      burstImages.map((i) => ({ ...i, repository: 'bench/burst' })),
      SIZES.burstConcurrency,
      (ms) => burstAcceptLatencies.push(ms),
    );
    const burstSignetMs = msSince(t);
    const burstFloorLatencies: number[] = [];
    t = process.hrtime.bigint();
    await pool(burstFloorImages, SIZES.burstConcurrency, async ({ tag, digest }) => {
      const s = process.hrtime.bigint();
      await floorAppend(base, host, 'bench/burst', digest, tag, privateKey);
      burstFloorLatencies.push(msSince(s));
    });
    const burstFloorMs = msSince(t);
    // Every push signed: each `.sig` manifest exists and names the image.
    const unsigned = (
      await pool(burstImages, SIZES.setupConcurrency, async ({ digest }) => {
        const res = await fetch(`${base}/v2/bench/burst/manifests/${digest.replace(':', '-')}.sig`, {
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        });
        const body = Buffer.from(await res.arrayBuffer());
        return res.status === 200 && JSON.parse(body.toString('utf8')).layers.length === 1 ? 0 : 1;
      })
    ).reduce<number>((a, b) => a + b, 0);

    // ---- verify, hit: Signet's own time, in this process, warm cache, no HTTP
    log('verify, hit (in process)');
    const inProcessConfig = parseConfig(yaml, { baseDir: dir, source: configPath });
    const inProcess = createSignet(inProcessConfig, { logger: silentLogger });
    const controller = new AdmissionController({ verifier: inProcess.verifier });
    const hitImage = loadImages[0] as { tag: string; digest: string };
    const hitDigestReview = podReview(
      Array.from({ length: 8 }, () => `${host}/bench/load@${hitImage.digest}`),
    );
    const hitTagReview = podReview(Array.from({ length: 8 }, () => `${host}/bench/load:${hitImage.tag}`));
    const hit = async (review: Record<string, unknown>, iterations: number): Promise<number[]> => {
      const samples: number[] = [];
      for (let i = 0; i < iterations; i++) {
        const s = process.hrtime.bigint();
        const answer = await controller.review(review, undefined);
        samples.push(msSince(s));
        if (!answer.response.allowed) throw new Error(`hit: denied ${JSON.stringify(answer.response)}`);
      }
      return samples;
    };
    await hit(hitDigestReview, 1); // fills the cache
    await hit(hitDigestReview, Math.min(5_000, SIZES.hitIterations)); // warms the JIT
    const hitDigest = await hit(hitDigestReview, SIZES.hitIterations);
    const tagIterations = Math.max(200, Math.floor(SIZES.hitIterations / 25));
    await hit(hitTagReview, 200);
    const hitTag = await hit(hitTagReview, tagIterations);
    // ---- verify, hit with the ledger: the same reviews recorded into SQLite (serve's wiring).
    // Each sample is the review plus one turn of the event loop, where the recorder's batched
    // writes run, so a write lands in some sample as it would delay some request in serve.
    log('verify, hit with the ledger recording (in process)');
    const ledgerJournal = Journal.open(join(dir, 'ledger-bench.db'));
    const ledger = SqliteLedger.open(ledgerJournal, { retentionDays: 90 });
    const recorder = new LedgerRecorder({ ledger, logger: silentLogger, recordedBy: 'bench' });
    const recording = new AdmissionController({
      verifier: inProcess.verifier,
      observe: (outcome) => recorder.admission(outcome),
    });
    const turn = async (c: AdmissionController, iterations: number): Promise<number[]> => {
      const samples: number[] = [];
      for (let i = 0; i < iterations; i++) {
        const s = process.hrtime.bigint();
        const answer = await c.review(hitDigestReview, undefined);
        await new Promise<void>((resolve) => setImmediate(resolve));
        samples.push(msSince(s));
        if (!answer.response.allowed) throw new Error('hit with ledger: denied');
      }
      return samples;
    };
    await turn(recording, Math.min(2_000, SIZES.hitIterations));
    const ledgerOff: number[] = [];
    const ledgerOn: number[] = [];
    const blocks = 10;
    for (let b = 0; b < blocks; b++) {
      ledgerOff.push(...(await turn(controller, SIZES.hitIterations / blocks)));
      ledgerOn.push(...(await turn(recording, SIZES.hitIterations / blocks)));
    }
    await recorder.close();
    // Every review was recorded (the count proves the writes happened inside the timed loop's turns).
    const ledgerRows = { n: (await ledger.decisions({ limit: 1_000_000 })).length };
    await ledger.close();

    const headFloor: number[] = [];
    for (let i = 0; i < tagIterations; i++) {
      const s = process.hrtime.bigint();
      const res = await fetch(`${base}/v2/bench/load/manifests/${hitImage.tag}`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      await res.arrayBuffer();
      headFloor.push(msSince(s));
    }
    // ---- sign, pipeline: the signing core alone, in this process (no HTTP, journal or polling),
    // next to the same floor: where "sign, one push" spends its time beyond the floor.
    log('sign, pipeline in process');
    const pipelineSignet: number[] = [];
    const pipelineFloor: number[] = [];
    for (let i = 0; i < signCount; i++) {
      const p = pipelineImages[i] as { tag: string; digest: string };
      const q = pipelineFloorImages[i] as { tag: string; digest: string };
      let s = process.hrtime.bigint();
      const report = await inProcess.pipeline.handlePush({
        registry: host,
        repository: 'bench/pipeline',
        digest: p.digest,
        tag: p.tag,
        mediaType: undefined,
        artifactType: undefined,
        source: 'distribution',
        id: undefined,
      });
      if (report.outcomes[0]?.status !== 'signed') throw new Error(`pipeline: ${JSON.stringify(report)}`);
      if (i >= SIZES.warmup) pipelineSignet.push(msSince(s));
      s = process.hrtime.bigint();
      await floorAppend(base, host, 'bench/pipeline', q.digest, q.tag, privateKey);
      if (i >= SIZES.warmup) pipelineFloor.push(msSince(s));
    }

    // ---- backfill: what `signet sign --all` does, in process, over images no event announced
    log(`backfill of ${SIZES.backfill} images, ${SIZES.burstConcurrency} at once`);
    const hosts = inProcessConfig.registries.map((r) => r.host);
    const backfillStart = process.hrtime.bigint();
    const backfilled = await backfill(
      {
        pipeline: inProcess.pipeline,
        registries: inProcess.registries,
        keys: inProcess.keys,
        rules: inProcessConfig.signingRules,
        inventory: (h) =>
          inventoryOf(
            inProcessConfig.registries.find((r) => r.host === h) as RegistryConfig,
            inProcess.registries.client(h),
          ),
      },
      {
        target: parseBackfillPattern(`${host}/bench/backfill`, hosts),
        concurrency: SIZES.burstConcurrency,
      },
    );
    const backfillMs = msSince(backfillStart);
    if (backfilled.counts.signed !== SIZES.backfill)
      throw new Error(`backfill: ${JSON.stringify(backfilled.counts)} of ${SIZES.backfill}`);
    inProcess.keys.close();

    // ---- verify, load: by tag (every review resolves its tag with a HEAD), then by digest
    const running = service;
    const load = async (label: string, image: (i: { tag: string; digest: string }) => string) => {
      log(`verify, load by ${label}: ${SIZES.loadConcurrency} concurrent for ${SIZES.loadSeconds} s`);
      const reviews = loadImages.map((i) =>
        JSON.stringify(podReview(Array.from({ length: 8 }, () => image(i)))),
      );
      // Reset the service's RSS high-water mark, so VmHWM afterwards is the peak during this load.
      await running.resetPeak();
      const before = await running.memory();
      const latencies: number[] = [];
      let errors = 0;
      let sent = 0;
      let rssSampled = 0;
      const sampler = setInterval(() => {
        void running.memory().then((m) => (rssSampled = Math.max(rssSampled, m.rss)));
      }, 1000);
      const deadline = Date.now() + SIZES.loadSeconds * 1000;
      const start = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: SIZES.loadConcurrency }, async () => {
          while (Date.now() < deadline) {
            const body = reviews[sent++ % reviews.length] as string;
            const s = process.hrtime.bigint();
            try {
              const answer = await post(`${svc}/admission`, body, 'application/json');
              if (answer.status !== 200 || !answer.body.includes('"allowed":true')) errors++;
            } catch {
              errors++;
            }
            latencies.push(msSince(s));
          }
        }),
      );
      const elapsedMs = msSince(start);
      clearInterval(sampler);
      const after = await running.memory();
      return {
        by: label,
        seconds: SIZES.loadSeconds,
        concurrency: SIZES.loadConcurrency,
        requests: latencies.length,
        perSecond: (latencies.length / elapsedMs) * 1000,
        errors,
        latency: summary(latencies),
        rssBeforeBytes: before.rss,
        rssAfterBytes: after.rss,
        rssPeakBytes: Math.max(after.peakRss, rssSampled, after.rss),
      };
    };
    const loadByTag = await load('tag', ({ tag }) => `${host}/bench/load:${tag}`);
    const loadByDigest = await load('digest', ({ tag, digest }) => `${host}/bench/load:${tag}@${digest}`);
    const loadavgAfter = loadavg();

    await service.stop();
    service = undefined;

    // ---- Lambda bundles
    log('Lambda bundles');
    const bundles: BundleFigures[] = measureBundles(SIZES.bundleRuns);

    // ---- results
    const signRatio = median(signSignet) / median(signFloor);
    const burstSignetRate = (SIZES.burst / burstSignetMs) * 1000;
    const burstFloorRate = (SIZES.burst / burstFloorMs) * 1000;
    const backfillRate = (SIZES.backfill / backfillMs) * 1000;
    const missRatio = median(verifyOne) / median(verifyFloor);
    const eightRatio = median(verifyEight) / median(verifyOne);
    const hitP99 = percentile(hitDigest, 99);
    const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const ledgerP99Cost = percentile(ledgerOn, 99) - percentile(ledgerOff, 99);
    const ledgerMeanCost = mean(ledgerOn) - mean(ledgerOff);
    const ms = (v: number) => `${fixed(v)} ms`;
    const rows: Row[] = [
      {
        case: 'sign, one push',
        measure: 'median, event → .sig readable',
        signet: ms(median(signSignet)),
        floor: ms(median(signFloor)),
        ratio: `${fixed(signRatio)} ×`,
        goal: '≤ 1.3 × floor',
        met: signRatio <= 1.3,
      },
      {
        case: 'sign, pipeline',
        measure: 'median in process, push → .sig written (no HTTP, journal, polling)',
        signet: ms(median(pipelineSignet)),
        floor: ms(median(pipelineFloor)),
        ratio: `${fixed(median(pipelineSignet) / median(pipelineFloor))} ×`,
        goal: 'reported',
        met: undefined,
      },
      {
        case: 'sign, burst',
        measure: `${SIZES.burst} pushes, ${SIZES.burstConcurrency} in flight, until all .sig readable`,
        signet: `${fixed(burstSignetRate, 0)}/s, ${SIZES.burst - unsigned} signed`,
        floor: `${fixed(burstFloorRate, 0)}/s`,
        ratio: `${fixed(burstSignetRate / burstFloorRate)} ×`,
        goal: 'all signed, ≥ 0.7 × floor',
        met: unsigned === 0 && burstSignetRate / burstFloorRate >= 0.7,
      },
      {
        case: 'backfill',
        measure: `${SIZES.backfill} images listed and signed, ${SIZES.burstConcurrency} at once (in process)`,
        signet: `${fixed(backfillRate, 0)}/s, ${backfilled.counts.signed} signed`,
        floor: `${fixed(burstFloorRate, 0)}/s (burst floor)`,
        ratio: `${fixed(backfillRate / burstFloorRate)} ×`,
        goal: 'reported',
        met: undefined,
      },
      {
        case: 'verify, miss',
        measure: 'median, 1-container Pod, cold',
        signet: ms(median(verifyOne)),
        floor: ms(median(verifyFloor)),
        ratio: `${fixed(missRatio)} ×`,
        goal: '≤ 1.3 × floor',
        met: missRatio <= 1.3,
      },
      {
        case: 'verify, 8 containers',
        measure: 'median, 8 × one image, cold',
        signet: ms(median(verifyEight)),
        floor: `${ms(median(verifyOne))} (1 container)`,
        ratio: `${fixed(eightRatio)} ×`,
        goal: '≤ 1.2 × single',
        met: eightRatio <= 1.2,
      },
      {
        case: 'verify, hit',
        measure: 'p99 in process, 8 containers by digest',
        signet: `${fixed(hitP99, 3)} ms (p50 ${fixed(median(hitDigest), 3)})`,
        floor: '–',
        ratio: '–',
        goal: '≤ 0.2 ms',
        met: hitP99 <= 0.2,
      },
      {
        case: 'verify, hit by tag',
        measure: 'p50 in process, 8 containers by tag (1 HEAD)',
        signet: `${ms(median(hitTag))} (p99 ${fixed(percentile(hitTag, 99))})`,
        floor: `${ms(median(headFloor))} (bare HEAD)`,
        ratio: `${fixed(median(hitTag) / median(headFloor))} ×`,
        goal: 'reported',
        met: undefined,
      },
      {
        case: 'verify, hit + ledger',
        measure: 'p99 added by recording each review (in process, + 1 event-loop turn)',
        signet: `${fixed(ledgerP99Cost, 3)} ms (p99 ${fixed(percentile(ledgerOn, 99), 3)} vs ${fixed(percentile(ledgerOff, 99), 3)}; mean +${fixed(ledgerMeanCost, 4)}; ${ledgerRows.n} rows)`,
        floor: '–',
        ratio: '–',
        goal: '≤ 0.05 ms p99',
        met: ledgerP99Cost <= 0.05,
      },
      ...[loadByTag, loadByDigest].map((l): Row => ({
        case: `verify, load by ${l.by}`,
        measure: `${l.concurrency} concurrent, ${l.seconds} s, 8-container Pod`,
        signet: `p50 ${ms(l.latency.p50)}, p99 ${ms(l.latency.p99)}, ${fixed(l.perSecond, 0)}/s, ${l.errors} errors, RSS ${fixed(l.rssPeakBytes / 2 ** 20, 0)} MB`,
        floor: '–',
        ratio: '–',
        goal: '0 errors, RSS ≤ 256 MB',
        met: l.errors === 0 && l.rssPeakBytes <= RSS_GOAL_BYTES,
      })),
      ...bundles
        .filter((b) => b.name !== 'failure')
        .map((b): Row => ({
          case: `Lambda ${b.name} bundle`,
          measure: 'minified size; require (with source maps)',
          signet: `${fixed(b.bytes / 2 ** 20)} MB; ${fixed(b.requireMsSourceMaps, 0)} ms (${fixed(b.requireMs, 0)} plain)`,
          floor: '–',
          ratio: '–',
          goal: '≤ 1.5 MB; ≤ 150 ms',
          met: b.bytes <= 1.5 * 2 ** 20 && b.requireMsSourceMaps <= 150,
        })),
      ...crypto.map((c): Row => ({
        case: `crypto ${c.algorithm}`,
        measure: `${c.key}: sign / verify / witness check µs`,
        signet: `${fixed(c.signetSignUs, 0)} / ${fixed(c.signetVerifyUs, 0)} / ${fixed(c.witnessCheckUs, 0)}`,
        floor: `${fixed(c.bareSignAsyncUs, 0)} (sync ${fixed(c.bareSignSyncUs, 0)}) / ${fixed(c.bareVerifyUs, 0)}`,
        ratio: `${fixed(c.signetSignUs / c.bareSignAsyncUs)} / ${fixed(c.signetVerifyUs / c.bareVerifyUs)}`,
        goal: 'reported',
        met: undefined,
      })),
    ];
    console.log(
      `\nSignet benchmarks, ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}${QUICK ? ' (BENCH_QUICK)' : ''}\n`,
    );
    printTable(rows);
    console.log(
      `\nsign, one push: answered 202 after ${ms(median(signAccepted))}, .sig readable after ${ms(median(signSignet))} (medians)`,
    );
    console.log(
      `registry requests: sign ${requests.signSignet.length} (floor ${requests.signFloor.length}), verify miss ${requests.verifySignet.length} (floor ${requests.verifyFloor.length})`,
    );

    const results = {
      date: new Date().toISOString(),
      quick: QUICK,
      machine: {
        nproc: cpus().length,
        cpu: cpus()[0]?.model.trim(),
        memoryBytes: totalmem(),
        node: process.version,
        platform: `${process.platform} ${process.arch}`,
      },
      loadavg: { start: loadavgStart, end: loadavgAfter },
      sizes: SIZES,
      durationSeconds: Math.round((Date.now() - started) / 1000),
      rows,
      requests,
      sign: {
        signet: summary(signSignet),
        signetAccepted: summary(signAccepted),
        floor: summary(signFloor),
        ratio: signRatio,
      },
      burst: {
        count: SIZES.burst,
        concurrency: SIZES.burstConcurrency,
        unsigned,
        signet: {
          ms: burstSignetMs,
          perSecond: burstSignetRate,
          acceptLatency: summary(burstAcceptLatencies),
        },
        floor: { ms: burstFloorMs, perSecond: burstFloorRate, latency: summary(burstFloorLatencies) },
        ratio: burstSignetRate / burstFloorRate,
      },
      backfill: {
        images: SIZES.backfill,
        ms: backfillMs,
        perSecond: backfillRate,
        counts: backfilled.counts,
      },
      verifyMiss: {
        signet: summary(verifyOne),
        floor: summary(verifyFloor),
        ratio: missRatio,
      },
      verifyEight: { signet: summary(verifyEight), ratioToSingle: eightRatio },
      verifyHit: {
        byDigest: summary(hitDigest),
        byTag: summary(hitTag),
        bareHead: summary(headFloor),
        ledger: { off: summary(ledgerOff), on: summary(ledgerOn), rows: ledgerRows.n },
      },
      verifyLoad: [loadByTag, loadByDigest],
      bundles,
      crypto,
    };
    const resultsDir = join(__dirname, 'results');
    await mkdir(resultsDir, { recursive: true });
    await writeFile(join(resultsDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
    log(`wrote bench/results/latest.json (${results.durationSeconds} s)`);
  } finally {
    await service?.stop();
    await proxy?.close();
    await registry?.stop();
    agent.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

function summary(samples: readonly number[]) {
  return {
    n: samples.length,
    p50: median(samples),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    min: percentile(samples, 0),
    max: percentile(samples, 100),
  };
}

// `npm run bench -- https`: only the HTTPS-against-HTTP admission case (bench/https.ts).
(process.argv[2] === 'https' ? import('./https').then((https) => https.main()) : main()).catch(
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
