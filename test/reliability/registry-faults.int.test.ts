/**
 * Signing through a registry that misbehaves. A fault proxy sits between Signet and the real
 * registry (Signet's config names the proxy as the registry host, and so do the notifications, as
 * when clients push through a load balancer); images are pushed to the registry directly.
 *
 * First a fault-free run measures what signing one image costs in registry requests. Then 20% of
 * Signet's registry requests fail (429, 503, a reset before the request reaches the registry, or a
 * reset after the registry did it: a write that happened but whose answer was lost), and the
 * notifications are delivered as the registry delivers them (again while the answer is not 2xx).
 * Signet accepts every one at its first delivery (into its journal: the registry's faults are no
 * concern of the sender's) and signs from the journal: each registry operation is retried by the
 * client's retry policy, and an attempt that still fails is retried by the journal. Everything
 * ends signed exactly once per witness, checked against the real registry with plain fetch and
 * node:crypto, and both kinds of retries stay within bounds derived from the faults injected.
 */
import { startFaultProxy, type FaultKind, type FaultProxy } from '../support/fault-proxy';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  LOCAL_WITNESSES,
  TEST_RETRY,
  auditSignatures,
  countOutcomes,
  deliverUntilAccepted,
  failureCodes,
  inPool,
  localConfigYaml,
  pushEvent,
  pushImages,
  reportFigures,
  startHarness,
  type Attempt,
  type Delivery,
  type Harness,
  type Pushed,
} from './harness';

jest.setTimeout(120_000);

const NAMESPACE = 'faults';
const BASELINE_IMAGES = 20;
const FAULTY_IMAGES = 100;
const FAULT_RATE = 0.2;
const FAULT_KINDS: readonly FaultKind[] = ['429', '503', 'reset', 'reset-after'];
/** Where the registry would give up on a notification; never reached here. */
const MAX_DELIVERIES = 10;
/** The journal's attempts at one push (the product default, which the harness keeps). */
const MAX_ATTEMPTS = 8;
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

/** What delivering every notification of a run and signing it from the journal cost, through the proxy. */
interface Run {
  readonly pushed: readonly Pushed[];
  /** Per image, every delivery of its notification in order. */
  readonly deliveries: readonly (readonly Delivery[])[];
  /** Per image, its journal entry's signing attempts in order. */
  readonly attempts: readonly (readonly Attempt[])[];
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
  await signet.settle();
  const injected = { '429': 0, '503': 0, reset: 0, 'reset-after': 0 };
  for (const kind of FAULT_KINDS) injected[kind] = proxy.injected[kind] - injectedBefore[kind];
  return {
    pushed,
    deliveries,
    attempts: deliveries.map((d) => signet.attemptsOf(entryId(d))),
    requests: proxy.requests.length - requestsBefore,
    injected,
    injectedTotal: Object.values(injected).reduce((a, b) => a + b, 0),
    retries: signet.retries.slice(retriesBefore),
  };
}

/** The journal entry the last delivery of a notification was accepted as. */
const entryId = (deliveries: readonly Delivery[]): string =>
  deliveries[deliveries.length - 1]?.accepted[0]?.id ?? '';

const allAttempts = (run: Run): Attempt[] => run.attempts.flat();
const reportsOf = (attempts: readonly Attempt[]) => attempts.map((a) => a.report);
/** Attempts that failed and were retried by the journal. */
const failedAttempts = (run: Run): Attempt[] =>
  allAttempts(run).filter((a) => a.report.outcomes.some((o) => o.status === 'failed'));

let baseline: Run;
/** Registry requests it takes to sign one image with three witnesses when nothing fails. */
let requestsPerImage: number;

