/**
 * The behaviour every ledger store owes the edges, run against each store (`sqlite.test.ts`,
 * `dynamodb.int.test.ts`) so that SQLite and DynamoDB answer the same question alike: records
 * written and found by image, digest, witness, time range and limit (newest first); a signature
 * keeps its first record; admitted placements for re-verification; findings opened, replaced and
 * resolved; and what the retention removes (SQLite's `prune`, DynamoDB's TTL).
 */
import type {
  AdmittedImage,
  DecisionImage,
  DecisionRecord,
  Finding,
  Ledger,
  SignatureRecord,
} from '../../lib/ledger/types';

/** One store under test. */
export interface LedgerUnderTest {
  readonly ledger: Ledger;
  /** Removes what the retention makes old at `now`: `prune(now)`, or the TTL firing. */
  expire(now: number): Promise<void>;
}

/** Every test's records are about this hour; the stores' clocks read NOW. */
export const T0 = Date.parse('2026-11-20T10:00:00.000Z');
export const NOW = T0 + 3_600_000;
export const RETENTION_DAYS = 30;
export const WINDOW_DAYS = 7;
const DAY = 86_400_000;

export const digestOf = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;

export function signature(overrides: Partial<SignatureRecord> = {}): SignatureRecord {
  const base: SignatureRecord = {
    id: 'sig-1',
    signedAt: T0,
    registry: 'registry.example',
    repository: 'team-a/app',
    tag: 'v1',
    digest: digestOf(1),
    rule: 'team-a',
    witness: 'release',
    keyId: `sha256:${'a'.repeat(64)}`,
    algorithm: 'ecdsa-p256-sha256',
    signatureType: 'simple',
    status: 'signed',
    signatureRef: `registry.example/team-a/app:sha256-${'0'.repeat(63)}1.sig`,
    bundleRef: undefined,
    conditions: { pushedBy: ['ci'] },
    eventId: 'event-1',
    recordedBy: 'serve',
  };
  return { ...base, ...overrides };
}

export function image(overrides: Partial<DecisionImage> = {}): DecisionImage {
  return {
    field: 'spec.containers[0].image',
    image: 'registry.example/team-a/app:v1',
    reference: 'registry.example/team-a/app:v1',
    repository: 'registry.example/team-a/app',
    digest: digestOf(1),
    verdict: 'allow',
    reason: undefined,
    policies: [{ policy: 'prod', effect: 'pass', reason: undefined }],
    ...overrides,
  };
}

export function decision(overrides: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    id: 'dec-1',
    decidedAt: T0,
    source: 'admission',
    uid: 'uid-1',
    operation: 'CREATE',
    object: 'Pod team-a/app',
    dryRun: false,
    cluster: undefined,
    namespace: 'team-a',
    effect: 'allow',
    reasons: [],
    images: [image()],
    ...overrides,
  };
}

export function admitted(overrides: Partial<AdmittedImage> = {}): AdmittedImage {
  return {
    reference: 'registry.example/team-a/app:v1',
    digest: digestOf(1),
    namespace: 'team-a',
    cluster: '',
    verdict: 'allow',
    lastAdmittedAt: T0,
    ...overrides,
  };
}

export function finding(overrides: Partial<Finding> = {}): Finding {
  return {
    id: 'finding-1',
    reference: 'registry.example/team-a/app:v1',
    digest: digestOf(1),
    namespace: 'team-a',
    cluster: '',
    code: 'NO_SIGNATURES',
    message: 'no signatures',
    policies: ['prod'],
    firstFoundAt: T0,
    lastFoundAt: T0,
    resolvedAt: undefined,
    lastAdmittedAt: T0,
    announcedAt: undefined,
    ...overrides,
  };
}

const ids = (records: readonly { readonly id: string }[]): string[] => records.map((r) => r.id);
const none = { signatures: [], decisions: [], admitted: [] };

