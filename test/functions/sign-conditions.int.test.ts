/**
 * Signing conditions through the real sign handler, fed the EventBridge events AWS sends for
 * them (test/fixtures/events: CloudTrail's `PutImage`, `ECR Image Scan`, `Inspector2 Scan`, with
 * this test's repository and digest put in), against the CNCF distribution registry standing in
 * for ECR (`kind: ecr`, the function's registry host pointing at it), the local KMS, and the local
 * EventBridge endpoint that receives `Image Signed` and `Image Not Signed`. Signatures are read
 * back with plain fetch and checked with node:crypto.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID, verify } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SSMClient } from '@aws-sdk/client-ssm';
import { readSignEnv, signEnvironment } from '../../functions/env';
import type { LambdaHandler } from '../../functions/runtime';
import { makeSignHandler, signDependencies, type SignEvent, type SignResult } from '../../functions/sign';
import { startEventBridgeEndpoint, type EventBridgeEndpoint } from '../support/eventbridge-endpoint';
import { makeImage, skopeoCopy } from '../support/images';
import { startKmsEndpoint, type CreatedKmsKey, type KmsEndpoint } from '../support/kms-endpoint';
import {
  captureOutput,
  lambdaContext,
  localClientConfig,
  metricSum as metric,
  useLambdaEnv,
  type Invocation,
} from '../support/lambda-harness';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import { startSsmEndpoint, type SsmEndpoint } from '../support/ssm-endpoint';

jest.setTimeout(60_000);

const PARAMETER = '/signet/config';
const BUS = 'arn:aws:events:us-east-1:111122223333:event-bus/signet';
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'events');
/** The pusher of the CloudTrail fixture: a CI role's session. */
const CI_SESSION = 'arn:aws:sts::123456789012:assumed-role/ci-push/build-42';

let dir: string;
let registry: TestRegistry;
let kms: KmsEndpoint;
let ssm: SsmEndpoint;
let bus: EventBridgeEndpoint;
let key: CreatedKmsKey;
let devKey: CreatedKmsKey;
let clients: { ssm: SSMClient; eventBridge: EventBridgeClient };
let signHandler: LambdaHandler<SignEvent, SignResult>;

useLambdaEnv();
const output = captureOutput();

function configYaml(): string {
  const endpoint = kms.url.replace('http://', '');
  return `
registries:
  - host: ${registry.host}
    kind: ecr # ECR stands behind this host in the events; the registry plays its part
    insecure: true
witnesses:
  - name: release
    key: awskms://${endpoint}/${key.keyId}
  - name: dev
    key: awskms://${endpoint}/${devKey.keyId}
signingRules:
  - name: ci-only
    namespaces: [ci]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      pushedBy: ['arn:aws:sts::123456789012:assumed-role/ci-push/*']
  - name: strict
    namespaces: [strict]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      scan: { maxSeverity: HIGH }
  - name: tolerant
    namespaces: [tolerant]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      scan: { maxSeverity: CRITICAL, waitSeconds: 600 }
  - name: dev
    namespaces: [dev]
    witness: dev
    algorithm: ECDSA_SHA_256
    signatureType: simple
  - name: promote
    namespaces: [prod]
    witness: release
    algorithm: ECDSA_SHA_256
    conditions:
      signedBy: [dev]
      signedIdentity: { type: remapIdentity, prefix: ${registry.host}/prod, signedPrefix: ${registry.host}/dev }
`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-sign-conditions-'));
  [registry, kms, ssm, bus] = await Promise.all([
    startTestRegistry(),
    startKmsEndpoint(),
    startSsmEndpoint(),
    startEventBridgeEndpoint(),
  ]);
  key = kms.createKey('ECC_NIST_P256');
  devKey = kms.createKey('ECC_NIST_P256');
  ssm.put(PARAMETER, configYaml());
  clients = {
    ssm: new SSMClient(localClientConfig(ssm.url)),
    eventBridge: new EventBridgeClient(localClientConfig(bus.url)),
  };
  const env = readSignEnv({
    ...signEnvironment({
      configParameter: PARAMETER,
      configTtlSeconds: 60,
      eventBus: BUS,
      registryHost: registry.host,
    }),
    LAMBDA_TASK_ROOT: dir,
  });
  signHandler = makeSignHandler(signDependencies(env, clients));
});

afterAll(async () => {
  for (const client of Object.values(clients ?? {})) client.destroy();
  await Promise.all([registry?.stop(), kms?.close(), ssm?.close(), bus?.close()]);
  await rm(dir, { recursive: true, force: true });
});

