/**
 * Durable signing (lib/signing/durable.ts): what one signing attempt means for its journal entry
 * (`classifyReport`: done, retry later, or dead-letter now), and the journal-backed intake and
 * worker end to end over in-memory registries and a real SQLite journal in a temp dir.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import type { PushEvent } from '../../lib/events/types';
import { Journal } from '../../lib/journal';
import { KeyRing } from '../../lib/keys/keyring';
import { DurableSigning, classifyReport, isTransientFailure } from '../../lib/signing/durable';
import { SigningPipeline, type RuleOutcome, type SigningReport } from '../../lib/signing/pipeline';
import { MemoryRegistries } from '../verification/helpers';

const DIGEST = `sha256:${'1'.repeat(64)}`;

function outcome(status: RuleOutcome['status'], errorCode?: string, rule = 'team-a'): RuleOutcome {
  return {
    rule,
    witness: `${rule}-key`,
    algorithm: 'ECDSA_SHA_256',
    signatureType: 'simple',
    digest: DIGEST,
    status,
    signatureRef: `registry.example.com/team-a/app:${DIGEST.replace(':', '-')}.sig`,
    keyId: undefined,
    ...(status === 'failed'
      ? { error: `${errorCode ?? 'no code'} happened`, ...(errorCode !== undefined ? { errorCode } : {}) }
      : {}),
  };
}

function report(outcomes: readonly RuleOutcome[], skipped?: string): SigningReport {
  return {
    image: `registry.example.com/team-a/app:v1@${DIGEST}`,
    registry: 'registry.example.com',
    repository: 'team-a/app',
    digest: DIGEST,
    tag: 'v1',
    skipped,
    outcomes,
    durationMs: 1,
  };
}

/** Failure codes another attempt may cure. */
const TRANSIENT = [
  'RATE_LIMITED',
  'UNAVAILABLE',
  'UNREACHABLE',
  'BLOB_UNKNOWN',
  'ABORTED',
  'KMS_THROTTLED',
  'KMS_UNAVAILABLE',
  'KMS_SIGN_FAILED',
  'CONFLICT_RETRIES_EXHAUSTED',
  'INTERNAL',
];

/** Failure codes no retry can cure: someone has to act (keys, config, credentials, content). */
const PERMANENT = [
  'KEY_INVALID',
  'KEY_UNREADABLE',
  'ALGORITHM_MISMATCH',
  'WITNESS_UNKNOWN',
  'RULE_UNKNOWN',
  'CONFIG_INVALID',
  'KMS_DISABLED',
  'KMS_INVALID_STATE',
  'KMS_NOT_FOUND',
  'KMS_ACCESS_DENIED',
  'KEY_UNAVAILABLE',
  'SIGN_FAILED',
  'UNAUTHORIZED',
  'DENIED',
  'NOT_FOUND',
  'NOT_ALLOWED',
  'PROTOCOL',
  'DIGEST_MISMATCH',
  'TOO_LARGE',
  'SIGNATURE_MANIFEST_INVALID',
];

describe('classifyReport', () => {
  describe('when every rule signed or had signed already', () => {
    it('is done', () => {
      expect(
        classifyReport(report([outcome('signed'), outcome('already-signed', undefined, 'b')]), 0),
      ).toEqual({
        $case: 'done',
      });
    });
  });

  describe('when the push was skipped for a reason other than a missing manifest', () => {
    it.each([
      'signature artifact manifest',
      'no signing rule covers this repository',
      'registry not configured',
    ])('is done (%s)', (skipped) => {
      expect(classifyReport(report([], skipped), 0)).toEqual({ $case: 'done' });
    });
  });

  describe.each(TRANSIENT)('when a rule failed with the transient code %s', (code) => {
    it('retries, with that code and the rule named in the message', () => {
      const result = classifyReport(report([outcome('failed', code)]), 0);
      expect(result).toEqual({ $case: 'retry', code, message: expect.stringContaining('rule "team-a"') });
      expect(isTransientFailure(code)).toBe(true);
    });
  });

  describe('when a failure carries no code', () => {
    it('counts as INTERNAL, which is retried', () => {
      expect(classifyReport(report([outcome('failed')]), 0)).toMatchObject({
        $case: 'retry',
        code: 'INTERNAL',
      });
    });
  });

  describe.each(PERMANENT)('when a rule failed with the permanent code %s', (code) => {
    it('dead-letters at once, with that code', () => {
      const result = classifyReport(report([outcome('failed', code)]), 0);
      expect(result).toEqual({ $case: 'failed', code, message: expect.stringContaining(`${code}:`) });
      expect(isTransientFailure(code)).toBe(false);
    });
  });

  describe('when the failures are mixed', () => {
    it('retries when any failure is transient, naming the transient code and every failure', () => {
      const result = classifyReport(
        report([
          outcome('failed', 'KEY_UNREADABLE', 'a'),
          outcome('signed', undefined, 'b'),
          outcome('failed', 'UNAVAILABLE', 'c'),
        ]),
        0,
      );
      expect(result).toMatchObject({ $case: 'retry', code: 'UNAVAILABLE' });
      const message = (result as { message: string }).message;
      expect(message).toContain('rule "a" (witness "a-key"): KEY_UNREADABLE');
      expect(message).toContain('rule "c" (witness "c-key"): UNAVAILABLE');
      expect(message).not.toContain('rule "b"');
    });

    it('dead-letters with the first code when every failure is permanent, even if another rule signed', () => {
      const result = classifyReport(
        report([
          outcome('signed', undefined, 'a'),
          outcome('failed', 'DENIED', 'b'),
          outcome('failed', 'KMS_DISABLED', 'c'),
        ]),
        0,
      );
      expect(result).toMatchObject({ $case: 'failed', code: 'DENIED' });
    });
  });

  describe('when the registry does not hold the manifest', () => {
    const missing = report([], 'manifest no longer exists');

    it('retries the first and second attempt, then dead-letters as MANIFEST_UNKNOWN', () => {
      expect(classifyReport(missing, 0)).toMatchObject({ $case: 'retry', code: 'MANIFEST_UNKNOWN' });
      expect(classifyReport(missing, 1)).toMatchObject({ $case: 'retry', code: 'MANIFEST_UNKNOWN' });
      expect(classifyReport(missing, 2)).toMatchObject({ $case: 'failed', code: 'MANIFEST_UNKNOWN' });
      expect(classifyReport(missing, 5)).toMatchObject({ $case: 'failed', code: 'MANIFEST_UNKNOWN' });
    });

    it('names the image', () => {
      expect(classifyReport(missing, 2)).toMatchObject({ message: expect.stringContaining(missing.image) });
    });
  });
});

