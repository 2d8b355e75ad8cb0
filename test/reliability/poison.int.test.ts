/**
 * Poison pushes ahead of a batch of good ones: pushes the service accepts but can never sign must
 * not hold up the registry's notification queue (distribution delivers one notification at a time
 * and re-delivers the head of its queue until it is answered 2xx), nor the pushes behind them.
 *
 * A real docker-registry notifies Signet's local service with the events token. Three local-key
 * rules cover `valid/`; a KMS rule covers `poison/`, and its key is disabled once Signet has
 * started (its preflight saw the key enabled), so every Sign of it fails for good with
 * KMS_DISABLED. First a `poison/` image is pushed (the registry delivers its notification), then a
 * push notification for a `valid/` manifest the registry does not hold is delivered (MANIFEST_UNKNOWN:
 * retried twice, in case the registry announced it before serving it, then dead-lettered), then
 * 50 good images are pushed. Every delivery is answered 2xx, the 50 are signed (checked with plain
 * fetch and node:crypto), and both poisons end in the dead letters with their codes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LOCAL_AWS_ENV, setEnv } from '../support/aws-endpoint';
import { startKmsEndpoint, type KmsEndpoint } from '../support/kms-endpoint';
import { checkSignatures, pushImageOverHttp } from '../support/oci-http';
import { freePort } from '../support/ports';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  LOCAL_WITNESSES,
  TEST_EVENTS_TOKEN,
  auditSignatures,
  configYaml,
  countOutcomes,
  deliver,
  localWitnesses,
  pushEvent,
  pushImages,
  startHarness,
  waitFor,
  type Delivery,
  type Harness,
  type Pushed,
} from './harness';

jest.setTimeout(120_000);

const VALID = 50;
/** A digest no image has: the registry does not hold this manifest. */
const GHOST_DIGEST = `sha256:${'0'.repeat(63)}1`;

let restoreEnv: (() => void) | undefined;
let kms: KmsEndpoint;
let registry: TestRegistry;
let signet: Harness;
/** The status of every answer Signet gave to a delivery of the registry, in order. */
const answers: number[] = [];

beforeAll(async () => {
  restoreEnv = setEnv(LOCAL_AWS_ENV);
  kms = await startKmsEndpoint({ seed: 7 });
  const poisonKey = kms.createKey('ECC_NIST_P256');
  // Signet must know the registry's host before the registry starts notifying Signet.
  const registryHost = `127.0.0.1:${await freePort()}`;
  signet = await startHarness({
    yaml: () =>
      configYaml(registryHost, 'valid', [
        ...localWitnesses(),
        {
          witness: 'poison-kms',
          key: `awskms://${new URL(kms.url).host}/${poisonKey.keyId}`,
          algorithm: 'ECDSA_SHA_256',
          signatureType: 'simple',
          namespace: 'poison',
        },
      ]),
  });
  signet.running.server.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/events/distribution') res.on('finish', () => answers.push(res.statusCode));
  });
  registry = await startTestRegistry({
    host: registryHost,
    notifyUrl: `${signet.url}/events/distribution`,
    notifyToken: TEST_EVENTS_TOKEN,
  });
  kms.setKeyState(poisonKey.keyId, 'Disabled');
});

afterAll(async () => {
  await registry?.stop();
  await signet?.stop();
  await kms?.close();
  restoreEnv?.();
});

describe('when poison pushes come before 50 good ones', () => {
  let poison: Pushed;
  let ghost: Delivery;
  let valid: Pushed[];

  beforeAll(async () => {
    const digest = await pushImageOverHttp(registry.url, 'poison/app', 'v1', 'poison');
    poison = { repository: 'poison/app', tag: 'v1', digest };
    ghost = await deliver(signet.url, [pushEvent(registry.host, 'valid/ghost', GHOST_DIGEST, 'v1')]);
    valid = await pushImages(
      registry.url,
      Array.from({ length: VALID }, (_, i) => ({
        repository: `valid/app-${i % 5}`,
        tag: `v${i}`,
        seed: `${i}`,
      })),
    );
    // The registry notifies on its own schedule: wait until the journal has done everything.
    const signed = () =>
      new Set(
        signet
          .reports()
          .filter((r) => r.outcomes.length === LOCAL_WITNESSES.length && countOutcomes([r]).failed === 0)
          .map((r) => r.digest),
      );
    await waitFor(
      'the good pushes to be signed and the poisons dead-lettered',
      () => {
        const depth = signet.running.journal.depth();
        return (
          depth.pending + depth.running === 0 &&
          depth.deadLetters === 2 &&
          valid.every((v) => signed().has(v.digest))
        );
      },
      { describe: () => JSON.stringify({ depth: signet.running.journal.depth(), signed: signed().size }) },
    );
  });

  it('answered every delivery of the registry 2xx: its notification queue was never held up', () => {
    // 202 for the pushes journaled, 200 for what is ignored (the signature manifests Signet writes).
    expect(answers.filter((status) => status === 202).length).toBeGreaterThanOrEqual(VALID + 1);
    expect(answers.filter((status) => status !== 200 && status !== 202)).toEqual([]);
  });

  it('accepted the push of a manifest the registry does not hold like any other', () => {
    expect(ghost.status).toBe(202);
    expect(ghost.accepted).toEqual([expect.objectContaining({ duplicate: false })]);
  });

  it('signed all 50 good pushes, each at its first attempt, exactly once per witness', async () => {
    const attempts = signet.attempts.filter((a) => valid.some((v) => v.digest === a.report.digest));
    expect(attempts.map((a) => a.entry.attempts)).toEqual(Array(VALID).fill(0));
    expect(countOutcomes(attempts.map((a) => a.report))).toEqual({
      signed: VALID * LOCAL_WITNESSES.length,
      'already-signed': 0,
      failed: 0,
    });
    expect(await auditSignatures(registry.url, valid, signet.keys)).toEqual([]);
  });

  it('dead-lettered the push whose key is disabled at its first attempt, and wrote nothing for it', async () => {
    const letter = signet.running.journal.deadLetters().find((l) => l.event.repository === poison.repository);
    expect(letter).toMatchObject({
      event: { digest: poison.digest, tag: 'v1' },
      code: 'KMS_DISABLED',
      permanent: true,
      attempts: 1,
    });
    expect(signet.attemptsOf(letter?.id ?? '')).toHaveLength(1);
    expect((await checkSignatures(registry.url, poison.repository, poison.digest, [])).exists).toBe(false);
  });

  it('dead-lettered the push of a manifest the registry does not hold after 3 attempts', () => {
    const id = ghost.accepted[0]?.id ?? '';
    expect(signet.running.journal.deadLetters({ id })).toEqual([
      expect.objectContaining({
        event: expect.objectContaining({ repository: 'valid/ghost', digest: GHOST_DIGEST }),
        code: 'MANIFEST_UNKNOWN',
        permanent: true,
        attempts: 3,
      }),
    ]);
    expect(signet.attemptsOf(id).map((a) => [a.entry.attempts, a.report.skipped])).toEqual([
      [0, 'manifest no longer exists'],
      [1, 'manifest no longer exists'],
      [2, 'manifest no longer exists'],
    ]);
  });

  it('holds nothing else in the journal', () => {
    expect(signet.running.journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 2 });
  });
});