/** The shared suite; `open` gives a fresh, empty store for every test. */
export function describeLedgerBehaviour(open: () => Promise<LedgerUnderTest>): void {
  let store: LedgerUnderTest;
  let ledger: Ledger;

  beforeEach(async () => {
    store = await open();
    ledger = store.ledger;
  });
  afterEach(async () => {
    await ledger.close();
  });

  describe('when signatures are recorded', () => {
    beforeEach(async () => {
      await ledger.write({
        ...none,
        signatures: [
          signature({ id: 's1', signedAt: T0 }),
          signature({ id: 's2', signedAt: T0 + 1000, witness: 'audit', rule: 'audit' }),
          signature({ id: 's3', signedAt: T0 + 2000, digest: digestOf(2), tag: 'v2' }),
          signature({ id: 's4', signedAt: T0 + 3000, repository: 'team-b/api', digest: digestOf(3) }),
        ],
      });
    });

    it('answers who signed a digest, when and with which rule, newest first', async () => {
      const found = await ledger.signatures({ digest: digestOf(1) });
      expect(found.map((r) => [r.id, r.witness, r.rule, r.signedAt])).toEqual([
        ['s2', 'audit', 'audit', T0 + 1000],
        ['s1', 'release', 'team-a', T0],
      ]);
      expect(found[1]).toEqual(signature({ id: 's1', signedAt: T0 }));
    });

    it('finds them by repository, and by repository and tag', async () => {
      expect(ids(await ledger.signatures({ repository: 'registry.example/team-a/app' }))).toEqual([
        's3',
        's2',
        's1',
      ]);
      expect(ids(await ledger.signatures({ repository: 'registry.example/team-a/app', tag: 'v2' }))).toEqual([
        's3',
      ]);
      expect(await ledger.signatures({ repository: 'registry.example/team-c/none' })).toEqual([]);
    });

    it('finds them by witness', async () => {
      expect(ids(await ledger.signatures({ witness: 'release' }))).toEqual(['s4', 's3', 's1']);
      expect(ids(await ledger.signatures({ witness: 'audit' }))).toEqual(['s2']);
    });

    it('finds them by time range, since inclusive and until exclusive', async () => {
      expect(ids(await ledger.signatures({ since: T0 + 1000, until: T0 + 3000 }))).toEqual(['s3', 's2']);
      expect(ids(await ledger.signatures({ witness: 'release', since: T0 + 2000 }))).toEqual(['s4', 's3']);
      expect(
        ids(await ledger.signatures({ repository: 'registry.example/team-a/app', until: T0 + 1000 })),
      ).toEqual(['s1']);
      expect(ids(await ledger.signatures({ digest: digestOf(1), since: T0 + 1 }))).toEqual(['s2']);
    });

    it('answers a query without filters with the most recent', async () => {
      expect(ids(await ledger.signatures({}))).toEqual(['s4', 's3', 's2', 's1']);
    });

    it('gives the newest `limit` records whichever key the query uses', async () => {
      // Its id sorts after the others, its time before them.
      await ledger.write({ ...none, signatures: [signature({ id: 'z-oldest', signedAt: T0 - 1000 })] });
      expect(ids(await ledger.signatures({ limit: 2 }))).toEqual(['s4', 's3']);
      expect(ids(await ledger.signatures({ digest: digestOf(1), limit: 1 }))).toEqual(['s2']);
      expect(ids(await ledger.signatures({ repository: 'registry.example/team-a/app', limit: 1 }))).toEqual([
        's3',
      ]);
      expect(ids(await ledger.signatures({ witness: 'release', limit: 2 }))).toEqual(['s4', 's3']);
    });

    it('answers an empty range with nothing', async () => {
      expect(await ledger.signatures({ since: T0 + 5000, until: T0 + 4000 })).toEqual([]);
      expect(await ledger.signatures({ digest: digestOf(1), since: T0 + 5000, until: T0 + 4000 })).toEqual(
        [],
      );
    });

    it('keeps the first record of a signature written again', async () => {
      await ledger.write({
        ...none,
        signatures: [signature({ id: 's1', signedAt: T0 + 9000, eventId: 'again' })],
      });
      const [first] = await ledger.signatures({ digest: digestOf(1), witness: 'release' });
      expect(first).toMatchObject({ id: 's1', signedAt: T0, eventId: 'event-1' });
    });

    it('matches no decision by witness', async () => {
      await ledger.write({ ...none, decisions: [decision()] });
      expect(await ledger.decisions({ witness: 'release' })).toEqual([]);
    });
  });

  describe('when decisions are recorded', () => {
    beforeEach(async () => {
      await ledger.write({
        ...none,
        decisions: [
          decision({ id: 'd1', decidedAt: T0 }),
          decision({
            id: 'd2',
            decidedAt: T0 + 1000,
            effect: 'deny',
            reasons: ['denied'],
            images: [
              image({ verdict: 'deny', reason: 'NO_SIGNATURES' }),
              image({
                image: 'registry.example/team-b/api@' + digestOf(3),
                reference: 'registry.example/team-b/api@' + digestOf(3),
                repository: 'registry.example/team-b/api',
                digest: digestOf(3),
              }),
            ],
          }),
          decision({
            id: 'd3',
            decidedAt: T0 + 2000,
            source: 'verify',
            uid: undefined,
            images: [image({ reference: 'registry.example/team-a/app:v2', digest: digestOf(2) })],
          }),
          // An image that did not parse: no digest, no repository.
          decision({
            id: 'd4',
            decidedAt: T0 + 3000,
            effect: 'deny',
            images: [
              image({ image: 'UPPER/case', reference: undefined, repository: undefined, digest: undefined }),
            ],
          }),
        ],
      });
    });

    it('finds each decision by any of its images, once', async () => {
      expect(ids(await ledger.decisions({ digest: digestOf(1) }))).toEqual(['d2', 'd1']);
      expect(ids(await ledger.decisions({ digest: digestOf(3) }))).toEqual(['d2']);
      expect(ids(await ledger.decisions({ repository: 'registry.example/team-a/app' }))).toEqual([
        'd3',
        'd2',
        'd1',
      ]);
      expect(ids(await ledger.decisions({ repository: 'registry.example/team-b/api' }))).toEqual(['d2']);
      expect(ids(await ledger.decisions({ repository: 'registry.example/team-a/app', tag: 'v2' }))).toEqual([
        'd3',
      ]);
    });

    it('keeps the whole decision', async () => {
      const [d2] = await ledger.decisions({ digest: digestOf(3) });
      expect(d2?.images).toHaveLength(2);
      expect(d2).toMatchObject({ effect: 'deny', reasons: ['denied'], object: 'Pod team-a/app' });
    });

    it('finds them by time range and limit, newest first', async () => {
      expect(ids(await ledger.decisions({}))).toEqual(['d4', 'd3', 'd2', 'd1']);
      expect(ids(await ledger.decisions({ since: T0 + 1000, until: T0 + 3000 }))).toEqual(['d3', 'd2']);
      expect(ids(await ledger.decisions({ digest: digestOf(1), until: T0 + 1000 }))).toEqual(['d1']);
      expect(
        ids(await ledger.decisions({ repository: 'registry.example/team-a/app', since: T0 + 1 })),
      ).toEqual(['d3', 'd2']);
      expect(ids(await ledger.decisions({ limit: 1 }))).toEqual(['d4']);
      expect(ids(await ledger.decisions({ repository: 'registry.example/team-a/app', limit: 2 }))).toEqual([
        'd3',
        'd2',
      ]);
      expect(ids(await ledger.decisions({ digest: digestOf(1), limit: 1 }))).toEqual(['d2']);
    });

    it('writes a decision once however often it is written', async () => {
      await ledger.write({ ...none, decisions: [decision({ id: 'd1', decidedAt: T0 })] });
      expect(ids(await ledger.decisions({ digest: digestOf(1) }))).toEqual(['d2', 'd1']);
    });
  });

  describe('admitted placements', () => {
    it('lists those admitted since a time, the latest admission winning', async () => {
      await ledger.write({
        ...none,
        admitted: [
          admitted({ lastAdmittedAt: T0 }),
          admitted({ namespace: 'team-b', lastAdmittedAt: T0 - 2 * DAY }),
          admitted({
            digest: digestOf(2),
            reference: 'registry.example/team-a/app:v2',
            lastAdmittedAt: T0 + 10,
          }),
        ],
      });
      await ledger.write({ ...none, admitted: [admitted({ lastAdmittedAt: T0 + 500, verdict: 'warn' })] });
      // An older admission delivered late does not move the placement back.
      await ledger.write({ ...none, admitted: [admitted({ lastAdmittedAt: T0 - 500 })] });

      const found = await ledger.admitted(T0 - DAY);
      expect(found).toEqual([
        admitted({ lastAdmittedAt: T0 + 500, verdict: 'warn' }),
        admitted({
          digest: digestOf(2),
          reference: 'registry.example/team-a/app:v2',
          lastAdmittedAt: T0 + 10,
        }),
      ]);
      expect(await ledger.admitted(T0 - 3 * DAY)).toHaveLength(3);
    });

    it('keeps one placement when one batch admits it twice', async () => {
      await ledger.write({
        ...none,
        admitted: [admitted({ lastAdmittedAt: T0 + 1 }), admitted({ lastAdmittedAt: T0 })],
      });
      expect(await ledger.admitted(0)).toEqual([admitted({ lastAdmittedAt: T0 + 1 })]);
    });
  });

  describe('findings', () => {
    it('lists the open ones, most recent first, and the resolved ones on request', async () => {
      await ledger.saveFindings([
        finding({ id: 'f1', lastFoundAt: T0 }),
        finding({ id: 'f2', lastFoundAt: T0 + 1000, code: 'SIGNATURE_REVOKED' }),
        finding({ id: 'f3', lastFoundAt: T0 + 2000, resolvedAt: T0 + 2000 }),
      ]);
      expect(ids(await ledger.findings())).toEqual(['f2', 'f1']);
      expect(ids(await ledger.findings({ includeResolved: true }))).toEqual(['f3', 'f2', 'f1']);
      expect((await ledger.findings())[0]).toEqual(
        finding({ id: 'f2', lastFoundAt: T0 + 1000, code: 'SIGNATURE_REVOKED' }),
      );
    });

    it('replaces a finding by id, and resolving it closes it', async () => {
      await ledger.saveFindings([finding({ id: 'f1' })]);
      await ledger.saveFindings([finding({ id: 'f1', lastFoundAt: T0 + 10, announcedAt: T0 + 10 })]);
      expect(await ledger.findings()).toEqual([
        finding({ id: 'f1', lastFoundAt: T0 + 10, announcedAt: T0 + 10 }),
      ]);
      await ledger.saveFindings([finding({ id: 'f1', lastFoundAt: T0 + 10, resolvedAt: T0 + 20 })]);
      expect(await ledger.findings()).toEqual([]);
      expect(await ledger.findings({ includeResolved: true })).toEqual([
        finding({ id: 'f1', lastFoundAt: T0 + 10, resolvedAt: T0 + 20 }),
      ]);
    });

    it('saves nothing when given nothing', async () => {
      await ledger.saveFindings([]);
      expect(await ledger.findings({ includeResolved: true })).toEqual([]);
    });
  });

  describe('when the retention has passed', () => {
    it('removes old decisions, old admissions and old resolved findings, and keeps signatures and open findings', async () => {
      const old = T0 - (RETENTION_DAYS + 2) * DAY;
      await ledger.write({
        signatures: [signature({ id: 'old-sig', signedAt: old })],
        decisions: [decision({ id: 'old', decidedAt: old }), decision({ id: 'new', decidedAt: T0 })],
        admitted: [
          admitted({ namespace: 'old', lastAdmittedAt: old }),
          admitted({ namespace: 'new', lastAdmittedAt: T0 }),
        ],
      });
      await ledger.saveFindings([
        finding({ id: 'open-old', lastFoundAt: old }),
        finding({ id: 'resolved-old', lastFoundAt: old, resolvedAt: old }),
        finding({ id: 'resolved-new', lastFoundAt: T0, resolvedAt: T0 }),
      ]);

      await store.expire(NOW);

      expect(ids(await ledger.decisions({ since: old - DAY }))).toEqual(['new']);
      expect(ids(await ledger.signatures({ digest: digestOf(1) }))).toEqual(['old-sig']);
      expect((await ledger.admitted(0)).map((a) => a.namespace)).toEqual(['new']);
      expect(ids(await ledger.findings({ includeResolved: true })).sort()).toEqual([
        'open-old',
        'resolved-new',
      ]);
    });
  });
}
