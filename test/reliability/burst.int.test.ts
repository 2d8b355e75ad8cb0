/**
 * A burst of 300 pushes on the real registry, 20% of the notifications delivered twice and
 * everything out of order, many at once; three rules (three local-key witnesses) cover every
 * image. Every delivery is answered 202 (journaled), and once the journal has drained every
 * (digest, witness) has exactly one valid signature: none lost, none doubled. A duplicate is either
 * de-duplicated by the journal (the original was still pending or running: same entry id,
 * `duplicate: true`) or journaled anew after the original was signed, and then found signed.
 * Checked independently: every `.sig` manifest read with plain fetch, every signature verified
 * with node:crypto.
 *
 * Then the same across processes: two Signet instances (two replicas, or two concurrent Lambda
 * invocations) sharing the keys, each with its own journal, get the same pushes at the same
 * moment, so their workers race on every `.sig` manifest; the in-process lock cannot help, only
 * the publisher's read-after-write rounds.
 */
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  LOCAL_WITNESSES,
  auditSignatures,
  countOutcomes,
  deliver,
  failureCodes,
  inPool,
  localConfigYaml,
  pushEvent,
  pushImages,
  reportFigures,
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
const RULES = LOCAL_WITNESSES.length;

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
  /** Every delivery, in the order answers came, with the push it carried. */
  let deliveries: { image: Pushed; delivery: Delivery }[];
  let attemptsBefore: number;

  beforeAll(async () => {
    pushed = await pushImages(
      registry.url,
      Array.from({ length: PUSHES }, (_, i) => ({
        repository: `burst/app-${i % REPOSITORIES}`,
        tag: `v${i}`,
        seed: `${i}`,
      })),
    );
    attemptsBefore = signet.attempts.length;
    const random = seeded(300);
    const notifications = pushed.map((image) => ({
      image,
      event: pushEvent(registry.host, image.repository, image.digest, image.tag),
    }));
    const duplicates = notifications.filter(() => random() < DUPLICATE_FRACTION);
    const order = shuffled([...notifications, ...duplicates], random);
    deliveries = [];
    await inPool(order, 24, async ({ image, event }) => {
      deliveries.push({ image, delivery: await deliver(signet.url, [event]) });
    });
    await signet.settle();
  });

  const attempts = () => signet.attempts.slice(attemptsBefore);

  it('answers every delivery 202, each with its push accepted into the journal', () => {
    expect(deliveries.length).toBeGreaterThanOrEqual(PUSHES * 1.1);
    expect(
      deliveries.filter(({ delivery }) => delivery.status !== 202 || delivery.accepted.length !== 1),
    ).toEqual([]);
  });

  it('de-duplicated each duplicate in the journal, or found its push already signed', () => {
    const byDigest = new Map<string, Map<string, boolean[]>>();
    for (const { image, delivery } of deliveries) {
      const entries = byDigest.get(image.digest) ?? new Map<string, boolean[]>();
      for (const { id, duplicate } of delivery.accepted)
        entries.set(id, [...(entries.get(id) ?? []), duplicate]);
      byDigest.set(image.digest, entries);
    }
    let deduplicated = 0;
    let journaledAgain = 0;
    const wrong: unknown[] = [];
    for (const [digest, entries] of byDigest) {
      // Each entry was created by one delivery; any other delivery naming it came while it waited
      // (pending or running) and was answered with its id, marked duplicate.
      for (const [id, flags] of entries) {
        if (flags.filter((duplicate) => !duplicate).length !== 1) wrong.push({ digest, id, flags });
        deduplicated += flags.length - 1;
      }
      // A second entry for the same push was journaled after the first was signed: its attempt
      // found every signature in place.
      const outcomes = [...entries.keys()].map((id) =>
        countOutcomes(signet.attemptsOf(id).map((a) => a.report)),
      );
      const signing = outcomes.filter(
        (o) => o.signed === RULES && o['already-signed'] === 0 && o.failed === 0,
      );
      const found = outcomes.filter((o) => o.signed === 0 && o['already-signed'] === RULES && o.failed === 0);
      if (signing.length !== 1 || found.length !== entries.size - 1) wrong.push({ digest, outcomes });
      journaledAgain += entries.size - 1;
    }
    expect(wrong).toEqual([]);
    expect(byDigest.size).toBe(PUSHES);
    expect(deduplicated + journaledAgain).toBe(deliveries.length - PUSHES);
    reportFigures('burst duplicates', { deduplicated, journaledAgain });
  });

  it('signed each (digest, rule) once, in one attempt per journal entry', () => {
    const entries = new Set(deliveries.map(({ delivery }) => delivery.accepted[0]?.id));
    expect(attempts()).toHaveLength(entries.size);
    expect(new Set(attempts().map((a) => a.entry.id))).toEqual(entries);
    expect(countOutcomes(attempts().map((a) => a.report))).toEqual({
      signed: PUSHES * RULES,
      'already-signed': (entries.size - PUSHES) * RULES,
      failed: 0,
    });
    expect(signet.running.journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 0 });
  });

  it('leaves exactly one valid signature per (digest, witness) in the registry', async () => {
    expect(await auditSignatures(registry.url, pushed, signet.keys)).toEqual([]);
  });

  it('never retried a registry request (there were no faults)', () => {
    expect(signet.retries).toHaveLength(0);
  });
});

