/**
 * Verification when the registry fails. Signet's local service answers `POST /verify` and
 * `POST /admission` (AdmissionReviews as the apiserver sends them) with policies requiring the
 * harness's three witnesses; the registry is reached through a fault proxy that is taken down, or
 * made to answer every request 429, and then restored.
 *
 * An outage is never an allow unless a policy's `failurePolicy: allow` says so (also in audit
 * mode, which only softens verdicts on the image); the denial names the image and says why, with a
 * code distinct from "unsigned"; and the first request after the registry is back is decided on
 * the image again. No result is reused across the outage: each check uses an image not verified
 * before it (a tag reference is resolved with a HEAD every time anyway).
 */
import { randomUUID } from 'node:crypto';
import type { AdmissionReviewResponse } from '../../lib/admission/controller';
import type { ImageDecision } from '../../lib/verification/decision';
import { fixture } from '../admission/fixtures';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import {
  LOCAL_WITNESSES,
  TEST_RETRY,
  auditSignatures,
  deliverUntilAccepted,
  isAccepted,
  localConfigYaml,
  pushEvent,
  pushImages,
  startHarness,
  type Harness,
  type Pushed,
} from './harness';

jest.setTimeout(60_000);

/** Signed on push (the harness's rules cover this namespace). */
const SIGNED = 'signed';
const ALL_WITNESSES = `[${LOCAL_WITNESSES.map((w) => w.witness).join(', ')}]`;

let registry: TestRegistry;
let proxy: FaultProxy;
let signet: Harness;
/** Images by `repository:tag`, all in the registry. */
const images = new Map<string, Pushed>();

const policies = (host: string): string => `
policies:
  - name: enforced
    enabled: true
    images: ["${host}/${SIGNED}/**", "${host}/unsigned/**"]
    attestors:
      - witnesses: ${ALL_WITNESSES}
  - name: audited
    enabled: true
    mode: audit
    images: ["${host}/audited/**"]
    attestors:
      - witnesses: ${ALL_WITNESSES}
  - name: audited-lenient
    enabled: true
    mode: audit
    failurePolicy: allow
    images: ["${host}/audited-lenient/**"]
    attestors:
      - witnesses: ${ALL_WITNESSES}
  - name: lenient
    enabled: true
    failurePolicy: allow
    images: ["${host}/lenient/**"]
    attestors:
      - witnesses: ${ALL_WITNESSES}`;

beforeAll(async () => {
  registry = await startTestRegistry();
  proxy = await startFaultProxy(registry.host, { seed: 3 });
  signet = await startHarness({
    yaml: () => localConfigYaml(proxy.host, SIGNED, { extra: policies(proxy.host) }),
  });
  const wanted = [
    ...['v1', 'v2'].map((tag) => `${SIGNED}/app:${tag}`),
    ...['unsigned', 'audited', 'audited-lenient', 'lenient'].flatMap((ns) => [
      `${ns}/app:v1`,
      `${ns}/app:v2`,
    ]),
  ];
  const pushed = await pushImages(
    registry.url,
    wanted.map((name, i) => {
      const [repository, tag] = name.split(':') as [string, string];
      return { repository, tag, seed: `${i}` };
    }),
  );
  for (const image of pushed) images.set(`${image.repository}:${image.tag}`, image);
  const signed = [...images.values()].filter((image) => image.repository.startsWith(`${SIGNED}/`));
  for (const image of signed) {
    const event = pushEvent(proxy.host, image.repository, image.digest, image.tag);
    const deliveries = await deliverUntilAccepted(signet.url, [event], 1);
    expect(deliveries.every(isAccepted)).toBe(true);
  }
  // Accepted pushes are signed from the journal, after the answer.
  await signet.settle();
  expect(await auditSignatures(registry.url, signed, signet.keys)).toEqual([]);
});

afterAll(async () => {
  await signet?.stop();
  await proxy?.close();
  await registry?.stop();
});

/** `proxy-host/repository:tag` (or `@digest`) of a pushed image. */
function ref(name: string, by: 'tag' | 'digest' = 'tag'): string {
  const image = images.get(name);
  if (image === undefined) throw new Error(`no image ${name}`);
  return `${proxy.host}/${image.repository}${by === 'tag' ? `:${image.tag}` : `@${image.digest}`}`;
}

