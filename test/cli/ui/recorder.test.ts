/**
 * The status page's in-memory source (cli/ui/recorder.ts): bounded rings newest first, per-minute
 * counts over the last hour, signing attempts classified the way the journal classifies them, and
 * admission outcomes from the real controller (over an in-memory registry) turned into denials and
 * findings; `overlay` lets another source (the ledger) answer parts of it.
 */
import { AdmissionController } from '../../../lib/admission/controller';
import type { PushEvent } from '../../../lib/events/types';
import type { DeadLetter, JournalEntry } from '../../../lib/journal';
import { KeyRing } from '../../../lib/keys/keyring';
import type { RuleOutcome, SigningReport } from '../../../lib/signing/pipeline';
import { ImageVerifier } from '../../../lib/verification/verifier';
import { MinuteCounts, Ring, SERIES_MINUTES, StatusRecorder } from '../../../cli/ui/recorder';
import { overlay } from '../../../cli/ui/source';
import { fixture } from '../../admission/fixtures';
import { MemoryRegistries, policy, testKey, verificationConfig } from '../../verification/helpers';

const HOST = 'registry.example.com';
const DIGEST = `sha256:${'b'.repeat(64)}`;

describe('Ring', () => {
  it('keeps the newest items up to its capacity, newest first', () => {
    const ring = new Ring<number>(3);
    expect(ring.latest(5)).toEqual([]);
    for (let i = 1; i <= 5; i++) ring.push(i);
    expect(ring.latest(5)).toEqual([5, 4, 3]);
    expect(ring.latest(2)).toEqual([5, 4]);
  });
});

describe('MinuteCounts', () => {
  it('counts per minute and forgets what is older than the hour', () => {
    let now = Date.UTC(2025, 5, 2, 10, 0, 30);
    const counts = new MinuteCounts(() => now);
    counts.add('signed', 2);
    now += 60_000;
    counts.add('signed');
    counts.add('denied');
    let snapshot = counts.snapshot();
    const signed = () => snapshot.series.find((s) => s.name === 'signed')?.values ?? [];
    expect(signed()).toHaveLength(SERIES_MINUTES);
    expect(signed().slice(-2)).toEqual([2, 1]);
    expect(snapshot.start).toBe(Date.UTC(2025, 5, 2, 9, 2));
    now += SERIES_MINUTES * 60_000;
    counts.add('pushes');
    snapshot = counts.snapshot();
    expect(signed().every((v) => v === 0)).toBe(true);
    expect(snapshot.series.find((s) => s.name === 'pushes')?.values.at(-1)).toBe(1);
  });
});

const event = (repository: string): PushEvent =>
  ({ registry: HOST, repository, digest: DIGEST, tag: 'v1', source: 'distribution', id: 'n-1' }) as PushEvent;

const entry = (attempts: number): JournalEntry => ({
  id: 'entry-1',
  event: event('team-a/app'),
  attempts,
  firstSeenAt: 0,
  lastError: undefined,
});

const outcome = (status: RuleOutcome['status'], extra: Partial<RuleOutcome> = {}): RuleOutcome => ({
  rule: 'team-a',
  witness: 'release',
  algorithm: 'ECDSA_SHA_256',
  signatureType: 'simple',
  digest: DIGEST,
  status,
  signatureRef: `${HOST}/team-a/app:sha256-${'b'.repeat(64)}.sig`,
  keyId: undefined,
  ...extra,
});

const report = (outcomes: RuleOutcome[]): SigningReport => ({
  image: `${HOST}/team-a/app:v1@${DIGEST}`,
  registry: HOST,
  repository: 'team-a/app',
  digest: DIGEST,
  tag: 'v1',
  skipped: undefined,
  outcomes,
  durationMs: 3,
});

