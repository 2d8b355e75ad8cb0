/**
 * A burst of 60 pushes signed by KMS witnesses (RSA PKCS#1 v1.5, RSA-PSS and ECDSA P-256) while
 * KMS throttles 30% of Sign calls. Signet reaches the local KMS endpoint through the real AWS SDK
 * client (`awskms://127.0.0.1:<port>/<key id>`, SigV4 with test credentials) and keeps the SDK's
 * own retry strategy; a Sign that stays throttled fails its rule, the service answers 503 and the
 * notification is delivered again, as the registry does.
 *
 * Every (digest, witness) ends with exactly one signature, checked with plain fetch and
 * node:crypto against the public keys the endpoint created; and KMS signed each exactly once: a
 * redelivery signs only what is still missing.
 */
import { DEFAULT_KMS_MAX_ATTEMPTS } from '../../lib/keys/kms-key';
import { LOCAL_AWS_ENV, setEnv } from '../support/aws-endpoint';
import { startKmsEndpoint, type KmsEndpoint, type KmsKeySpec } from '../support/kms-endpoint';
import { pushImageOverHttp, type TrustedKey } from '../support/oci-http';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  auditSignatures,
  configYaml,
  countOutcomes,
  deliverUntilAccepted,
  inPool,
  isAccepted,
  pushEvent,
  pushImages,
  reportFigures,
  seeded,
  shuffled,
  startHarness,
  type Delivery,
  type Harness,
  type Pushed,
  type SigningWitness,
} from './harness';

jest.setTimeout(60_000);

const NAMESPACE = 'kms';
const PUSHES = 60;
const THROTTLE_RATE = 0.3;
const MAX_DELIVERIES = 10;

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

let registry: TestRegistry;
let kms: KmsEndpoint;
let signet: Harness;
let trusted: TrustedKey[];

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
    } finally {
      kms.throttleRate('Sign', 0);
    }
    reportFigures('kms throttling', {
      signCalls: kms.count('Sign'),
      throttled: kms.throttled('Sign'),
      signatures: PUSHES * KMS_WITNESSES.length,
      deliveries: deliveries.flat().length,
      notifications: PUSHES,
    });
  });

  it('was throttled', () => {
    expect(kms.throttled('Sign')).toBeGreaterThan(0);
  });

  it(`accepts every notification within ${MAX_DELIVERIES} deliveries`, () => {
    expect(deliveries).toHaveLength(PUSHES);
    expect(deliveries.filter((d) => !isAccepted(d[d.length - 1]))).toEqual([]);
  });

  it('fails a rule only for throttling, after the SDK used up its attempts', () => {
    const failures = deliveries
      .flat()
      .flatMap((d) => d.reports.flatMap((r) => r.outcomes.filter((o) => o.status === 'failed')));
    expect([...new Set(failures.map((o) => o.errorCode))].filter((c) => c !== 'KMS_THROTTLED')).toEqual([]);
    expect(failures.length * DEFAULT_KMS_MAX_ATTEMPTS).toBeLessThanOrEqual(kms.throttled('Sign'));
  });

  it('leaves exactly one valid signature per (digest, witness), verified with the KMS public keys', async () => {
    expect(await auditSignatures(registry.url, pushed, trusted)).toEqual([]);
  });

  it('had KMS sign each (digest, witness) exactly once, however many deliveries it took', () => {
    expect(kms.count('Sign') - kms.throttled('Sign')).toBe(PUSHES * KMS_WITNESSES.length);
    const finals = deliveries.map((d) => d[d.length - 1] as Delivery);
    const outcomes = countOutcomes(finals);
    expect(outcomes.failed).toBe(0);
    expect(outcomes.signed + outcomes['already-signed']).toBe(PUSHES * KMS_WITNESSES.length);
  });

  it('never retried a registry request (only KMS was throttled)', () => {
    expect(signet.retries).toEqual([]);
  });
});

describe('when one Sign of a push fails for good, and the others succeed', () => {
  it('answers 503, and the redelivery signs only the missing witness', async () => {
    const repository = `${NAMESPACE}/partial`;
    const digest = await pushImageOverHttp(registry.url, repository, 'v1', 'partial');
    const signCalls = kms.count('Sign');
    // Not retried by the SDK, unlike throttling: the same outcome as a Sign throttled at every attempt.
    kms.failNext('Sign', 1, 'AccessDeniedException');
    const deliveries = await deliverUntilAccepted(
      signet.url,
      [pushEvent(registry.host, repository, digest, 'v1')],
      MAX_DELIVERIES,
    );
    expect(deliveries.map((d) => d.status)).toEqual([503, 200]);
    const [failed, again] = deliveries as [Delivery, Delivery];
    expect(countOutcomes([failed])).toEqual({
      signed: KMS_WITNESSES.length - 1,
      'already-signed': 0,
      failed: 1,
    });
    expect(countOutcomes([again])).toEqual({
      signed: 1,
      'already-signed': KMS_WITNESSES.length - 1,
      failed: 0,
    });
    expect(kms.count('Sign') - signCalls).toBe(KMS_WITNESSES.length + 1);
    expect(await auditSignatures(registry.url, [{ repository, tag: 'v1', digest }], trusted)).toEqual([]);
  });
});
