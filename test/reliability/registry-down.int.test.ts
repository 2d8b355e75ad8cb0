/**
 * The registry goes down for a while in the middle of a burst of pushes, locally: nothing is
 * lost, because Signet journals every push it accepts and signs it once the registry is back,
 * without the registry delivering anything twice.
 *
 * A real docker-registry notifies Signet's local service (with the events token); Signet and the
 * pushers reach the registry through a fault proxy (so the notifications name the proxy's host,
 * and Signet reads and writes through it). Half the burst is pushed, then the proxy goes down for
 * two seconds: pushes fail and their pusher tries again, as CI does; the registry's notifications
 * keep arriving and Signet answers them 202 (the journal accepts whatever the registry's state);
 * its signing attempts cannot read or write the registry and fail, and the journal attempts them
 * again with backoff until the registry is back. In the end every (digest, witness) has exactly
 * one valid signature, checked independently.
 *
 * What this covers is an outage between Signet and the registry (network, load balancer, the
 * registry's front door). Since Signet answers 2xx at once, the registry's in-memory notification
 * queue is never held up, and a registry process that dies afterwards loses nothing Signet had
 * accepted.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sleep } from '../../lib/core/retry';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy';
import { pushImageOverHttp } from '../support/oci-http';
import { freePort } from '../support/ports';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  TEST_EVENTS_TOKEN,
  auditSignatures,
  failureCodes,
  inPool,
  localConfigYaml,
  startHarness,
  waitFor,
  type Harness,
  type Pushed,
} from './harness';

// The limits only make a slow machine fail with findings instead of a timeout.
jest.setTimeout(60_000);

const PUSHES = 40;
const OUTAGE_MS = 2_000;
/** How long everything may take to settle after the outage; the test polls, it does not wait. */
const SETTLE_DEADLINE_MS = 45_000;
/**
 * Journal attempts enough to outlast the outage whatever the jitter: 40 attempts, each at most
 * 0.5 s after the last (full jitter, so a quarter of a second on average), span about ten seconds.
 */
const JOURNAL = { maxAttempts: 40, retryBaseSeconds: 0.05, retryMaxSeconds: 0.5 };

let registry: TestRegistry;
let proxy: FaultProxy;
let signet: Harness;
/** The status of every answer Signet gave to a notification delivery, in order. */
const answers: number[] = [];

beforeAll(async () => {
  // The proxy must know the registry's address and Signet the proxy's before the registry starts
  // notifying Signet: the registry listens on a port chosen first.
  const registryHost = `127.0.0.1:${await freePort()}`;
  proxy = await startFaultProxy(registryHost);
  signet = await startHarness({ yaml: () => localConfigYaml(proxy.host, 'down', { journal: JOURNAL }) });
  signet.running.server.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/events/distribution') res.on('finish', () => answers.push(res.statusCode));
  });
  registry = await startTestRegistry({
    host: registryHost,
    notifyUrl: `${signet.url}/events/distribution`,
    notifyToken: TEST_EVENTS_TOKEN,
    notifyBackoffMs: 100,
  });
});

afterAll(async () => {
  await registry?.stop();
  await signet?.stop();
  await proxy?.close();
});

/** Pushes through the proxy, trying again while the registry cannot be reached, as CI would. */
async function pushUntilAccepted(repository: string, tag: string, seed: string): Promise<string> {
  const deadline = Date.now() + SETTLE_DEADLINE_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await pushImageOverHttp(`http://${proxy.host}`, repository, tag, seed);
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`push of ${repository}:${tag} failed ${attempt} times: ${String(error)}`, {
          cause: error,
        });
      }
      await sleep(50);
    }
  }
}

/** The digests of `pushed` that an attempt from the journal signed completely. */
const signedDigests = (): Set<string> =>
  new Set(
    signet.attempts
      .filter((a) => a.report.outcomes.length > 0 && a.report.outcomes.every((o) => o.status !== 'failed'))
      .map((a) => a.report.digest),
  );

describe('when the registry is unreachable for a while in the middle of a burst of pushes', () => {
  const pushed: Pushed[] = [];
  let findings: string[];

  beforeAll(async () => {
    const images = Array.from({ length: PUSHES }, (_, i) => ({
      repository: `down/app-${i % 5}`,
      tag: `v${i}`,
    }));
    const push = async (image: { repository: string; tag: string }, i: number) => {
      const digest = await pushUntilAccepted(image.repository, image.tag, `down-${i}`);
      pushed.push({ ...image, digest });
    };
    await inPool(images.slice(0, PUSHES / 2), 8, (image, i) => push(image, i));
    // The last image of the first half was pushed a moment ago: Signet cannot have read it and
    // written its signatures yet, so at least its signing meets the outage.
    await proxy.down();
    const outage = sleep(OUTAGE_MS).then(() => proxy.up());
    await Promise.all([
      inPool(images.slice(PUSHES / 2), 8, (image, i) => push(image, PUSHES / 2 + i)),
      outage,
    ]);
    // The registry notifies on its own schedule: wait until every push was signed from the journal.
    await waitFor(
      'every push to be signed',
      () => {
        const depth = signet.running.journal.depth();
        const signed = signedDigests();
        return depth.pending + depth.running === 0 && pushed.every((p) => signed.has(p.digest));
      },
      {
        timeoutMs: SETTLE_DEADLINE_MS,
        describe: () =>
          JSON.stringify({ depth: signet.running.journal.depth(), signed: signedDigests().size }),
      },
    );
    findings = await auditSignatures(registry.url, pushed, signet.keys);
  });

  it('pushed every image (some only after the outage)', () => {
    expect(pushed).toHaveLength(PUSHES);
  });

  it('answered every delivery 2xx, during the outage too, so the registry never had to deliver again', () => {
    // Replaces "answered 503 so that the registry delivered them again": the journal accepts
    // whatever the registry's state. 202 for a push it journaled, 200 for what it ignores (the
    // registry also notifies Signet of the signature manifests Signet writes).
    expect(answers.filter((status) => status === 202).length).toBeGreaterThanOrEqual(PUSHES);
    expect(answers.filter((status) => status !== 200 && status !== 202)).toEqual([]);
  });

  it('met the outage while signing, and the journal attempted those pushes again until they were signed', () => {
    expect(signet.retries.length).toBeGreaterThan(0);
    const failed = signet.attempts.filter((a) => a.report.outcomes.some((o) => o.status === 'failed'));
    expect(failed.length).toBeGreaterThan(0);
    expect([...new Set(failureCodes(failed.map((a) => a.report)))]).toEqual(['UNREACHABLE']);
    // Every entry that failed was attempted again, and its last attempt signed it.
    const signedIds = new Set(
      signet.attempts
        .filter((a) => !a.report.outcomes.some((o) => o.status === 'failed'))
        .map((a) => a.entry.id),
    );
    expect(failed.filter((a) => !signedIds.has(a.entry.id))).toEqual([]);
    expect(signet.running.journal.depth()).toEqual({ pending: 0, running: 0, deadLetters: 0 });
  });

  it('ends with exactly one valid signature per (digest, witness): none lost, none doubled', () => {
    expect(findings).toEqual([]);
  });
});
