/**
 * A burst of 300 pushes on the real registry, 20% of the notifications delivered twice and
 * everything out of order, many at once; three rules (three local-key witnesses) cover every
 * image. Every (digest, witness) ends with exactly one valid signature: none lost, none doubled.
 * Checked independently: every `.sig` manifest read with plain fetch, every signature verified
 * with node:crypto.
 *
 * Then the same across processes: two Signet instances (two replicas, or two concurrent Lambda
 * invocations) sharing the keys get the same pushes at the same moment, so they race on every
 * `.sig` manifest; the in-process lock cannot help, only the publisher's read-after-write rounds.
 */
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  auditSignatures,
  countOutcomes,
  deliver,
  inPool,
  localConfigYaml,
  pushEvent,
  pushImages,
  seeded,
  shuffled,
  startHarness,
  type Delivery,
  type Harness,
  type Pushed,
} from './harness';

jest.setTimeout(180_000);

const PUSHES = 300;
const DUPLICATE_FRACTION = 0.2;
const REPOSITORIES = 10;

let registry: TestRegistry;
let signet: Harness;

beforeAll(async () => {
  registry = await startTestRegistry();
  signet = await startHarness({ yaml: () => localConfigYaml(registry.host, 'burst') });
});

afterAll(async () => {
  await signet?.stop();
  await registry?.stop();
});

describe('when 300 pushes arrive at once, 20% of them twice, out of order', () => {
  let pushed: Pushed[];
  let deliveries: Delivery[];

  beforeAll(async () => {
    pushed = await pushImages(
      registry.url,
      Array.from({ length: PUSHES }, (_, i) => ({
        repository: `burst/app-${i % REPOSITORIES}`,
        tag: `v${i}`,
        seed: `${i}`,
      })),
    );
    const random = seeded(300);
    const notifications = pushed.map((p) => pushEvent(registry.host, p.repository, p.digest, p.tag));
    const duplicates = notifications.filter(() => random() < DUPLICATE_FRACTION);
    const order = shuffled([...notifications, ...duplicates], random);
    deliveries = [];
    await inPool(order, 24, async (event) => {
      deliveries.push(await deliver(signet.url, [event]));
    });
  });

  it('answers every delivery 200', () => {
    expect(deliveries.length).toBeGreaterThanOrEqual(PUSHES * 1.1);
    expect(deliveries.filter((d) => d.status !== 200)).toEqual([]);
  });

  it('signed each (digest, rule) once and found the duplicates already signed', () => {
    const duplicates = deliveries.length - PUSHES;
    expect(countOutcomes(deliveries)).toEqual({
      signed: PUSHES * 3,
      'already-signed': duplicates * 3,
      failed: 0,
    });
  });

  it('leaves exactly one valid signature per (digest, witness) in the registry', async () => {
    expect(await auditSignatures(registry.url, pushed, signet.keys)).toEqual([]);
  });

  it('never retried a registry request (there were no faults)', () => {
    expect(signet.retries).toHaveLength(0);
  });
});

describe('when two Signet processes get every push of a burst at the same moment', () => {
  const RACED = 60;
  let replica: Harness;
  let pushed: Pushed[];
  let deliveries: Delivery[];

  beforeAll(async () => {
    replica = await startHarness({
      yaml: () => localConfigYaml(registry.host, 'burst', { keyDir: `${signet.dir}/keys` }),
    });
    pushed = await pushImages(
      registry.url,
      Array.from({ length: RACED }, (_, i) => ({
        repository: `burst/raced-${i % 4}`,
        tag: `r${i}`,
        seed: `raced-${i}`,
      })),
    );
    deliveries = [];
    await inPool(pushed, 8, async (image) => {
      const event = pushEvent(registry.host, image.repository, image.digest, image.tag);
      deliveries.push(...(await Promise.all([deliver(signet.url, [event]), deliver(replica.url, [event])])));
    });
  });

  afterAll(() => replica?.stop());

  it('answers every delivery 200: a lost race is merged and written again, not given up', () => {
    const failed = deliveries.flatMap((d) =>
      d.reports.flatMap((r) =>
        r.outcomes.filter((o) => o.status === 'failed').map((o) => `${o.errorCode} ${o.error}`),
      ),
    );
    expect(failed).toEqual([]);
    expect(deliveries.map((d) => d.status)).toEqual(Array(RACED * 2).fill(200));
  });

  it('leaves exactly one valid signature per (digest, witness)', async () => {
    expect(await auditSignatures(registry.url, pushed, signet.keys)).toEqual([]);
  });
});