describe('DurableSigning over a real journal and in-memory registries', () => {
  const HOST = 'registry.example.com';
  let dir: string;
  let journal: Journal;
  let registries: MemoryRegistries;
  let signing: DurableSigning;
  const reports: SigningReport[] = [];

  const push = (repository: string, digest: string, overrides: Partial<PushEvent> = {}): PushEvent => ({
    registry: HOST,
    repository,
    digest,
    tag: 'v1',
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: undefined,
    source: 'distribution',
    id: undefined,
    ...overrides,
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'signet-durable-'));
    await mkdir(join(dir, 'keys'));
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'keys', 'release.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const config = parseConfig(
      `
registries:
  - host: ${HOST}
witnesses:
  - name: release
    key: file://keys/release.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: simple
journal:
  retryBaseSeconds: 0.01
  retryMaxSeconds: 0.02
  maxAttempts: 8
`,
      { baseDir: dir, source: join(dir, 'signet.yaml') },
    );
    registries = new MemoryRegistries();
    registries.add(HOST);
    const pipeline = new SigningPipeline({
      config,
      registries,
      keys: new KeyRing({ witnesses: config.witnesses, baseDir: dir }),
      logger: silentLogger,
    });
    journal = Journal.open(config.journal.path);
    reports.length = 0;
    signing = new DurableSigning({
      pipeline,
      journal,
      settings: config.journal,
      logger: silentLogger,
      onReport: (r) => reports.push(r),
    });
  });

  afterEach(async () => {
    await signing.stop(1000);
    journal.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('journals only signable pushes, each once, before anything is signed', async () => {
    const digest = await registries.client(HOST).pushImage('team-a/app', 'v1');
    const outcomes = await signing.accept([
      push('team-a/app', digest),
      push('team-a/app', digest),
      push('other/app', digest),
      push('team-a/app', digest, { tag: `${digest.replace(':', '-')}.sig` }),
    ]);
    expect(outcomes.map((o) => o.$case)).toEqual(['accepted', 'accepted', 'ignored', 'ignored']);
    const ids = outcomes.map((o) => (o.$case === 'accepted' ? o.id : undefined));
    expect(ids[1]).toBe(ids[0]);
    expect(outcomes[1]).toMatchObject({ duplicate: true });
    // Not started: nothing signed yet, but the push is on disk.
    expect(journal.depth()).toMatchObject({ pending: 1, running: 0 });
    expect(reports).toHaveLength(0);

    signing.start();
    await signing.worker.whenIdle();
    expect(reports.map((r) => r.outcomes.map((o) => o.status))).toEqual([['signed']]);
    expect(journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 0 });
  });

  it('dead-letters a push whose manifest never appears after three attempts, as permanent', async () => {
    signing.start();
    await signing.accept([push('team-a/app', `sha256:${'9'.repeat(64)}`)]);
    const deadline = Date.now() + 10_000;
    while (journal.depth().deadLetters === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const [letter] = journal.deadLetters();
    expect(letter).toMatchObject({ code: 'MANIFEST_UNKNOWN', permanent: true, attempts: 3 });
    expect(reports).toHaveLength(3);
  });
});
