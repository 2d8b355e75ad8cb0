/**
 * Pushes that wait for their scan result, in the local service's durable signing: the journal
 * keeps them (`wait`), a scan result wakes them (`acceptScans`), a result that arrives first is
 * found by the push, a result no push waits for re-drives its image, and a scan that never comes
 * is reported `SCAN_TIMEOUT` once `waitSeconds` have passed. Real SQLite journal in a temp dir,
 * in-memory registry, real local keys.
 */
import { join } from 'node:path';
import type { ScanEvent, ScanResult } from '../../lib/events/types';
import { silentLogger } from '../../lib/core/logger';
import { Journal } from '../../lib/journal';
import { DurableSigning, classifyReport } from '../../lib/signing/durable';
import type { RuleOutcome, SigningReport } from '../../lib/signing/pipeline';
import { HOST, pushEvent, readSignatures, signingFixture, type SigningFixture } from './fixtures';

const RULES = `
  - name: scanned
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      scan: { maxSeverity: HIGH, waitSeconds: 3600 }
  - name: quick
    namespaces: [quick]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      scan: { maxSeverity: HIGH, waitSeconds: 1 }
`;

const CLEAN: ScanResult = {
  $case: 'complete',
  scanner: 'harbor',
  counts: { CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 0 },
  fixable: 1,
};

const scanEvent = (repository: string, digest: string, result: ScanResult = CLEAN): ScanEvent => ({
  registry: HOST,
  repository,
  digest,
  tags: ['v1'],
  result,
  id: undefined,
});

describe('classifyReport with rules waiting for scans', () => {
  const outcome = (status: RuleOutcome['status'], extra: Partial<RuleOutcome> = {}): RuleOutcome => ({
    rule: `rule-${status}`,
    witness: 'w',
    algorithm: 'ECDSA_SHA_256',
    signatureType: 'default',
    digest: `sha256:${'1'.repeat(64)}`,
    status,
    signatureRef: 'ref',
    keyId: undefined,
    ...extra,
  });
  const report = (outcomes: RuleOutcome[]): SigningReport => ({
    image: 'r/team-a/app:v1@sha256:1',
    registry: 'r',
    repository: 'team-a/app',
    digest: `sha256:${'1'.repeat(64)}`,
    tag: 'v1',
    skipped: undefined,
    outcomes,
    durationMs: 1,
  });

  it('waits until the earliest wait ends, when nothing failed', () => {
    expect(
      classifyReport(
        report([
          outcome('signed'),
          outcome('waiting', { rule: 'a', waitUntil: 5000 }),
          outcome('waiting', { rule: 'b', waitUntil: 3000 }),
          outcome('not-signed'),
        ]),
        0,
      ),
    ).toEqual({
      $case: 'wait',
      until: 3000,
      code: 'SCAN_PENDING',
      message: 'r/team-a/app:v1@sha256:1: rules "a", "b" wait for the scan result',
    });
  });

  it('retries a transient failure first (the retry decides the waiting rules again)', () => {
    const result = classifyReport(
      report([outcome('waiting', { waitUntil: 3000 }), outcome('failed', { errorCode: 'UNAVAILABLE' })]),
      0,
    );
    expect(result.$case).toBe('retry');
  });

  it('is done when rules were not signed for good', () => {
    expect(classifyReport(report([outcome('not-signed')]), 0)).toEqual({ $case: 'done' });
  });
});

describe('DurableSigning with scan conditions', () => {
  let fixture: SigningFixture;
  let journal: Journal;
  let signing: DurableSigning;
  let reports: SigningReport[];

  beforeEach(async () => {
    fixture = await signingFixture(RULES, undefined, {
      registries: `  - host: ${HOST}\n    kind: harbor\n`,
    });
    journal = Journal.open(join(fixture.dir, 'journal.db'));
    reports = [];
    signing = new DurableSigning({
      pipeline: fixture.pipeline(),
      journal,
      settings: { ...fixture.config.journal, retryBaseMs: 10, retryMaxMs: 20 },
      logger: silentLogger,
      onReport: (report) => reports.push(report),
    });
    signing.start();
  });

  afterEach(async () => {
    await signing.stop(1000);
    journal.close();
    await fixture.cleanup();
  });

  const statuses = (digest: string): string[] =>
    reports.flatMap((r) => r.outcomes.filter((o) => o.digest === digest).map((o) => o.status));

  it('keeps the push waiting, then signs it when its scan arrives', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'v1');
    const [accepted] = await signing.accept([pushEvent('team-a/app', digest)]);
    await signing.worker.whenIdle();
    expect(statuses(digest)).toEqual(['waiting']);
    expect(journal.waiting()).toBe(1);

    const woken = await signing.acceptScans([scanEvent('team-a/app', digest)]);
    expect(woken).toEqual([
      expect.objectContaining({
        $case: 'accepted',
        id: accepted?.$case === 'accepted' ? accepted.id : '',
        duplicate: true,
      }),
    ]);
    await signing.worker.whenIdle();
    expect(statuses(digest)).toEqual(['waiting', 'signed']);
    expect(journal.waiting()).toBe(0);
    expect(journal.depth().pending).toBe(0);
    expect(readSignatures(fixture.registry, 'team-a/app', digest)).toHaveLength(1);
  });

  it('finds a scan that arrived before the push', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'v2');
    journal.recordScans([{ registry: HOST, repository: 'team-a/app', digest, result: CLEAN }]);
    await signing.accept([pushEvent('team-a/app', digest, { tag: 'v2' })]);
    await signing.worker.whenIdle();
    expect(statuses(digest)).toEqual(['signed']);
  });

  it('re-drives the image of a scan no push waits for (pushed before Signet ran, a rescan)', async () => {
    const digest = await fixture.registry.pushImage('team-a/app', 'v1');
    const outcomes = await signing.acceptScans([scanEvent('team-a/app', digest)]);
    expect(outcomes).toEqual([expect.objectContaining({ $case: 'accepted', duplicate: false })]);
    await signing.worker.whenIdle();
    expect(reports.map((r) => [r.tag, r.outcomes.map((o) => o.status)])).toEqual([['v1', ['signed']]]);
  });

  it('ignores a scan of an image no scan rule covers', async () => {
    const outcomes = await signing.acceptScans([scanEvent('other/app', `sha256:${'2'.repeat(64)}`)]);
    expect(outcomes).toEqual([expect.objectContaining({ $case: 'ignored' })]);
  });

  it('reports SCAN_TIMEOUT when no scan arrives within waitSeconds', async () => {
    const digest = await fixture.registry.pushImage('quick/app', 'v1');
    await signing.accept([pushEvent('quick/app', digest)]);
    for (let i = 0; i < 100 && !statuses(digest).includes('not-signed'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      await signing.worker.whenIdle();
    }
    const last = reports[reports.length - 1]?.outcomes[0];
    expect(last).toMatchObject({
      status: 'not-signed',
      unmet: { condition: 'scan', reason: 'SCAN_TIMEOUT' },
    });
    expect(journal.depth().pending).toBe(0);
    expect(readSignatures(fixture.registry, 'quick/app', digest)).toEqual([]);
  });
});
