/**
 * A burst of 60 pushes signed by KMS witnesses (RSA PKCS#1 v1.5, RSA-PSS and ECDSA P-256) while
 * KMS throttles 30% of Sign calls. Signet reaches the local KMS endpoint through the real AWS SDK
 * client (`awskms://127.0.0.1:<port>/<key id>`, SigV4 with test credentials) and keeps the SDK's
 * own retry strategy; a Sign that stays throttled fails its rule for this attempt, and the journal
 * attempts the push again later (the notification was accepted at its first delivery).
 *
 * Every (digest, witness) ends with exactly one signature, checked with plain fetch and
 * node:crypto against the public keys the endpoint created; and KMS signed each exactly once: a
 * journal retry signs only what is still missing.
 *
 * A Sign throttled at every SDK attempt fails its signing attempt, and the journal attempts the push
 * again. A Sign that fails for good (access denied) dead-letters its push, keeping the signatures the
 * other rules wrote, and `signet replay --local` re-drives it into the running service.
 */
import { replayLocal } from '../../cli/journal-commands';
import { silentLogger } from '../../lib/core/logger';
import { DEFAULT_KMS_MAX_ATTEMPTS } from '../../lib/keys/kms-key';
import { LOCAL_AWS_ENV, setEnv } from '../support/aws-endpoint';
import { startKmsEndpoint, type KmsEndpoint, type KmsKeySpec } from '../support/kms-endpoint';
import { checkSignatures, pushImageOverHttp, type TrustedKey } from '../support/oci-http';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  auditSignatures,
  configYaml,
  countOutcomes,
  deliverUntilAccepted,
  failureCodes,
  inPool,
  pushEvent,
  pushImages,
  reportFigures,
  seeded,
  shuffled,
  startHarness,
  waitFor,
  type Attempt,
  type Delivery,
  type Harness,
  type Pushed,
  type SigningWitness,
} from './harness';

jest.setTimeout(120_000);

const NAMESPACE = 'kms';
const PUSHES = 60;
const THROTTLE_RATE = 0.3;
const MAX_DELIVERIES = 10;
/** The journal's attempts at one push (the product default, which the harness keeps). */
const MAX_ATTEMPTS = 8;

let restoreEnv: (() => void) | undefined;

