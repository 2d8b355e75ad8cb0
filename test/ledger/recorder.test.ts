/**
 * The recorder between the edges and the ledger store: the hooks only queue (nothing is built or
 * written on the caller's path, and nothing they are given makes them throw), the queue is
 * written in batches, a failing store keeps the records and is tried again, an overflowing queue
 * drops its oldest entries and says so, and close() writes what is left.
 */
import type { AdmissionOutcome } from '../../lib/admission/controller';
import type { Logger } from '../../lib/core/logger';
import { LedgerError } from '../../lib/ledger/errors';
import { LedgerRecorder, type LedgerRecorderOptions } from '../../lib/ledger/recorder';
import type { DecisionRecord, Ledger, LedgerBatch } from '../../lib/ledger/types';
import type { SigningReport } from '../../lib/signing/report';
import type { ImageDecision } from '../../lib/verification/decision';
import { digestOf } from './behaviour';

/** A store that keeps batches in memory and fails while `failing` is set. */
class MemoryLedger implements Ledger {
  readonly writes: LedgerBatch[] = [];
  readonly attempts: LedgerBatch[] = [];
  failing = false;
  prunes: number[] = [];

  write(batch: LedgerBatch): Promise<void> {
    this.attempts.push(batch);
    if (this.failing) return Promise.reject(new LedgerError('LEDGER_WRITE_FAILED', 'memory', 'disk full'));
    this.writes.push(batch);
    return Promise.resolve();
  }
  get decisionsWritten(): DecisionRecord[] {
    return this.writes.flatMap((w) => w.decisions);
  }
  signatures = (): Promise<never[]> => Promise.resolve([]);
  decisions = (): Promise<never[]> => Promise.resolve([]);
  admitted = (): Promise<never[]> => Promise.resolve([]);
  findings = (): Promise<never[]> => Promise.resolve([]);
  saveFindings = (): Promise<void> => Promise.resolve();
  prune(now: number): Promise<void> {
    this.prunes.push(now);
    return Promise.resolve();
  }
  close = (): Promise<void> => Promise.resolve();
}

interface LogLine {
  level: string;
  message: string;
  fields: Record<string, unknown> | undefined;
}

function capturingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function verifyDecision(n: number, overrides: Partial<ImageDecision> = {}): ImageDecision {
  return {
    image: `registry.example/team-a/app:v${n}`,
    reference: `registry.example/team-a/app:v${n}`,
    digest: digestOf(n),
    namespace: 'team-a',
    cluster: undefined,
    allowed: true,
    verdict: 'allow',
    reason: undefined,
    message: 'allowed',
    policies: [
      {
        policy: 'prod',
        mode: 'enforce',
        failurePolicy: 'deny',
        verified: true,
        effect: 'pass',
        reason: undefined,
        attestors: [],
        cached: false,
      },
    ],
    warnings: [],
    mutatedImage: undefined,
    ...overrides,
  };
}