type Fixture = SignEvent & { detail: Record<string, unknown> };

async function fixture(name: string): Promise<Fixture> {
  const event = JSON.parse(await readFile(path.join(FIXTURES, `${name}.json`), 'utf8')) as Fixture;
  // A fresh delivery: its own id, and the time of this push (scan waits count from it).
  return { ...event, id: randomUUID(), time: new Date().toISOString() };
}

/** CloudTrail's record of this push, by `pusher`. */
async function putImageEvent(repository: string, digest: string, tag: string, pusher: string) {
  const event = await fixture('cloudtrail-ecr-putimage');
  const detail = event.detail as {
    userIdentity: Record<string, unknown>;
    requestParameters: Record<string, unknown>;
    responseElements: { image: { imageId: Record<string, unknown> } & Record<string, unknown> };
  };
  return {
    ...event,
    detail: {
      ...detail,
      userIdentity: { ...detail.userIdentity, arn: pusher },
      requestParameters: { ...detail.requestParameters, repositoryName: repository, imageTag: tag },
      responseElements: {
        image: {
          ...detail.responseElements.image,
          repositoryName: repository,
          imageId: { imageDigest: digest, imageTag: tag },
        },
      },
    },
  };
}

/** ECR's push event (`ECR Image Action`) for this push. */
async function pushEvent(repository: string, digest: string, tag: string) {
  const event = await fixture('ecr-push-tag');
  return {
    ...event,
    detail: { ...event.detail, 'repository-name': repository, 'image-digest': digest, 'image-tag': tag },
  };
}

/** ECR basic scanning's result for this image: the fixture's findings (10 CRITICAL, 9 MEDIUM). */
async function ecrScanEvent(repository: string, digest: string) {
  const event = await fixture('ecr-image-scan');
  return { ...event, detail: { ...event.detail, 'repository-name': repository, 'image-digest': digest } };
}

/** Inspector's result for this image: the fixture's findings (7 CRITICAL, 61 HIGH, ...). */
async function inspectorScanEvent(repository: string, digest: string) {
  const event = await fixture('inspector2-scan');
  return {
    ...event,
    detail: {
      ...event.detail,
      'repository-name': `arn:aws:ecr:us-east-2:123456789012:repository/${repository}`,
      'image-digest': digest,
    },
  };
}

async function push(repository: string, tag: string): Promise<string> {
  const layout = path.join(dir, `layout-${repository.replace('/', '-')}`);
  await makeImage(layout, { seed: repository });
  return skopeoCopy(layout, `${registry.host}/${repository}:${tag}`);
}

async function invoke(event: unknown): Promise<Invocation<SignResult>> {
  bus.events.length = 0;
  return output.invoke(() => signHandler(event as SignEvent, lambdaContext('signet-sign')));
}

