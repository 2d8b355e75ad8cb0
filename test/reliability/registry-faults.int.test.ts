/**
 * Signing through a registry that misbehaves. A fault proxy sits between Signet and the real
 * registry (Signet's config names the proxy as the registry host, and so do the notifications, as
 * when clients push through a load balancer); images are pushed to the registry directly.
 *
 * First a fault-free run measures what signing one image costs in registry requests. Then 20% of
 * Signet's registry requests fail (429, 503, a reset before the request reaches the registry, or a
 * reset after the registry did it: a write that happened but whose answer was lost), and the
 * notifications are delivered as the registry delivers them (again while the answer is not 2xx).
 * Everything ends signed exactly once per witness, checked against the real registry with plain
 * fetch and node:crypto, and the retries stay within bounds derived from the faults injected.
 */
import { startFaultProxy, type FaultKind, type FaultProxy } from '../support/fault-proxy';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  LOCAL_WITNESSES,
  TEST_RETRY,
  auditSignatures,
  countOutcomes,
  deliverUntilAccepted,
  inPool,
  isAccepted,
  localConfigYaml,
  pushEvent,
  pushImages,
  reportFigures,
  startHarness,
  type Delivery,
  type Harness,
  type Pushed,
} from './harness';

jest.setTimeout(60_000);

const NAMESPACE = 'faults';
const BASELINE_IMAGES = 20;
const FAULTY_IMAGES = 100;
const FAULT_RATE = 0.2;
const FAULT_KINDS: readonly FaultKind[] = ['429', '503', 'reset', 'reset-after'];
/** Where the registry would give up on a notification; never reached here. */
const MAX_DELIVERIES = 10;
/**
 * The most requests one registry operation makes per attempt (a blob push: HEAD, POST, PUT), so
 * the most one fault can add: the attempt it broke is made again from the start.
 */
const REQUESTS_PER_ATTEMPT = 3;
const RETRYABLE_CODES = ['RATE_LIMITED', 'UNAVAILABLE', 'UNREACHABLE'];

let registry: TestRegistry;
let proxy: FaultProxy;
let signet: Harness;

beforeAll(async () => {
  registry = await startTestRegistry();
  proxy = await startFaultProxy(registry.host, { seed: 20, faultKinds: FAULT_KINDS });
  signet = await startHarness({ yaml: () => localConfigYaml(proxy.host, NAMESPACE) });
});

afterAll(async () => {
  await signet?.stop();
  await proxy?.close();
  await registry?.stop();
});

/** Pushes `count` images straight into the registry (not through the proxy), over 5 repositories. */
const pushSome = (name: string, count: number): Promise<Pushed[]> =>
  pushImages(
    registry.url,
    Array.from({ length: count }, (_, i) => ({
      repository: `${NAMESPACE}/${name}-${i % 5}`,
      tag: `v${i}`,
      seed: `${name}-${i}`,
    })),
  );

/** What delivering every notification of a run cost, through the proxy. */
interface Run {
  readonly pushed: readonly Pushed[];
  /** Per image, every delivery of its notification in order. */
  readonly deliveries: readonly (readonly Delivery[])[];
  readonly requests: number;
  readonly injected: Record<FaultKind, number>;
  readonly injectedTotal: number;
  readonly retries: Harness['retries'];
}

async function notifyAll(pushed: readonly Pushed[]): Promise<Run> {
  const requestsBefore = proxy.requests.length;
  const injectedBefore = { ...proxy.injected };
  const retriesBefore = signet.retries.length;
  const deliveries = new Array<Delivery[]>(pushed.length);
  await inPool(pushed, 16, async (image, i) => {
    const event = pushEvent(proxy.host, image.repository, image.digest, image.tag);
    deliveries[i] = await deliverUntilAccepted(signet.url, [event], MAX_DELIVERIES);
  });
  const injected = { '429': 0, '503': 0, reset: 0, 'reset-after': 0 };
  for (const kind of FAULT_KINDS) injected[kind] = proxy.injected[kind] - injectedBefore[kind];
  return {
    pushed,
    deliveries,
    requests: proxy.requests.length - requestsBefore,
    injected,
    injectedTotal: Object.values(injected).reduce((a, b) => a + b, 0),
    retries: signet.retries.slice(retriesBefore),
  };
}

const allDeliveries = (run: Run): Delivery[] => run.deliveries.flat();

let baseline: Run;
/** Registry requests it takes to sign one image with three witnesses when nothing fails. */
let requestsPerImage: number;

describe('when the registry does not fail (the baseline)', () => {
  beforeAll(async () => {
    baseline = await notifyAll(await pushSome('baseline', BASELINE_IMAGES));
    requestsPerImage = baseline.requests / BASELINE_IMAGES;
  });

  it('accepts every notification at its first delivery, without a retry', () => {
    expect(baseline.deliveries.map((d) => d.map((x) => x.status))).toEqual(
      Array(BASELINE_IMAGES).fill([200]),
    );
    expect(baseline.retries).toEqual([]);
    expect(baseline.injectedTotal).toBe(0);
  });

  it('signs every image with every witness', async () => {
    expect(countOutcomes(allDeliveries(baseline))).toEqual({
      signed: BASELINE_IMAGES * LOCAL_WITNESSES.length,
      'already-signed': 0,
      failed: 0,
    });
    expect(await auditSignatures(registry.url, baseline.pushed, signet.keys)).toEqual([]);
  });

  it('makes the same requests for every image', () => {
    // Read the image, read the .sig, push 3 payload blobs and a config (HEAD, POST, PUT each),
    // write the .sig, read it back.
    expect(requestsPerImage).toBe(2 + 4 * REQUESTS_PER_ATTEMPT + 2);
  });
});