/** The KMS witnesses: a key each, and the rule that signs with it. */
const KMS_WITNESSES: readonly {
  witness: string;
  spec: KmsKeySpec;
  algorithm: TrustedKey['algorithm'];
  signatureType: 'default' | 'simple';
}[] = [
  { witness: 'kms-rsa', spec: 'RSA_2048', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', signatureType: 'default' },
  { witness: 'kms-pss', spec: 'RSA_2048', algorithm: 'RSASSA_PSS_SHA_256', signatureType: 'simple' },
  { witness: 'kms-ec', spec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256', signatureType: 'simple' },
];

/** A fourth witness whose rule alone covers SOLO_NAMESPACE: a push there asks KMS for one Sign. */
const SOLO = {
  witness: 'kms-solo',
  spec: 'ECC_NIST_P256',
  algorithm: 'ECDSA_SHA_256',
  signatureType: 'simple',
} as const;
const SOLO_NAMESPACE = `${NAMESPACE}-solo`;

let registry: TestRegistry;
let kms: KmsEndpoint;
let signet: Harness;
let trusted: TrustedKey[];
let soloTrusted: TrustedKey;

beforeAll(async () => {
  restoreEnv = setEnv(LOCAL_AWS_ENV);
  [registry, kms] = await Promise.all([startTestRegistry(), startKmsEndpoint({ seed: 30 })]);
  const kmsHost = new URL(kms.url).host;
  const witnesses: SigningWitness[] = [];
  trusted = [];
  for (const w of KMS_WITNESSES) {
    const key = kms.createKey(w.spec);
    witnesses.push({ ...w, key: `awskms://${kmsHost}/${key.keyId}` });
    trusted.push({ witness: w.witness, algorithm: w.algorithm, publicKey: key.publicKey });
  }
  const solo = kms.createKey(SOLO.spec);
  witnesses.push({ ...SOLO, key: `awskms://${kmsHost}/${solo.keyId}`, namespace: SOLO_NAMESPACE });
  soloTrusted = { witness: SOLO.witness, algorithm: SOLO.algorithm, publicKey: solo.publicKey };
  signet = await startHarness({ yaml: () => configYaml(registry.host, NAMESPACE, witnesses) });
});

afterAll(async () => {
  await signet?.stop();
  await kms?.close();
  await registry?.stop();
  restoreEnv?.();
});

describe(`when KMS throttles ${THROTTLE_RATE * 100}% of Sign calls during a burst of ${PUSHES} pushes`, () => {
  let pushed: Pushed[];
  /** Per notification, every delivery of it in order. */
  let deliveries: Delivery[][];
  /** Per notification, its journal entry's signing attempts in order. */
  let attempts: Attempt[][];

  beforeAll(async () => {
    pushed = await pushImages(
      registry.url,
      Array.from({ length: PUSHES }, (_, i) => ({
        repository: `${NAMESPACE}/app-${i % 6}`,
        tag: `v${i}`,
        seed: `kms-${i}`,
      })),
    );
    kms.throttleRate('Sign', THROTTLE_RATE);
    try {
      deliveries = [];
      await inPool(shuffled(pushed, seeded(60)), 16, async (image) => {
        const event = pushEvent(registry.host, image.repository, image.digest, image.tag);
        deliveries.push(await deliverUntilAccepted(signet.url, [event], MAX_DELIVERIES));
      });
      await signet.settle();
    } finally {
      kms.throttleRate('Sign', 0);
    }
    attempts = deliveries.map((d) => signet.attemptsOf(d[d.length - 1]?.accepted[0]?.id ?? ''));
    reportFigures('kms throttling', {
      signCalls: kms.count('Sign'),
      throttled: kms.throttled('Sign'),
      signatures: PUSHES * KMS_WITNESSES.length,
      deliveries: deliveries.flat().length,
      attempts: attempts.flat().length,
      notifications: PUSHES,
    });
  });

  const reports = () => attempts.flat().map((a) => a.report);

  it('was throttled', () => {
    expect(kms.throttled('Sign')).toBeGreaterThan(0);
  });

  it("accepts every notification at its first delivery: throttling is the journal's concern", () => {
    expect(deliveries.map((d) => d.map((x) => x.status))).toEqual(Array(PUSHES).fill([202]));
  });

  it('fails a rule only for throttling, after the SDK used up its attempts', () => {
    const failures = failureCodes(reports());
    expect([...new Set(failures)].filter((c) => c !== 'KMS_THROTTLED')).toEqual([]);
    expect(failures.length * DEFAULT_KMS_MAX_ATTEMPTS).toBeLessThanOrEqual(kms.throttled('Sign'));
  });

  it('retries in the journal exactly the attempts that failed, within its attempts, and signs every push', () => {
    const failed = attempts.flat().filter((a) => a.report.outcomes.some((o) => o.status === 'failed'));
    expect(attempts.flat()).toHaveLength(PUSHES + failed.length);
    expect(Math.max(...attempts.map((a) => a.length))).toBeLessThanOrEqual(MAX_ATTEMPTS);
    const finals = attempts.map((a) => a[a.length - 1]?.report);
    expect(finals.filter((r) => r === undefined || r.outcomes.some((o) => o.status === 'failed'))).toEqual(
      [],
    );
    expect(signet.running.journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 0 });
  });

  it('leaves exactly one valid signature per (digest, witness), verified with the KMS public keys', async () => {
    expect(await auditSignatures(registry.url, pushed, trusted)).toEqual([]);
  });

  it('had KMS sign each (digest, witness) exactly once, however many attempts it took', () => {
    expect(kms.count('Sign') - kms.throttled('Sign')).toBe(PUSHES * KMS_WITNESSES.length);
    expect(countOutcomes(reports()).signed).toBe(PUSHES * KMS_WITNESSES.length);
    // A signature is found in place only by a journal retry, after the attempt that wrote it.
    const firstAttempts = attempts.flat().filter((a) => a.entry.attempts === 0);
    expect(firstAttempts).toHaveLength(PUSHES);
    expect(countOutcomes(firstAttempts.map((a) => a.report))['already-signed']).toBe(0);
  });

  it('never retried a registry request (only KMS was throttled)', () => {
    expect(signet.retries).toEqual([]);
  });
});

describe('when KMS throttles a Sign at every attempt the SDK makes', () => {
  it('fails that signing attempt as throttled, and the journal signs the push at a later attempt', async () => {
    const repository = `${SOLO_NAMESPACE}/app`;
    const digest = await pushImageOverHttp(registry.url, repository, 'v1', 'solo');
    const before = { calls: kms.count('Sign'), throttled: kms.throttled('Sign') };
    kms.failNext('Sign', DEFAULT_KMS_MAX_ATTEMPTS, 'ThrottlingException');
    const deliveries = await deliverUntilAccepted(
      signet.url,
      [pushEvent(registry.host, repository, digest, 'v1')],
      MAX_DELIVERIES,
    );
    expect(deliveries.map((d) => d.status)).toEqual([202]);
    await signet.settle();
    const attempts = signet.attemptsOf(deliveries[0]?.accepted[0]?.id ?? '');
    // However the SDK spread its attempts (its retry quota may cut them short), every journal
    // attempt but the last failed as throttled, and the last signed.
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.map((a) => a.entry.attempts)).toEqual(attempts.map((_, i) => i));
    expect(failureCodes(attempts.slice(0, -1).map((a) => a.report))).toEqual(
      Array(attempts.length - 1).fill('KMS_THROTTLED'),
    );
    expect(countOutcomes([(attempts[attempts.length - 1] as Attempt).report])).toEqual({
      signed: 1,
      'already-signed': 0,
      failed: 0,
    });
    expect(kms.throttled('Sign') - before.throttled).toBe(DEFAULT_KMS_MAX_ATTEMPTS);
    expect(kms.count('Sign') - before.calls).toBe(DEFAULT_KMS_MAX_ATTEMPTS + 1);
    expect(await auditSignatures(registry.url, [{ repository, tag: 'v1', digest }], [soloTrusted])).toEqual(
      [],
    );
  });
});