async function verify(image: string): Promise<ImageDecision> {
  const res = await fetch(`${signet.url}/verify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image, namespace: 'production' }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as ImageDecision;
}

/** Asks admission for a Pod (the apiserver's fixture) running `containerImages`. */
async function admit(containerImages: readonly string[]): Promise<AdmissionReviewResponse['response']> {
  const review = fixture('pod-create', proxy.host);
  review.request.uid = randomUUID();
  review.request.object.spec.containers = containerImages.map((image, i) => ({ name: `c${i}`, image }));
  delete review.request.object.spec.initContainers;
  const res = await fetch(`${signet.url}/admission`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(review),
  });
  expect(res.status).toBe(200);
  const answer = (await res.json()) as AdmissionReviewResponse;
  expect(answer.response.uid).toBe(review.request.uid);
  return answer.response;
}

describe('when the registry is unreachable', () => {
  beforeAll(() => proxy.down());

  it('denies a signed image with REGISTRY_UNREACHABLE, naming the registry', async () => {
    const decision = await verify(ref(`${SIGNED}/app:v1`));
    expect(decision).toMatchObject({
      allowed: false,
      verdict: 'deny',
      reason: { code: 'REGISTRY_UNREACHABLE', registry: proxy.host },
    });
    expect(decision.message).toContain('unreachable');
  });

  it('denies a digest reference (no tag to resolve) the same way', async () => {
    const decision = await verify(ref(`${SIGNED}/app:v1`, 'digest'));
    expect(decision).toMatchObject({ allowed: false, reason: { code: 'REGISTRY_UNREACHABLE' } });
  });

  it('denies an unsigned image as unreachable, not as unsigned', async () => {
    const decision = await verify(ref('unsigned/app:v1'));
    expect(decision).toMatchObject({ allowed: false, reason: { code: 'REGISTRY_UNREACHABLE' } });
  });

  it('denies the admission of a Pod, its status message naming each image and the outage', async () => {
    const pod = [ref(`${SIGNED}/app:v1`), ref('unsigned/app:v1')];
    const response = await admit(pod);
    expect(response).toMatchObject({ allowed: false, status: { code: 403 } });
    for (const image of pod) expect(response.status?.message).toContain(`image ${image}`);
    expect(response.status?.message).toContain(`registry ${proxy.host} is unreachable`);
  });

  it('denies under an audit policy too: audit softens verdicts on the image, not outages', async () => {
    const decision = await verify(ref('audited/app:v1'));
    expect(decision).toMatchObject({
      allowed: false,
      verdict: 'deny',
      reason: { code: 'REGISTRY_UNREACHABLE' },
    });
    expect((await admit([ref('audited/app:v1')])).allowed).toBe(false);
  });

  it.each(['lenient', 'audited-lenient'])(
    'admits with a warning under failurePolicy: allow (policy %s)',
    async (namespace) => {
      const decision = await verify(ref(`${namespace}/app:v1`));
      expect(decision).toMatchObject({
        allowed: true,
        verdict: 'warn',
        reason: { code: 'REGISTRY_UNREACHABLE' },
      });
      const response = await admit([ref(`${namespace}/app:v1`)]);
      expect(response.allowed).toBe(true);
      expect(response.warnings).toEqual([expect.stringContaining('REGISTRY_UNREACHABLE')]);
    },
  );

  describe('and comes back', () => {
    beforeAll(() => proxy.up());

    it('allows a signed image at the very next request', async () => {
      const response = await admit([ref(`${SIGNED}/app:v1`)]);
      expect(response).toMatchObject({ allowed: true });
      expect(response.warnings).toBeUndefined();
    });

    it('denies an unsigned image as unsigned', async () => {
      const decision = await verify(ref('unsigned/app:v1'));
      expect(decision).toMatchObject({ allowed: false, reason: { code: 'NO_SIGNATURES' } });
    });

    it('admits an unsigned image with a warning under the audit policy again', async () => {
      const decision = await verify(ref('audited/app:v1'));
      expect(decision).toMatchObject({ allowed: true, verdict: 'warn', reason: { code: 'NO_SIGNATURES' } });
    });

    it('denies an unsigned image under failurePolicy: allow (it waives outages only)', async () => {
      const decision = await verify(ref('lenient/app:v1'));
      expect(decision).toMatchObject({ allowed: false, reason: { code: 'NO_SIGNATURES' } });
    });
  });
});

describe('when the registry answers every request 429', () => {
  beforeAll(() => {
    proxy.faultKinds = ['429'];
    proxy.faultRate = 1;
  });

  afterAll(() => {
    proxy.faultRate = 0;
  });

  it('denies a signed image with REGISTRY_RATE_LIMITED, after the retry policy’s attempts', async () => {
    const before = proxy.requests.length;
    const decision = await verify(ref(`${SIGNED}/app:v2`));
    expect(decision).toMatchObject({
      allowed: false,
      reason: { code: 'REGISTRY_RATE_LIMITED', registry: proxy.host },
    });
    expect(decision.message).toContain('rate-limiting');
    // The tag's HEAD, tried as often as the policy allows; nothing else was asked.
    expect(proxy.requests.slice(before).map((r) => `${r.method} ${r.fault}`)).toEqual(
      Array(TEST_RETRY.attempts).fill('HEAD 429'),
    );
  });

  it('denies an unsigned image as rate-limited, distinguishable from unsigned', async () => {
    const decision = await verify(ref('unsigned/app:v2'));
    expect(decision).toMatchObject({ allowed: false, reason: { code: 'REGISTRY_RATE_LIMITED' } });
  });

  it('denies the admission of a Pod, its status message naming the image and the throttling', async () => {
    const response = await admit([ref(`${SIGNED}/app:v2`)]);
    expect(response).toMatchObject({ allowed: false, status: { code: 403 } });
    expect(response.status?.message).toContain(`image ${ref(`${SIGNED}/app:v2`)}`);
    expect(response.status?.message).toContain(`registry ${proxy.host} is rate-limiting`);
  });

  it('denies under an audit policy, and admits with a warning under failurePolicy: allow', async () => {
    expect(await verify(ref('audited/app:v2'))).toMatchObject({
      allowed: false,
      reason: { code: 'REGISTRY_RATE_LIMITED' },
    });
    expect(await verify(ref('audited-lenient/app:v2'))).toMatchObject({
      allowed: true,
      verdict: 'warn',
      reason: { code: 'REGISTRY_RATE_LIMITED' },
    });
  });

  describe('and stops', () => {
    beforeAll(() => {
      proxy.faultRate = 0;
    });

    it('allows a signed image at the very next request', async () => {
      expect(await verify(ref(`${SIGNED}/app:v2`))).toMatchObject({ allowed: true, verdict: 'allow' });
    });

    it('denies an unsigned image as unsigned', async () => {
      expect(await verify(ref('unsigned/app:v2'))).toMatchObject({
        allowed: false,
        reason: { code: 'NO_SIGNATURES' },
      });
    });
  });
});