describe(`when ${FAULT_RATE * 100}% of registry requests fail (429, 503, reset before, reset after)`, () => {
  let run: Run;

  beforeAll(async () => {
    const pushed = await pushSome('faulty', FAULTY_IMAGES);
    proxy.faultRate = FAULT_RATE;
    try {
      run = await notifyAll(pushed);
    } finally {
      proxy.faultRate = 0;
    }
    reportFigures('registry faults', {
      requests: run.requests,
      faultFreeRequests: requestsPerImage * FAULTY_IMAGES,
      injected: run.injected,
      injectedTotal: run.injectedTotal,
      retries: run.retries.length,
      deliveries: allDeliveries(run).length,
      notifications: FAULTY_IMAGES,
    });
  });

  it('injects every kind of fault', () => {
    for (const kind of FAULT_KINDS) expect(run.injected[kind]).toBeGreaterThan(0);
  });

  it(`accepts every notification within ${MAX_DELIVERIES} deliveries`, () => {
    expect(run.deliveries.filter((d) => !isAccepted(d[d.length - 1]))).toEqual([]);
  });

  it('leaves exactly one valid signature per (digest, witness) in the registry: none lost, none doubled', async () => {
    expect(await auditSignatures(registry.url, run.pushed, signet.keys)).toEqual([]);
  });

  it('reports a signature already there only after a delivery that failed', () => {
    const finals = run.deliveries.map((d) => d[d.length - 1] as Delivery);
    expect(countOutcomes(finals).failed).toBe(0);
    const presentAtFirstTry = run.deliveries.filter(
      (d) => d.length === 1 && countOutcomes(d)['already-signed'] > 0,
    );
    expect(presentAtFirstTry).toEqual([]);
  });

  it('retries only the faults it met, as retryable registry errors, within the retry policy', () => {
    // Every fault is one failed request, which is retried unless it was its operation's last attempt.
    expect(run.retries.length).toBeGreaterThan(0);
    expect(run.retries.length).toBeLessThanOrEqual(run.injectedTotal);
    expect(Math.max(...run.retries.map((r) => r.attempt))).toBeLessThan(TEST_RETRY.attempts);
    const codes = new Set(run.retries.map((r) => (r.error as { code?: string }).code));
    expect([...codes].filter((code) => !RETRYABLE_CODES.includes(code ?? ''))).toEqual([]);
  });

  it('fails a delivery only when an operation met a fault at every attempt', () => {
    const failed = allDeliveries(run).filter((d) => !isAccepted(d)).length;
    expect(failed * TEST_RETRY.attempts).toBeLessThanOrEqual(run.injectedTotal);
  });

  it('costs at most the fault-free requests of each delivery plus one attempt per fault', () => {
    const deliveries = allDeliveries(run).length;
    expect(run.requests).toBeLessThanOrEqual(
      requestsPerImage * deliveries + REQUESTS_PER_ATTEMPT * run.injectedTotal,
    );
  });

  it('costs less than twice the fault-free requests', () => {
    // At a 20% fault rate a one-request operation takes 1/0.8 = 1.25 tries on average and a blob
    // push (three requests, 0.8^3 = 51% clean) about 1.6 times its fault-free cost: 1.5 overall.
    expect(run.requests).toBeLessThan(2 * requestsPerImage * FAULTY_IMAGES);
  });
});

describe('when the registry writes the signature manifest but the answer is lost', () => {
  const lostPuts = (digest: string) => (request: { method: string; path: string }) =>
    request.method === 'PUT' && request.path.endsWith(`/manifests/${digest.replace(':', '-')}.sig`);

  it('writes it again and reports it signed, once', async () => {
    const [image] = (await pushSome('lost-once', 1)) as [Pushed];
    proxy.injectNext('reset-after', 1, lostPuts(image.digest));
    const deliveries = await deliverUntilAccepted(
      signet.url,
      [pushEvent(proxy.host, image.repository, image.digest, image.tag)],
      MAX_DELIVERIES,
    );
    expect(deliveries.map((d) => d.status)).toEqual([200]);
    expect(countOutcomes(deliveries)).toEqual({
      signed: LOCAL_WITNESSES.length,
      'already-signed': 0,
      failed: 0,
    });
    expect(proxy.requests.filter((r) => lostPuts(image.digest)(r)).map((r) => r.fault)).toEqual([
      'reset-after',
      undefined,
    ]);
    expect(await auditSignatures(registry.url, [image], signet.keys)).toEqual([]);
  });

  it('fails the delivery when every attempt lost its answer; the next delivery finds them all present', async () => {
    const [image] = (await pushSome('lost-always', 1)) as [Pushed];
    proxy.injectNext('reset-after', TEST_RETRY.attempts, lostPuts(image.digest));
    const deliveries = await deliverUntilAccepted(
      signet.url,
      [pushEvent(proxy.host, image.repository, image.digest, image.tag)],
      MAX_DELIVERIES,
    );
    expect(deliveries.map((d) => d.status)).toEqual([503, 200]);
    const [lost, again] = deliveries as [Delivery, Delivery];
    expect(lost.reports.flatMap((r) => r.outcomes.map((o) => [o.status, o.errorCode]))).toEqual(
      Array(LOCAL_WITNESSES.length).fill(['failed', 'UNREACHABLE']),
    );
    expect(countOutcomes([again])).toEqual({
      signed: 0,
      'already-signed': LOCAL_WITNESSES.length,
      failed: 0,
    });
    expect(proxy.requests.filter((r) => lostPuts(image.digest)(r))).toHaveLength(TEST_RETRY.attempts);
    expect(await auditSignatures(registry.url, [image], signet.keys)).toEqual([]);
  });
});