/** The payloads of the image's `.sig` layers, each of whose signatures verifies with a KMS key. */
async function signedPayloads(repository: string, digest: string): Promise<Record<string, unknown>[]> {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${digest.replace(':', '-')}.sig`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (res.status === 404) return [];
  expect(res.status).toBe(200);
  const { layers } = (await res.json()) as {
    layers: { digest: string; annotations: Record<string, string> }[];
  };
  const payloads = [];
  for (const layer of layers) {
    const blob = await fetch(`${registry.url}/v2/${repository}/blobs/${layer.digest}`);
    const bytes = Buffer.from(await blob.arrayBuffer());
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(layer.digest);
    const signature = Buffer.from(layer.annotations['dev.cosignproject.cosign/signature'] ?? '', 'base64');
    expect([key, devKey].some((k) => verify('sha256', bytes, k.publicKey, signature))).toBe(true);
    payloads.push(JSON.parse(bytes.toString()) as Record<string, unknown>);
  }
  return payloads;
}

const optional = (payload: Record<string, unknown> | undefined) =>
  payload?.['optional'] as Record<string, string> | undefined;

describe('pushedBy, decided by the CloudTrail PutImage event', () => {
  describe('when the CI role pushed', () => {
    let digest: string;
    let outcome: Invocation<SignResult>;

    beforeAll(async () => {
      digest = await push('ci/app', 'v1');
      outcome = await invoke(await putImageEvent('ci/app', digest, 'v1', CI_SESSION));
    });

    it('signs, recording the pusher in the payload', async () => {
      expect(outcome.error).toBeUndefined();
      const payloads = await signedPayloads('ci/app', digest);
      expect(payloads).toHaveLength(1);
      expect(optional(payloads[0])).toMatchObject({
        'signet.dev/pushed-by': CI_SESSION,
        'dev.signet/rule': 'ci-only',
      });
    });

    it('announces Image Signed, and no Image Not Signed', () => {
      expect(bus.events.map((e) => [e.DetailType, e.Detail['rule'], e.Detail['status']])).toEqual([
        ['Image Signed', 'ci-only', 'signed'],
      ]);
      expect(metric(outcome.lines, 'Signed')).toBe(1);
    });
  });

  describe('when someone else pushed', () => {
    let digest: string;
    let outcome: Invocation<SignResult>;
    const alice = 'arn:aws:iam::123456789012:user/alice';

    beforeAll(async () => {
      digest = await push('ci/hand-made', 'v1');
      outcome = await invoke(await putImageEvent('ci/hand-made', digest, 'v1', alice));
    });

    it('signs nothing, and does not throw (an unmet condition is no failure to retry)', async () => {
      expect(outcome.error).toBeUndefined();
      expect(await signedPayloads('ci/hand-made', digest)).toEqual([]);
      expect(metric(outcome.lines, 'NotSigned')).toBe(1);
    });

    it('puts one Image Not Signed event naming the rule and the unmet condition', () => {
      expect(bus.events).toHaveLength(1);
      expect(bus.events[0]).toMatchObject({
        Source: 'signet',
        DetailType: 'Image Not Signed',
        EventBusName: BUS,
      });
      expect(bus.events[0]!.Detail).toEqual({
        registry: registry.host,
        repository: 'ci/hand-made',
        digest,
        tag: 'v1',
        rule: 'ci-only',
        witness: 'release',
        condition: 'pushedBy',
        reason: 'PUSHER_NOT_ALLOWED',
        detail: expect.stringContaining(alice),
      });
    });
  });

  describe("when only ECR's own push event arrives (it names no pusher)", () => {
    it('leaves the rule to the CloudTrail event: nothing signed, nothing announced', async () => {
      const digest = await push('ci/untraced', 'v1');
      const outcome = await invoke(await pushEvent('ci/untraced', digest, 'v1'));
      expect(outcome.error).toBeUndefined();
      expect(outcome.result?.reports[0]?.skipped).toMatch(/CloudTrail PutImage/);
      expect(await signedPayloads('ci/untraced', digest)).toEqual([]);
      expect(bus.events).toEqual([]);
    });
  });
});

describe('scan, decided by the scan result event', () => {
  describe('when the push arrives before its scan', () => {
    let digest: string;
    let waiting: Invocation<SignResult>;
    let scanned: Invocation<SignResult>;

    beforeAll(async () => {
      digest = await push('tolerant/app', 'v1');
      waiting = await invoke(await pushEvent('tolerant/app', digest, 'v1'));
      scanned = await invoke(await ecrScanEvent('tolerant/app', digest));
    });

    it('waits on the push: no signature, no event, no error', () => {
      expect(waiting.error).toBeUndefined();
      expect(waiting.result?.reports[0]?.outcomes).toEqual([
        expect.objectContaining({ rule: 'tolerant', status: 'waiting' }),
      ]);
      expect(metric(waiting.lines, 'ScanWaiting')).toBe(1);
      expect(metric(waiting.lines, 'NotSigned')).toBe(0);
    });

    it('signs on an ECR scan within maxSeverity, recording the findings in the payload', async () => {
      expect(scanned.error).toBeUndefined();
      const payloads = await signedPayloads('tolerant/app', digest);
      expect(payloads).toHaveLength(1);
      expect(optional(payloads[0])?.['signet.dev/scan']).toBe(
        'ecr critical=10 high=0 medium=9 low=0 maxSeverity=CRITICAL',
      );
      expect(bus.events.map((e) => [e.DetailType, e.Detail['rule']])).toEqual([['Image Signed', 'tolerant']]);
    });
  });

  describe('when Inspector reports findings within maxSeverity', () => {
    it('signs', async () => {
      const digest = await push('tolerant/inspected', 'v1');
      const outcome = await invoke(await inspectorScanEvent('tolerant/inspected', digest));
      expect(outcome.error).toBeUndefined();
      const payloads = await signedPayloads('tolerant/inspected', digest);
      expect(payloads).toHaveLength(1);
      expect(optional(payloads[0])?.['signet.dev/scan']).toMatch(/^inspector critical=7 high=61 medium=62 /);
      expect(bus.events.map((e) => e.DetailType)).toEqual(['Image Signed']);
    });
  });

  describe.each([
    ['ECR basic scanning', 'strict/basic', ecrScanEvent, /ecr found 10 CRITICAL/],
    ['Amazon Inspector', 'strict/enhanced', inspectorScanEvent, /inspector found 7 CRITICAL/],
  ])('when %s finds more than maxSeverity allows', (_scanner, repository, scanEvent, detail) => {
    let digest: string;
    let outcome: Invocation<SignResult>;

    beforeAll(async () => {
      digest = await push(repository, 'v1');
      outcome = await invoke(await scanEvent(repository, digest));
    });

    it('signs nothing, without an error', async () => {
      expect(outcome.error).toBeUndefined();
      expect(await signedPayloads(repository, digest)).toEqual([]);
    });

    it('puts an Image Not Signed event naming the rule and the findings', () => {
      expect(bus.events).toHaveLength(1);
      expect(bus.events[0]).toMatchObject({ DetailType: 'Image Not Signed' });
      expect(bus.events[0]!.Detail).toMatchObject({
        repository,
        digest,
        rule: 'strict',
        condition: 'scan',
        reason: 'SCAN_FINDINGS',
        detail: expect.stringMatching(detail),
      });
    });
  });

  describe('when a push is delivered after its scan wait is over (a late retry)', () => {
    it('reports SCAN_TIMEOUT as Image Not Signed', async () => {
      const digest = await push('tolerant/late', 'v1');
      const event = await pushEvent('tolerant/late', digest, 'v1');
      const outcome = await invoke({ ...event, time: new Date(Date.now() - 3_600_000).toISOString() });
      expect(outcome.error).toBeUndefined();
      expect(await signedPayloads('tolerant/late', digest)).toEqual([]);
      expect(bus.events.map((e) => [e.DetailType, e.Detail['reason']])).toEqual([
        ['Image Not Signed', 'SCAN_TIMEOUT'],
      ]);
    });
  });
});

describe('signedBy, re-driven by the pushed signature', () => {
  let digest: string;
  let unsigned: Invocation<SignResult>;
  let refusals: unknown[];
  let countersigned: Invocation<SignResult>;

  beforeAll(async () => {
    // dev/app is signed by the dev witness; the same image is then promoted into prod/app, whose
    // copy tool pushes the image first and its signature after.
    const layout = path.join(dir, 'layout-promoted');
    await makeImage(layout, { seed: 'promoted' });
    digest = await skopeoCopy(layout, `${registry.host}/dev/app:v1`);
    const devSigned = await invoke(await pushEvent('dev/app', digest, 'v1'));
    expect(devSigned.error).toBeUndefined();
    expect(await signedPayloads('dev/app', digest)).toHaveLength(1);

    expect(await skopeoCopy(layout, `${registry.host}/prod/app:v1`)).toBe(digest);
    unsigned = await invoke(await pushEvent('prod/app', digest, 'v1'));
    refusals = bus.events.map((e) => [
      e.DetailType,
      e.Detail['rule'],
      e.Detail['condition'],
      e.Detail['reason'],
    ]);

    const signatureTag = `${digest.replace(':', '-')}.sig`;
    await promisify(execFile)('skopeo', [
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${registry.host}/dev/app:${signatureTag}`,
      `docker://${registry.host}/prod/app:${signatureTag}`,
    ]);
    const event = await fixture('ecr-push-cosign-signature');
    countersigned = await invoke({
      ...event,
      detail: { ...event.detail, 'repository-name': 'prod/app', 'image-tag': signatureTag },
    });
  });

  it('refuses the image while no dev signature is there, with Image Not Signed', () => {
    expect(unsigned.error).toBeUndefined();
    expect(unsigned.result?.reports[0]?.outcomes).toEqual([
      expect.objectContaining({ rule: 'promote', status: 'not-signed' }),
    ]);
    expect(refusals).toEqual([['Image Not Signed', 'promote', 'signedBy', 'NOT_COUNTERSIGNED']]);
  });

  it('countersigns when the signature arrives, recording what it countersigned', async () => {
    expect(countersigned.error).toBeUndefined();
    const payloads = await signedPayloads('prod/app', digest);
    expect(payloads).toHaveLength(2);
    const promoted = payloads.map(optional).find((o) => o?.['dev.signet/rule'] === 'promote');
    expect(promoted?.['signet.dev/countersigns']).toMatch(/^witness=dev identity=.*\/dev\/app /);
    expect(bus.events.map((e) => [e.DetailType, e.Detail['rule'], e.Detail['repository']])).toEqual([
      ['Image Signed', 'promote', 'prod/app'],
    ]);
  });
});
