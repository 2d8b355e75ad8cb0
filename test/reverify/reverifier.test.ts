/**
 * One re-verification round over the ledger's admitted images (the real SQLite ledger), with a
 * verifier that answers what the test says the registry now holds: what becomes a finding and
 * what does not (an outage, an image that only ever warned), a moved tag, a finding resolved, an
 * announcement that failed tried again at the next round.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../lib/core/logger';
import { Journal } from '../../lib/journal';
import { SqliteLedger } from '../../lib/ledger/sqlite';
import type { Finding } from '../../lib/ledger/types';
import { Reverifier, findingId, type FindingSink, type RoundInput } from '../../lib/reverify/reverifier';
import type { ImageDecision } from '../../lib/verification/decision';
import { reason, type ReasonData } from '../../lib/verification/reasons';
import { admitted, digestOf } from '../ledger/behaviour';

let dir: string;
let journal: Journal;
let ledger: SqliteLedger;
let now: number;
let answers: Map<string, ImageDecision>;
let announced: Finding[][];
let sinkFails: boolean;
let counted: string[];

const NOW = Date.parse('2026-11-20T12:00:00Z');
const WEB = admitted({
  reference: 'registry.example/team-a/web:v1',
  digest: digestOf(1),
  lastAdmittedAt: NOW - 1000,
});
const API = admitted({
  reference: 'registry.example/team-a/api:v1',
  digest: digestOf(2),
  lastAdmittedAt: NOW - 1000,
});

function decision(
  ref: string,
  digest: string,
  why?: ReasonData,
  verdict: ImageDecision['verdict'] = 'deny',
): ImageDecision {
  const r = why === undefined ? undefined : reason(why);
  const effect = r === undefined ? 'pass' : verdict === 'warn' ? 'warn' : 'deny';
  return {
    image: ref,
    reference: ref,
    digest,
    namespace: 'team-a',
    cluster: undefined,
    allowed: r === undefined || verdict !== 'deny',
    verdict: r === undefined ? 'allow' : verdict,
    reason: r,
    message: r?.message ?? 'allowed',
    policies: [
      {
        policy: 'prod',
        mode: 'enforce',
        failurePolicy: 'deny',
        verified: r === undefined,
        effect,
        reason: r,
        attestors: [],
        cached: false,
      },
    ],
    warnings: [],
    mutatedImage: undefined,
  };
}

const trusted = (image: typeof WEB): ImageDecision => decision(image.reference, image.digest);
const noSignatures = (image: typeof WEB): ImageDecision =>
  decision(image.reference, image.digest, { code: 'NO_SIGNATURES', signatureRef: 'x.sig', notes: [] });

function input(): RoundInput {
  return {
    verifier: {
      verifyWithin: (image: string) => {
        const answer = answers.get(image);
        return answer === undefined
          ? Promise.reject(new Error(`unexpected ${image}`))
          : Promise.resolve(answer);
      },
    },
    revocations: [],
    settings: { windowDays: 1, concurrency: 2 },
  };
}

function reverifier(): Reverifier {
  const sink: FindingSink = {
    announce: (findings) => {
      if (sinkFails) return Promise.reject(new Error('webhook down'));
      announced.push([...findings]);
      return Promise.resolve();
    },
  };
  return new Reverifier({
    ledger,
    logger: silentLogger,
    sink,
    clock: () => now,
    telemetry: {
      reverification: (outcome) => counted.push(outcome),
      imageTrustLost: (code) => counted.push(`lost:${code}`),
    },
  });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'signet-reverifier-'));
  journal = Journal.open(join(dir, 'journal.db'));
  ledger = SqliteLedger.open(journal, { retentionDays: 30 });
  await ledger.write({ signatures: [], decisions: [], admitted: [WEB, API] });
  now = NOW;
  answers = new Map([
    [WEB.reference, trusted(WEB)],
    [API.reference, trusted(API)],
  ]);
  announced = [];
  sinkFails = false;
  counted = [];
});
afterEach(async () => {
  await ledger.close();
  journal.close();
  await rm(dir, { recursive: true, force: true });
});

describe('Reverifier', () => {
  describe('when every admitted image is still trusted', () => {
    it('opens nothing', async () => {
      const summary = await reverifier().round(input());
      expect(summary).toMatchObject({ checked: 2, trusted: 2, opened: [], stillLost: 0, resolved: 0 });
      expect(await ledger.findings({ includeResolved: true })).toEqual([]);
      expect(counted).toEqual(['trusted', 'trusted']);
    });
  });

  describe('when an image is no longer trusted', () => {
    it('opens one finding, announces it once, and resolves it when the image is trusted again', async () => {
      answers.set(WEB.reference, noSignatures(WEB));
      const first = await reverifier().round(input());
      expect(first.opened).toEqual([expect.objectContaining({ id: findingId(WEB), code: 'NO_SIGNATURES' })]);
      expect(counted).toContain('lost:NO_SIGNATURES');
      expect(announced).toEqual([[expect.objectContaining({ id: findingId(WEB), announcedAt: NOW })]]);

      now += 60_000;
      const second = await reverifier().round(input());
      expect(second).toMatchObject({ opened: [], stillLost: 1 });
      expect(announced).toHaveLength(1);
      expect(await ledger.findings()).toEqual([
        expect.objectContaining({ firstFoundAt: NOW, lastFoundAt: NOW + 60_000, announcedAt: NOW }),
      ]);

      answers.set(WEB.reference, trusted(WEB));
      now += 60_000;
      expect(await reverifier().round(input())).toMatchObject({ resolved: 1 });
      expect(await ledger.findings()).toEqual([]);
      expect(await ledger.findings({ includeResolved: true })).toEqual([
        expect.objectContaining({ id: findingId(WEB), resolvedAt: NOW + 120_000 }),
      ]);
    });

    it('announces at the next round what could not be announced', async () => {
      answers.set(WEB.reference, noSignatures(WEB));
      sinkFails = true;
      await reverifier().round(input());
      expect((await ledger.findings())[0]?.announcedAt).toBeUndefined();
      sinkFails = false;
      now += 1000;
      await reverifier().round(input());
      expect(announced).toEqual([[expect.objectContaining({ id: findingId(WEB), firstFoundAt: NOW })]]);
      expect((await ledger.findings())[0]?.announcedAt).toBe(NOW + 1000);
    });
  });

  describe('when the tag now names another digest', () => {
    it('is a TAG_MOVED finding: the admitted digest may still run', async () => {
      answers.set(WEB.reference, decision(WEB.reference, digestOf(9)));
      const summary = await reverifier().round(input());
      expect(summary.opened).toEqual([expect.objectContaining({ code: 'TAG_MOVED', digest: WEB.digest })]);
      expect(summary.opened[0]?.message).toContain(digestOf(9));
    });
  });

  describe('when the round cannot tell', () => {
    it('opens nothing for an outage, a deadline or a verifier that throws', async () => {
      answers.set(
        WEB.reference,
        decision(WEB.reference, WEB.digest, {
          code: 'REGISTRY_UNREACHABLE',
          registry: 'registry.example',
          detail: 'ECONNREFUSED',
        }),
      );
      answers.set(
        API.reference,
        decision(API.reference, API.digest, { code: 'DEADLINE_EXCEEDED', detail: 'slow' }),
      );
      expect(await reverifier().round(input())).toMatchObject({ unverifiable: 2, opened: [] });
      answers.delete(WEB.reference);
      expect(await reverifier().round(input())).toMatchObject({ unverifiable: 2, opened: [] });
      expect(await ledger.findings()).toEqual([]);
    });

    it('keeps an open finding open, neither resolved nor found again', async () => {
      answers.set(WEB.reference, noSignatures(WEB));
      await reverifier().round(input());
      answers.set(
        WEB.reference,
        decision(WEB.reference, WEB.digest, {
          code: 'REGISTRY_UNREACHABLE',
          registry: 'registry.example',
          detail: 'down',
        }),
      );
      now += 1000;
      await reverifier().round(input());
      expect(await ledger.findings()).toEqual([
        expect.objectContaining({ lastFoundAt: NOW, firstFoundAt: NOW }),
      ]);
    });
  });

  describe('when an image admitted with warnings still only warns', () => {
    it('is no finding: it never was trusted', async () => {
      await ledger.write({
        signatures: [],
        decisions: [],
        admitted: [{ ...WEB, verdict: 'warn', lastAdmittedAt: NOW }],
      });
      answers.set(
        WEB.reference,
        decision(WEB.reference, WEB.digest, { code: 'NO_SIGNATURES', signatureRef: 'x', notes: [] }, 'warn'),
      );
      expect(await reverifier().round(input())).toMatchObject({ trusted: 2, opened: [] });
    });
  });

  describe('when an image left the window', () => {
    it('is not checked', async () => {
      await ledger.write({
        signatures: [],
        decisions: [],
        admitted: [{ ...API, namespace: 'old', lastAdmittedAt: NOW - 2 * 86_400_000 }],
      });
      expect((await reverifier().round(input())).checked).toBe(2);
    });
  });
});