describe('StatusRecorder', () => {
  let now: number;
  let recorder: StatusRecorder;
  const letters: DeadLetter[] = [];

  beforeEach(() => {
    now = Date.UTC(2025, 5, 2, 10, 0, 0);
    letters.length = 0;
    recorder = new StatusRecorder({
      clock: () => now,
      maxAttempts: 3,
      journal: { deadLetters: ({ limit }) => letters.slice(0, limit) },
    });
  });

  const series = async (name: string): Promise<number> =>
    ((await recorder.series()).series.find((s) => s.name === name)?.values ?? []).reduce((a, b) => a + b, 0);

  describe('when a push is signed', () => {
    it('records each rule that signed, and counts only new signatures', async () => {
      recorder.signing(report([outcome('signed'), outcome('already-signed', { rule: 'backup' })]), entry(0));
      expect(await recorder.recentSignatures(10)).toEqual([
        {
          at: now,
          image: `${HOST}/team-a/app:v1@${DIGEST}`,
          rule: 'backup',
          witness: 'release',
          status: 'already-signed',
        },
        {
          at: now,
          image: `${HOST}/team-a/app:v1@${DIGEST}`,
          rule: 'team-a',
          witness: 'release',
          status: 'signed',
        },
      ]);
      expect(await series('signed')).toBe(1);
      expect(await recorder.recentFailures(10)).toEqual([]);
    });
  });

  describe('when an attempt fails', () => {
    it('records a transient failure as one that will be retried', async () => {
      recorder.signing(
        report([outcome('failed', { errorCode: 'KMS_UNAVAILABLE', error: 'down' })]),
        entry(0),
      );
      const [failure] = await recorder.recentFailures(10);
      expect(failure).toMatchObject({ code: 'KMS_UNAVAILABLE', attempt: 1, final: false });
      expect(await series('failed')).toBe(1);
    });

    it('marks the last allowed attempt as dead-lettered', async () => {
      recorder.signing(
        report([outcome('failed', { errorCode: 'KMS_UNAVAILABLE', error: 'down' })]),
        entry(2),
      );
      expect((await recorder.recentFailures(1))[0]).toMatchObject({ attempt: 3, final: true });
    });

    it('marks a permanent failure as dead-lettered at once', async () => {
      recorder.signing(
        report([outcome('failed', { errorCode: 'ALGORITHM_MISMATCH', error: 'no' })]),
        entry(0),
      );
      expect((await recorder.recentFailures(1))[0]).toMatchObject({
        code: 'ALGORITHM_MISMATCH',
        final: true,
      });
    });
  });

  it('counts every push a delivery named', async () => {
    recorder.intake([
      { $case: 'accepted', id: 'a', duplicate: false, event: event('team-a/app') },
      { $case: 'ignored', reason: 'no signing rule covers it', event: event('other/app') },
    ]);
    expect(await series('pushes')).toBe(2);
  });

  it('reads dead letters from the journal, with their image', async () => {
    letters.push({
      id: 'dl-1',
      event: event('team-a/ghost'),
      attempts: 3,
      firstSeenAt: now - 1000,
      failedAt: now,
      code: 'MANIFEST_UNKNOWN',
      message: 'gone',
      permanent: true,
    });
    expect(await recorder.deadLetters(5)).toEqual([
      {
        id: 'dl-1',
        failedAt: now,
        image: `${HOST}/team-a/ghost:v1@${DIGEST}`,
        code: 'MANIFEST_UNKNOWN',
        message: 'gone',
        attempts: 3,
        permanent: true,
      },
    ]);
    expect(await new StatusRecorder().deadLetters(5)).toEqual([]);
  });

  describe('when the admission controller answers reviews', () => {
    let controller: AdmissionController;

    beforeEach(async () => {
      const registries = new MemoryRegistries();
      const registry = registries.add(HOST);
      await registry.pushImage('team-a/web', 'v1');
      await registry.pushImage('team-a/migrate', 'v1');
      const release = testKey('release');
      const witnesses = [release.witness];
      const verifier = new ImageVerifier({
        config: verificationConfig(witnesses, [
          policy({
            name: 'team-a',
            namespaces: ['production'],
            images: [`${HOST}/team-a/**`],
            attestors: [{ witnesses: ['release'], count: 1 }],
          }),
          policy({
            name: 'staging',
            mode: 'audit',
            namespaces: ['staging'],
            images: [`${HOST}/**`],
            attestors: [{ witnesses: ['release'], count: 1 }],
          }),
        ]),
        registries,
        keys: new KeyRing({ witnesses, baseDir: '/nonexistent' }),
        signatures: { bundles: false },
      });
      controller = new AdmissionController({ verifier, observe: (o) => recorder.admission(o) });
    });

    it('records one denial per denied image, naming the object, field and reason', async () => {
      const review = fixture('deployment-create');
      await controller.review(review, 'eu-1');
      const denials = await recorder.recentDenials(10);
      expect(denials.map((d) => [d.object, d.field, d.image, d.code, d.cluster])).toEqual(
        expect.arrayContaining([
          [
            'Deployment production/web',
            'spec.template.spec.initContainers[0].image',
            `${HOST}/team-a/migrate:v1`,
            'NO_SIGNATURES',
            'eu-1',
          ],
          [
            'Deployment production/web',
            'spec.template.spec.containers[0].image',
            `${HOST}/team-a/web:v1`,
            'NO_SIGNATURES',
            'eu-1',
          ],
        ]),
      );
      expect(denials).toHaveLength(2);
      expect(await series('denied')).toBe(1);
    });

    it('records what an audit-mode policy let through as a finding', async () => {
      const review = fixture('deployment-create');
      review.request.namespace = 'staging';
      review.request.object.metadata.namespace = 'staging';
      const answer = await controller.review(review, undefined);
      expect(answer.response.allowed).toBe(true);
      const findings = await recorder.findings(10);
      expect(findings).toHaveLength(2);
      expect(findings[0]).toMatchObject({ namespace: 'staging', code: 'NO_SIGNATURES', source: 'admission' });
      expect(findings[0]?.image).toMatch(/@sha256:/);
      expect(await recorder.recentDenials(10)).toEqual([]);
      expect(await series('admitted')).toBe(1);
    });

    it('records the malformed parts of an object as denials of their own', async () => {
      const review = fixture('pod-create');
      review.request.object.spec.containers = 'not a list';
      await controller.review(review, undefined);
      const denials = await recorder.recentDenials(10);
      expect(denials.map((d) => [d.field, d.code])).toEqual([
        ['spec.initContainers[0].image', 'NO_SIGNATURES'],
        ['spec.containers', 'OBJECT_INVALID'],
      ]);
    });

    it('records a denial that names no image (the deadline) with the answer', async () => {
      const slow = new AdmissionController({
        verifier: {
          deadlineMs: 10,
          isExcluded: () => false,
          reviewBounds: () => ({ dispose: () => undefined }),
          verifyAll: () => new Promise(() => undefined),
        },
        observe: (o) => recorder.admission(o),
      });
      await slow.review(fixture('pod-create'), undefined);
      const [denial] = await recorder.recentDenials(10);
      expect(denial).toMatchObject({ object: 'Pod production/web', image: undefined, code: 'DENIED' });
      expect(denial?.message).toContain('did not finish');
    });
  });
});

describe('overlay', () => {
  it('answers from the overlay where it has an answer, else from the base', async () => {
    const base = new StatusRecorder({ clock: () => 0 });
    base.signing(report([outcome('signed')]), entry(0));
    const combined = overlay(base, {
      findings: () => Promise.resolve([]),
      recentSignatures: () => Promise.resolve([]),
    });
    expect(await combined.recentSignatures(5)).toEqual([]);
    expect(await base.recentSignatures(5)).toHaveLength(1);
    expect((await combined.series()).series.find((s) => s.name === 'signed')?.values.at(-1)).toBe(1);
  });
});
