/**
 * The registry goes down for a while in the middle of a burst of pushes, locally: nothing is
 * lost, because the registry's own notification queue re-delivers what Signet could not finish.
 *
 * A real docker-registry notifies Signet's local service; Signet and the pushers reach the
 * registry through a fault proxy (so the notifications name the proxy's host, and Signet reads
 * and writes through it). Half the burst is pushed, then the proxy goes down for two seconds:
 * pushes fail and their pusher tries again, as CI does; the registry's notifications keep
 * arriving, Signet cannot read or write the registry and answers 503, and the registry delivers
 * the same notification again (after 3 failures in a row, every `backoff`) until Signet answers
 * 2xx. In the end every (digest, witness) has exactly one valid signature, checked independently.
 *
 * What this covers is an outage between Signet and the registry (network, load balancer, the
 * registry's front door): the registry process keeps its notification queue, which lives in
 * memory. A registry process that dies loses the notifications it had not delivered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sleep } from '../../lib/core/retry';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy';
import { pushImageOverHttp } from '../support/oci-http';
import { freePort } from '../support/ports';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import { auditSignatures, inPool, localConfigYaml, startHarness, type Harness, type Pushed } from './harness';

// The run takes about 20 s here (the registry delivers notifications one at a time); the limits
// only make a slow machine fail with findings instead of a timeout.
jest.setTimeout(60_000);

const PUSHES = 40;
const OUTAGE_MS = 2_000;
/** How long everything may take to settle after the outage; the test polls, it does not wait. */
const SETTLE_DEADLINE_MS = 45_000;

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
  signet = await startHarness({ yaml: () => localConfigYaml(proxy.host, 'down') });
  signet.running.server.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/events/distribution') res.on('finish', () => answers.push(res.statusCode));
  });
  registry = await startTestRegistry({
    host: registryHost,
    notifyUrl: `${signet.url}/events/distribution`,
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

/** Audits until nothing is wrong or the deadline passes; returns the last findings. */
async function auditUntilSettled(pushed: readonly Pushed[]): Promise<string[]> {
  const deadline = Date.now() + SETTLE_DEADLINE_MS;
  for (;;) {
    const findings = await auditSignatures(registry.url, pushed, signet.keys);
    if (findings.length === 0 || Date.now() > deadline) return findings;
    await sleep(200);
  }
}

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
    // written its signatures yet, so at least its notification meets the outage.
    await proxy.down();
    const outage = sleep(OUTAGE_MS).then(() => proxy.up());
    await Promise.all([
      inPool(images.slice(PUSHES / 2), 8, (image, i) => push(image, PUSHES / 2 + i)),
      outage,
    ]);
    findings = await auditUntilSettled(pushed);
  });

  it('pushed every image (some only after the outage)', () => {
    expect(pushed).toHaveLength(PUSHES);
  });

  it('answered 503 to deliveries it could not complete, so that the registry delivered them again', () => {
    expect(answers.filter((status) => status === 503).length).toBeGreaterThan(0);
    expect(answers.filter((status) => status !== 200 && status !== 503)).toEqual([]);
    expect(signet.retries.length).toBeGreaterThan(0);
  });

  it('ends with exactly one valid signature per (digest, witness): none lost, none doubled', () => {
    expect(findings).toEqual([]);
  });
});