describe('when a push is delivered again while it waits in the journal', () => {
  let image: Pushed;
  let deliveries: Delivery[];

  beforeAll(async () => {
    [image] = (await pushImages(registry.url, [{ repository: 'burst/again', tag: 'v1', seed: 'again' }])) as [
      Pushed,
    ];
    const event = () => pushEvent(registry.host, image.repository, image.digest, image.tag);
    // Nothing is claimed while the worker is stopped, so the push is certainly still pending when
    // the registry delivers it again (a separate request) and when an envelope carries it twice.
    await signet.running.signing.stop();
    try {
      deliveries = [await deliver(signet.url, [event()])];
      deliveries.push(await deliver(signet.url, [event()]));
      deliveries.push(await deliver(signet.url, [event(), event()]));
    } finally {
      signet.running.signing.start();
    }
    await signet.settle();
  });

  it('answers each delivery 202 with the waiting entry, marked duplicate', () => {
    const [first] = deliveries as [Delivery];
    const id = first.accepted[0]?.id;
    expect(deliveries.map((d) => [d.status, d.accepted.map((a) => [a.id, a.duplicate])])).toEqual([
      [202, [[id, false]]],
      [202, [[id, true]]],
      [
        202,
        [
          [id, true],
          [id, true],
        ],
      ],
    ]);
  });

  it('signs the push once', async () => {
    const id = deliveries[0]?.accepted[0]?.id ?? '';
    expect(countOutcomes(signet.attemptsOf(id).map((a) => a.report))).toEqual({
      signed: RULES,
      'already-signed': 0,
      failed: 0,
    });
    expect(await auditSignatures(registry.url, [image], signet.keys)).toEqual([]);
  });
});

describe('when two Signet processes get every push of a burst at the same moment', () => {
  const RACED = 60;
  let replica: Harness;
  let pushed: Pushed[];
  let deliveries: Delivery[];
  let attemptsBefore: number;

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
    attemptsBefore = signet.attempts.length;
    deliveries = [];
    await inPool(pushed, 8, async (image) => {
      const event = pushEvent(registry.host, image.repository, image.digest, image.tag);
      deliveries.push(...(await Promise.all([deliver(signet.url, [event]), deliver(replica.url, [event])])));
    });
    await Promise.all([signet.settle(), replica.settle()]);
  });

  afterAll(() => replica?.stop());

  it('answers every delivery 202', () => {
    expect(deliveries.map((d) => d.status)).toEqual(Array(RACED * 2).fill(202));
  });

  it('signs every push at the first attempt in both: a lost race is merged and written again, not given up', () => {
    const attempts = [...signet.attempts.slice(attemptsBefore), ...replica.attempts];
    expect(failureCodes(attempts.map((a) => a.report))).toEqual([]);
    expect(attempts).toHaveLength(RACED * 2);
    expect(signet.running.journal.depth().deadLetters + replica.running.journal.depth().deadLetters).toBe(0);
  });

  it('leaves exactly one valid signature per (digest, witness)', async () => {
    expect(await auditSignatures(registry.url, pushed, signet.keys)).toEqual([]);
  });
});