function admission(n: number, decision = verifyDecision(n)): AdmissionOutcome {
  return {
    request: {
      uid: `uid-${n}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      subResource: undefined,
      operation: 'CREATE',
      namespace: 'team-a',
      name: `app-${n}`,
      dryRun: false,
      object: {},
      oldObject: undefined,
    },
    cluster: undefined,
    response: { uid: `uid-${n}`, allowed: decision.allowed },
    images: [
      {
        site: {
          pointer: '/spec/containers/0/image',
          field: 'spec.containers[0].image',
          image: decision.image,
          problem: undefined,
          unchanged: false,
        },
        decision,
      },
    ],
  } as unknown as AdmissionOutcome;
}

function signingReport(n: number): SigningReport {
  return {
    image: `registry.example/team-a/app:v${n}@${digestOf(n)}`,
    registry: 'registry.example',
    repository: 'team-a/app',
    digest: digestOf(n),
    tag: `v${n}`,
    skipped: undefined,
    outcomes: [
      {
        rule: 'team-a',
        witness: 'release',
        algorithm: 'ecdsa-p256-sha256',
        signatureType: 'simple',
        digest: digestOf(n),
        status: 'signed',
        signatureRef: `registry.example/team-a/app:sha256-${digestOf(n).slice(7)}.sig`,
        keyId: `sha256:${'a'.repeat(64)}`,
      },
      {
        rule: 'team-b',
        witness: 'release',
        algorithm: 'ecdsa-p256-sha256',
        signatureType: 'simple',
        digest: digestOf(n),
        status: 'failed',
        signatureRef: `registry.example/team-a/app:sha256-${digestOf(n).slice(7)}.sig`,
        keyId: undefined,
        error: 'boom',
      },
    ],
    durationMs: 1,
  };
}

const images = (decisions: readonly DecisionRecord[]): string[] =>
  decisions.map((d) => d.images[0]?.image ?? '');

let store: MemoryLedger;
let logger: ReturnType<typeof capturingLogger>;
let failures: { dropped: number; error: unknown }[];
const recorders: LedgerRecorder[] = [];

function recorder(options: Partial<LedgerRecorderOptions> = {}): LedgerRecorder {
  const r = new LedgerRecorder({
    ledger: store,
    logger,
    recordedBy: 'serve',
    flushIntervalMs: 0,
    onFailure: (f) => failures.push(f),
    ...options,
  });
  recorders.push(r);
  return r;
}

beforeEach(() => {
  store = new MemoryLedger();
  logger = capturingLogger();
  failures = [];
});
afterEach(async () => {
  store.failing = false;
  for (const r of recorders.splice(0)) await r.close();
});

const until = async (condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
};

describe('LedgerRecorder', () => {
  describe('when a hook is called', () => {
    it('only queues: nothing is built or written until the flush', async () => {
      const r = recorder();
      r.verification(verifyDecision(1));
      r.admission(admission(2));
      r.signing(signingReport(3), 'event-3');
      expect(r.pending).toBe(3);
      expect(store.attempts).toEqual([]);

      await r.flush();
      expect(r.pending).toBe(0);
      expect(store.writes).toHaveLength(1);
      const [batch] = store.writes as [LedgerBatch];
      expect(images(batch.decisions)).toEqual([
        'registry.example/team-a/app:v1',
        'registry.example/team-a/app:v2',
      ]);
      expect(batch.decisions.map((d) => d.source)).toEqual(['verify', 'admission']);
      expect(batch.admitted).toEqual([
        expect.objectContaining({
          reference: 'registry.example/team-a/app:v2',
          digest: digestOf(2),
          verdict: 'allow',
        }),
      ]);
      // Only the outcome that left a signature in the registry is a signature record.
      expect(batch.signatures).toEqual([
        expect.objectContaining({
          rule: 'team-a',
          digest: digestOf(3),
          eventId: 'event-3',
          recordedBy: 'serve',
        }),
      ]);
    });

    it('never throws into the caller, even for what cannot be recorded', async () => {
      const r = recorder();
      const poisoned = verifyDecision(1);
      Object.defineProperty(poisoned, 'policies', {
        get() {
          throw new Error('poisoned');
        },
      });
      expect(() => r.verification(poisoned)).not.toThrow();
      expect(() => r.admission(null as unknown as AdmissionOutcome)).not.toThrow();
      r.verification(verifyDecision(2));

      await r.flush();
      expect(images(store.decisionsWritten)).toEqual(['registry.example/team-a/app:v2']);
      expect(logger.lines.filter((l) => l.message === 'ledger record not built')).toHaveLength(2);
    });
  });

  describe('batches', () => {
    it('writes at most maxBatch entries at once, in order', async () => {
      const r = recorder({ maxBatch: 3 });
      for (let n = 1; n <= 7; n++) r.verification(verifyDecision(n));
      await r.flush();
      expect(store.writes.map((w) => w.decisions.length)).toEqual([3, 3, 1]);
      expect(images(store.decisionsWritten)).toEqual(
        [1, 2, 3, 4, 5, 6, 7].map((n) => `registry.example/team-a/app:v${n}`),
      );
    });

    it('writes by itself once maxBatch entries wait', async () => {
      const r = recorder({ maxBatch: 2 });
      r.verification(verifyDecision(1));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(store.attempts).toEqual([]);
      r.verification(verifyDecision(2));
      await until(() => store.writes.length === 1);
    });

    it('writes by itself flushIntervalMs after the first entry', async () => {
      const r = recorder({ flushIntervalMs: 10 });
      r.verification(verifyDecision(1));
      await until(() => store.writes.length === 1);
      expect(r.pending).toBe(0);
    });

    it('writes an admitted placement again only when its refresh is due or its verdict changed', async () => {
      let now = 1_000_000;
      const r = recorder({ clock: () => now, admittedRefreshMs: 60_000 });
      r.admission(admission(1));
      await r.flush();
      now += 1000;
      r.admission(admission(1));
      await r.flush();
      now += 1000;
      r.admission(admission(1, verifyDecision(1, { verdict: 'warn', warnings: ['audit'] })));
      await r.flush();
      now += 60_000;
      r.admission(admission(1, verifyDecision(1, { verdict: 'warn', warnings: ['audit'] })));
      await r.flush();
      expect(store.writes.map((w) => w.admitted.map((a) => a.verdict))).toEqual([
        ['allow'],
        [],
        ['warn'],
        ['warn'],
      ]);
      expect(store.decisionsWritten).toHaveLength(4);
    });
  });

  describe('when the store fails', () => {
    it('keeps the records, reports the failure, and writes the same records at the next flush', async () => {
      const r = recorder();
      store.failing = true;
      r.verification(verifyDecision(1));
      r.admission(admission(2));
      await expect(r.flush()).toThrowWithCode(LedgerError, 'LEDGER_WRITE_FAILED');
      expect(r.pending).toBe(2);
      expect(failures).toEqual([{ dropped: 0, error: expect.any(LedgerError) }]);
      const failedIds = store.attempts[0]?.decisions.map((d) => d.id);

      r.verification(verifyDecision(3));
      store.failing = false;
      await r.flush();
      expect(r.pending).toBe(0);
      // The same decision ids: a write that partly landed is not doubled by its retry.
      expect(store.decisionsWritten.map((d) => d.id).slice(0, 2)).toEqual(failedIds);
      expect(images(store.decisionsWritten)).toEqual([
        'registry.example/team-a/app:v1',
        'registry.example/team-a/app:v2',
        'registry.example/team-a/app:v3',
      ]);
      expect(store.writes[0]?.admitted).toHaveLength(1);
    });

    it('tries again by itself an interval later', async () => {
      const r = recorder({ flushIntervalMs: 10 });
      store.failing = true;
      r.verification(verifyDecision(1));
      await until(() => store.attempts.length >= 1);
      store.failing = false;
      await until(() => store.writes.length === 1);
      expect(r.pending).toBe(0);
    });

    it('drops the oldest entries beyond maxPending and reports how many', async () => {
      const r = recorder({ maxBatch: 2, maxPending: 5 });
      store.failing = true;
      for (let n = 1; n <= 4; n++) r.verification(verifyDecision(n));
      await expect(r.flush()).rejects.toThrow();
      for (let n = 5; n <= 8; n++) r.verification(verifyDecision(n));
      expect(r.pending).toBe(5);
      expect(failures.filter((f) => f.dropped > 0).reduce((sum, f) => sum + f.dropped, 0)).toBe(3);
      // One line per failing spell, not one per entry dropped.
      expect(logger.lines.filter((l) => l.message.startsWith('ledger records dropped'))).toHaveLength(1);

      store.failing = false;
      await r.flush();
      expect(images(store.decisionsWritten)).toEqual(
        [4, 5, 6, 7, 8].map((n) => `registry.example/team-a/app:v${n}`),
      );
    });

    it('counts a failed batch entry by entry, however many records each held', async () => {
      const r = recorder({ maxBatch: 3, maxPending: 3 });
      store.failing = true;
      r.signing(signingReport(1));
      r.verification(verifyDecision(2));
      r.verification(verifyDecision(3));
      await expect(r.flush()).rejects.toThrow();
      expect(r.pending).toBe(3);
      r.verification(verifyDecision(4));
      expect(r.pending).toBe(3);
      expect(failures.filter((f) => f.dropped > 0)).toEqual([{ dropped: 1, error: undefined }]);
      store.failing = false;
      await r.flush();
      expect(store.writes.flatMap((w) => w.signatures)).toEqual([]);
      expect(images(store.decisionsWritten)).toEqual(
        [2, 3, 4].map((n) => `registry.example/team-a/app:v${n}`),
      );
    });
  });

  describe('close()', () => {
    it('writes what is queued', async () => {
      const r = recorder({ flushIntervalMs: 60_000 });
      r.verification(verifyDecision(1));
      r.signing(signingReport(2));
      await r.close();
      expect(store.writes).toHaveLength(1);
      expect(r.pending).toBe(0);
    });

    it('resolves even when the store fails, logging it', async () => {
      const r = recorder();
      store.failing = true;
      r.verification(verifyDecision(1));
      await expect(r.close()).resolves.toBeUndefined();
      expect(
        logger.lines.some((l) => l.level === 'error' && l.message.startsWith('ledger write failed')),
      ).toBe(true);
    });
  });

  describe('prune', () => {
    it('runs after a write at most every pruneEveryMs', async () => {
      let now = 0;
      const r = recorder({ clock: () => now, pruneEveryMs: 1000 });
      r.verification(verifyDecision(1));
      await r.flush();
      expect(store.prunes).toEqual([]);
      now = 1500;
      r.verification(verifyDecision(2));
      await r.flush();
      now = 2000;
      r.verification(verifyDecision(3));
      await r.flush();
      expect(store.prunes).toEqual([1500]);
    });
  });
});