describe('when the registry does not fail (the baseline)', () => {
  beforeAll(async () => {
    baseline = await notifyAll(await pushSome('baseline', BASELINE_IMAGES));
    requestsPerImage = baseline.requests / BASELINE_IMAGES;
  });

  it('accepts every notification at its first delivery, and signs each in one attempt without a retry', () => {
    expect(baseline.deliveries.map((d) => d.map((x) => x.status))).toEqual(
      Array(BASELINE_IMAGES).fill([202]),
    );
    expect(baseline.attempts.map((a) => a.length)).toEqual(Array(BASELINE_IMAGES).fill(1));
    expect(baseline.retries).toEqual([]);
    expect(baseline.injectedTotal).toBe(0);
  });

  it('signs every image with every witness', async () => {
    expect(countOutcomes(reportsOf(allAttempts(baseline)))).toEqual({
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
      attempts: allAttempts(run).length,
      journalRetries: failedAttempts(run).length,
      notifications: FAULTY_IMAGES,
    });
  });

  it('injects every kind of fault', () => {
    for (const kind of FAULT_KINDS) expect(run.injected[kind]).toBeGreaterThan(0);
  });

  it('accepts every notification at its first delivery: the journal, not the registry, retries', () => {
    expect(run.deliveries.map((d) => d.map((x) => x.status))).toEqual(Array(FAULTY_IMAGES).fill([202]));
  });

  it('leaves exactly one valid signature per (digest, witness) in the registry: none lost, none doubled', async () => {
    expect(await auditSignatures(registry.url, run.pushed, signet.keys)).toEqual([]);
  });

  it('ends every push signed, none dead-lettered', () => {
    const finals = run.attempts.map((a) => a[a.length - 1]);
    expect(
      finals.filter((a) => a === undefined || a.report.outcomes.some((o) => o.status === 'failed')),
    ).toEqual([]);
    expect(signet.running.journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 0 });
  });

  it('reports a signature already there only at an attempt after one that failed', () => {
    const presentAtFirstAttempt = allAttempts(run).filter(
      (a) => a.entry.attempts === 0 && countOutcomes([a.report])['already-signed'] > 0,
    );
    expect(presentAtFirstAttempt.map((a) => a.report.image)).toEqual([]);
    // Every attempt but the last of an entry failed: that is why the journal tried again.
    const retriedAfterSuccess = run.attempts.filter((a) =>
      a.slice(0, -1).some((x) => !x.report.outcomes.some((o) => o.status === 'failed')),
    );
    expect(retriedAfterSuccess).toEqual([]);
  });

  it('retries only the faults it met, as retryable registry errors, within the retry policy', () => {
    // Every fault is one failed request, which is retried unless it was its operation's last attempt.
    expect(run.retries.length).toBeGreaterThan(0);
    expect(run.retries.length).toBeLessThanOrEqual(run.injectedTotal);
    expect(Math.max(...run.retries.map((r) => r.attempt))).toBeLessThan(TEST_RETRY.attempts);
    const codes = new Set(run.retries.map((r) => (r.error as { code?: string }).code));
    expect([...codes].filter((code) => !RETRYABLE_CODES.includes(code ?? ''))).toEqual([]);
  });

  it('fails an attempt (and the journal retries it) only when an operation met a fault at every try', () => {
    const failed = failedAttempts(run);
    expect(failed.length * TEST_RETRY.attempts).toBeLessThanOrEqual(run.injectedTotal);
    expect([...new Set(failureCodes(reportsOf(failed)))].filter((c) => !RETRYABLE_CODES.includes(c))).toEqual(
      [],
    );
    expect(Math.max(...run.attempts.map((a) => a.length))).toBeLessThanOrEqual(MAX_ATTEMPTS);
    expect(allAttempts(run).length).toBe(FAULTY_IMAGES + failed.length);
  });

  it('costs at most the fault-free requests of each attempt plus one attempt per fault', () => {
    expect(run.requests).toBeLessThanOrEqual(
      requestsPerImage * allAttempts(run).length + REQUESTS_PER_ATTEMPT * run.injectedTotal,
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

  /** Delivers the push of `image` and waits until the journal is done with it. */
  async function signOne(image: Pushed): Promise<{ deliveries: Delivery[]; attempts: Attempt[] }> {
    const deliveries = await deliverUntilAccepted(
      signet.url,
      [pushEvent(proxy.host, image.repository, image.digest, image.tag)],
      MAX_DELIVERIES,
    );
    await signet.settle();
    return { deliveries, attempts: signet.attemptsOf(entryId(deliveries)) };
  }

  it('writes it again and reports it signed, once', async () => {
    const [image] = (await pushSome('lost-once', 1)) as [Pushed];
    proxy.injectNext('reset-after', 1, lostPuts(image.digest));
    const { deliveries, attempts } = await signOne(image);
    expect(deliveries.map((d) => d.status)).toEqual([202]);
    expect(attempts).toHaveLength(1);
    expect(countOutcomes(reportsOf(attempts))).toEqual({
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

  it("fails the attempt when every try lost its answer; the journal's next attempt finds them all present", async () => {
    const [image] = (await pushSome('lost-always', 1)) as [Pushed];
    proxy.injectNext('reset-after', TEST_RETRY.attempts, lostPuts(image.digest));
    const { deliveries, attempts } = await signOne(image);
    // Replaces "answered 503, and the registry's redelivery found them present": the sender is
    // done at the first delivery, and the journal makes the second attempt.
    expect(deliveries.map((d) => d.status)).toEqual([202]);
    expect(attempts).toHaveLength(2);
    const [lost, again] = attempts as [Attempt, Attempt];
    expect(lost.report.outcomes.map((o) => [o.status, o.errorCode])).toEqual(
      Array(LOCAL_WITNESSES.length).fill(['failed', 'UNREACHABLE']),
    );
    expect(again.entry.attempts).toBe(1);
    expect(countOutcomes([again.report])).toEqual({
      signed: 0,
      'already-signed': LOCAL_WITNESSES.length,
      failed: 0,
    });
    expect(proxy.requests.filter((r) => lostPuts(image.digest)(r))).toHaveLength(TEST_RETRY.attempts);
    expect(await auditSignatures(registry.url, [image], signet.keys)).toEqual([]);
  });
});