describe('when one Sign of a push fails for good, and the others succeed', () => {
  const repository = `${NAMESPACE}/partial`;
  let digest: string;
  let id: string;
  let signCalls: number;

  beforeAll(async () => {
    digest = await pushImageOverHttp(registry.url, repository, 'v1', 'partial');
    signCalls = kms.count('Sign');
    // Not retried by the SDK, unlike throttling, and permanent for the journal: access denied.
    kms.failNext('Sign', 1, 'AccessDeniedException');
    const deliveries = await deliverUntilAccepted(
      signet.url,
      [pushEvent(registry.host, repository, digest, 'v1')],
      MAX_DELIVERIES,
    );
    // Replaces "answers 503, and the redelivery signs only the missing witness": the registry is
    // done at the first delivery, and an operator re-drives the dead letter.
    expect(deliveries.map((d) => d.status)).toEqual([202]);
    id = deliveries[0]?.accepted[0]?.id ?? '';
    await signet.settle();
  });

  it('dead-letters the push after one attempt, keeping the signatures of the other rules', async () => {
    const attempts = signet.attemptsOf(id);
    expect(attempts).toHaveLength(1);
    expect(countOutcomes(attempts.map((a) => a.report))).toEqual({
      signed: KMS_WITNESSES.length - 1,
      'already-signed': 0,
      failed: 1,
    });
    expect(signet.running.journal.deadLetters()).toEqual([
      expect.objectContaining({ id, code: 'KMS_ACCESS_DENIED', permanent: true, attempts: 1 }),
    ]);
    const failed = attempts[0]?.report.outcomes.find((o) => o.status === 'failed')?.witness;
    const check = await checkSignatures(registry.url, repository, digest, trusted);
    expect(check.problems).toEqual([]);
    expect(
      Object.fromEntries(KMS_WITNESSES.map((w) => [w.witness, check.byWitness.get(w.witness) ?? 0])),
    ).toEqual(Object.fromEntries(KMS_WITNESSES.map((w) => [w.witness, w.witness === failed ? 0 : 1])));
  });

  it('signs only the missing witness when `signet replay --local` requeues it into the running service', async () => {
    const summary = await replayLocal(signet.config, [id], silentLogger);
    expect(summary).toEqual({ mode: 'requeued', requeued: [id], signed: [], failed: [] });
    // The worker finds entries another process requeued at its next look at the journal.
    await waitFor('the requeued push to be signed', () => signet.attemptsOf(id).length === 2, {
      describe: () => JSON.stringify(signet.running.journal.depth()),
    });
    await signet.settle();
    const replayed = signet.attemptsOf(id)[1] as Attempt;
    expect(replayed.entry.attempts).toBe(0);
    expect(countOutcomes([replayed.report])).toEqual({
      signed: 1,
      'already-signed': KMS_WITNESSES.length - 1,
      failed: 0,
    });
    expect(signet.running.journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 0 });
    expect(kms.count('Sign') - signCalls).toBe(KMS_WITNESSES.length + 1);
    expect(await auditSignatures(registry.url, [{ repository, tag: 'v1', digest }], trusted)).toEqual([]);
  });
});
