/**
 * The real middy-wrapped sign and failure handlers, built by their factories and invoked the way
 * Lambda invokes them, against real servers: the CNCF distribution registry (images pushed with
 * skopeo), a local KMS behind the AWS SDK (awskms://127.0.0.1:<port>/<key id>), and local SSM,
 * EventBridge and SQS endpoints that the handlers' SDK clients are pointed at. The environment
 * the handlers read is the typed one of `functions/env.ts`, exactly as the construct writes it.
 * Signatures are checked with plain fetch + node:crypto, never with Signet's own verification code.
 */
import { createHash, randomUUID, verify } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { EventBridgeEvent } from 'aws-lambda';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { failureDependencies, makeFailureHandler } from '../../functions/failure';
import { readFailureEnv, readSignEnv, failureEnvironment, signEnvironment } from '../../functions/env';
import type { LambdaHandler } from '../../functions/runtime';
import {
  SigningFailedError,
  makeSignHandler,
  signDependencies,
  type SignEvent,
  type SignResult,
} from '../../functions/sign';
import { startEventBridgeEndpoint, type EventBridgeEndpoint } from '../support/eventbridge-endpoint';
import { startKmsEndpoint, type CreatedKmsKey, type KmsEndpoint } from '../support/kms-endpoint';
import { makeImage, skopeoCopy } from '../support/images';
import {
  captureOutput,
  lambdaContext,
  localClientConfig,
  logEntries,
  metricSum as metric,
  useLambdaEnv,
  type Invocation,
} from '../support/lambda-harness';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import { startSqsEndpoint, type SqsEndpoint } from '../support/sqs-endpoint';
import { startSsmEndpoint, type SsmEndpoint } from '../support/ssm-endpoint';

jest.setTimeout(60_000);

const PARAMETER = '/signet/config';
const BUS = 'arn:aws:events:us-east-1:111122223333:event-bus/signet';
const FIXTURE = path.join(__dirname, '..', 'fixtures', 'events', 'ecr-push-tag.json');

let dir: string;
let registry: TestRegistry;
let kms: KmsEndpoint;
let ssm: SsmEndpoint;
let bus: EventBridgeEndpoint;
let sqs: SqsEndpoint;
let key: CreatedKmsKey;
let brokenKey: CreatedKmsKey;
let clients: { ssm: SSMClient; eventBridge: EventBridgeClient; sqs: SQSClient };
let signHandler: LambdaHandler<SignEvent, SignResult>;
let failureHandler: ReturnType<typeof makeFailureHandler>;

useLambdaEnv();
// Everything the handlers write (Powertools JSON logs, warnings and errors on stderr, EMF
// metrics on stdout), from cold start on.
const output = captureOutput();
const invoke = <T>(run: () => Promise<T>): Promise<Invocation<T>> => output.invoke(run);

function configYaml(): string {
  const endpoint = kms.url.replace('http://', '');
  return `
registries:
  - host: ${registry.host}
    insecure: true
witnesses:
  - name: release
    key: awskms://${endpoint}/${key.keyId}
  - name: broken
    key: awskms://${endpoint}/${brokenKey.keyId}
  - name: laptop
    key: file://keys/laptop.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    signatureType: default
  - name: team-b
    namespaces: [team-b]
    witness: broken
    algorithm: ECDSA_SHA_256
  - name: team-b-local
    namespaces: [team-b]
    witness: laptop
    algorithm: ECDSA_SHA_256
`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-sign-fn-'));
  [registry, kms, ssm, bus, sqs] = await Promise.all([
    startTestRegistry(),
    startKmsEndpoint(),
    startSsmEndpoint(),
    startEventBridgeEndpoint(),
    startSqsEndpoint(),
  ]);
  key = kms.createKey('ECC_NIST_P256');
  brokenKey = kms.createKey('ECC_NIST_P256', { state: 'Disabled' });
  ssm.put(PARAMETER, configYaml());
  clients = {
    ssm: new SSMClient(localClientConfig(ssm.url)),
    eventBridge: new EventBridgeClient(localClientConfig(bus.url)),
    sqs: new SQSClient(localClientConfig(sqs.url)),
  };
  // The environment as the construct writes it, read back as the deployed functions read it.
  // ECR events name <account>.dkr.ecr.<region>.amazonaws.com; here the registry stands in for it.
  const signEnv = readSignEnv({
    ...signEnvironment({
      configParameter: PARAMETER,
      configTtlSeconds: 60,
      eventBus: BUS,
      registryHost: registry.host,
    }),
    LAMBDA_TASK_ROOT: dir,
  });
  const failureEnv = readFailureEnv(
    failureEnvironment({
      eventBus: BUS,
      deadLetterQueue: sqs.queueUrl('signet-dead-letters'),
      registryHost: registry.host,
    }),
  );
  signHandler = makeSignHandler(signDependencies(signEnv, clients));
  failureHandler = makeFailureHandler(failureDependencies(failureEnv, clients));
});

afterAll(async () => {
  for (const client of Object.values(clients ?? {})) client.destroy();
  await Promise.all([registry?.stop(), kms?.close(), ssm?.close(), bus?.close(), sqs?.close()]);
  await rm(dir, { recursive: true, force: true });
});

/** The ECR event EventBridge delivers for a push (the documented sample, with this push in it). */
async function ecrEvent(
  repository: string,
  digest: string,
  tag: string,
): Promise<EventBridgeEvent<'ECR Image Action', Record<string, string>>> {
  const event = JSON.parse(await readFile(FIXTURE, 'utf8')) as EventBridgeEvent<
    'ECR Image Action',
    Record<string, string>
  >;
  return {
    ...event,
    id: randomUUID(),
    detail: { ...event.detail, 'repository-name': repository, 'image-digest': digest, 'image-tag': tag },
  };
}

async function push(repository: string, tag: string, seed: string): Promise<string> {
  const layout = path.join(dir, `layout-${seed}`);
  await makeImage(layout, { seed });
  return skopeoCopy(layout, `${registry.host}/${repository}:${tag}`);
}

interface SigLayer {
  digest: string;
  annotations: Record<string, string>;
}

async function signatureLayers(repository: string, digest: string): Promise<SigLayer[] | undefined> {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${digest.replace(':', '-')}.sig`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (res.status === 404) return undefined;
  expect(res.status).toBe(200);
  return ((await res.json()) as { layers: SigLayer[] }).layers;
}

async function blob(repository: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${registry.url}/v2/${repository}/blobs/${digest}`);
  expect(res.status).toBe(200);
  const bytes = Buffer.from(await res.arrayBuffer());
  expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(digest);
  return bytes;
}

describe('when an image is pushed to a repository a KMS rule covers', () => {
  let digest: string;
  let outcome: Invocation<SignResult>;

  beforeAll(async () => {
    digest = await push('team-a/app', 'v1', 'team-a');
    const event = await ecrEvent('team-a/app', digest, 'v1');
    bus.events.length = 0;
    outcome = await invoke(() => signHandler(event, lambdaContext('signet-sign')));
  });

  it('writes a cosign signature that verifies with the KMS public key', async () => {
    expect(outcome.error).toBeUndefined();
    const layers = await signatureLayers('team-a/app', digest);
    expect(layers).toHaveLength(1);
    const [layer] = layers as SigLayer[];
    const payload = await blob('team-a/app', layer!.digest);
    const signature = Buffer.from(layer!.annotations['dev.cosignproject.cosign/signature']!, 'base64');
    expect(verify('sha256', payload, key.publicKey, signature)).toBe(true);
    const json = JSON.parse(payload.toString()) as { critical: unknown; optional: Record<string, string> };
    expect(json.critical).toEqual({
      identity: { 'docker-reference': `${registry.host}/team-a/app:v1` },
      image: { 'docker-manifest-digest': digest },
      type: 'cosign container image signature',
    });
  });

  it('puts one Image Signed event on the bus', () => {
    expect(bus.events).toHaveLength(1);
    const [event] = bus.events;
    expect(event).toMatchObject({ Source: 'signet', DetailType: 'Image Signed', EventBusName: BUS });
    expect(event!.Detail).toEqual({
      registry: registry.host,
      repository: 'team-a/app',
      digest,
      tag: 'v1',
      rule: 'team-a',
      witness: 'release',
      keyId: key.arn,
      algorithm: 'ECDSA_SHA_256',
      signatureType: 'default',
      signatureRef: `${registry.host}/team-a/app:${digest.replace(':', '-')}.sig`,
      status: 'signed',
    });
  });

  it('logs the outcome as structured JSON and emits EMF metrics', () => {
    const signed = outcome.lines.find((line) => line['message'] === 'image signed');
    expect(signed).toMatchObject({
      level: 'INFO',
      service: 'signet',
      image: `${registry.host}/team-a/app:v1@${digest}`,
      rule: 'team-a',
      witness: 'release',
      outcome: 'signed',
      function_name: 'signet-sign',
    });
    expect(typeof signed?.['durationMs']).toBe('number');
    expect(metric(outcome.lines, 'Signed')).toBe(1);
    expect(metric(outcome.lines, 'Failed')).toBe(0);
    const emf = outcome.lines.find((line) => line['SigningLatency'] !== undefined);
    expect(emf?.['_aws']).toMatchObject({
      CloudWatchMetrics: [expect.objectContaining({ Namespace: 'Signet', Dimensions: [['service']] })],
    });
  });

  describe('and EventBridge delivers the same event again', () => {
    it('signs nothing new and announces the existing signature', async () => {
      bus.events.length = 0;
      const signsBefore = kms.count('Sign');
      const again = await invoke(async () =>
        signHandler(await ecrEvent('team-a/app', digest, 'v1'), lambdaContext('signet-sign')),
      );
      expect(again.error).toBeUndefined();
      expect(kms.count('Sign')).toBe(signsBefore);
      expect(await signatureLayers('team-a/app', digest)).toHaveLength(1);
      expect(bus.events.map((e) => e.Detail['status'])).toEqual(['already-signed']);
      expect(metric(again.lines, 'Skipped')).toBe(1);
    });
  });
});

describe('when the pushed image is a cosign signature', () => {
  it('skips it without signing or announcing anything', async () => {
    bus.events.length = 0;
    const signsBefore = kms.count('Sign');
    const event = JSON.parse(
      await readFile(
        path.join(__dirname, '..', 'fixtures', 'events', 'ecr-push-cosign-signature.json'),
        'utf8',
      ),
    );
    const skipped = await invoke(() =>
      signHandler(
        { ...event, detail: { ...event.detail, 'repository-name': 'team-a/app' } },
        lambdaContext('signet-sign'),
      ),
    );
    expect(skipped.error).toBeUndefined();
    expect(kms.count('Sign')).toBe(signsBefore);
    expect(bus.events).toEqual([]);
    expect(metric(skipped.lines, 'Skipped')).toBe(1);
  });
});

describe('when the event is not an ECR push at all', () => {
  it('returns the field at fault instead of retrying', async () => {
    const event = { ...(await ecrEvent('team-a/app', 'sha256:1234', 'v1')) };
    const invalid = await invoke(() => signHandler(event, lambdaContext('signet-sign')));
    expect(invalid.error).toBeUndefined();
    expect(invalid.result).toMatchObject({ invalid: { field: 'detail.image-digest' } });
    expect(metric(invalid.lines, 'InvalidEvents')).toBe(1);
  });
});

describe('when the rule key cannot sign (a disabled KMS key)', () => {
  let digest: string;
  let event: EventBridgeEvent<'ECR Image Action', Record<string, string>>;
  let outcome: Invocation<SignResult>;

  beforeAll(async () => {
    digest = await push('team-b/api', 'v2', 'team-b');
    event = await ecrEvent('team-b/api', digest, 'v2');
    bus.events.length = 0;
    outcome = await invoke(() => signHandler(event, lambdaContext('signet-sign')));
  });

  it('throws, so that Lambda retries the event', () => {
    expect(outcome.error).toBeInstanceOf(SigningFailedError);
    expect(String((outcome.error as Error).message)).toMatch(
      /rule "team-b" \(witness "broken"\): KMS_DISABLED/,
    );
    expect(metric(outcome.lines, 'Failed')).toBe(1);
  });

  it('skips the rule whose witness is a local key file, and writes and announces nothing', async () => {
    // Logged once, when the configuration was loaded.
    expect(logEntries(output.jsonLines(), 'signing rule skipped in Lambda')).toEqual([
      expect.objectContaining({ level: 'WARN', rule: 'team-b-local', witness: 'laptop' }),
    ]);
    expect(await signatureLayers('team-b/api', digest)).toBeUndefined();
    expect(bus.events).toEqual([]);
  });

  describe('and Lambda gives up after its retries', () => {
    let failed: Invocation<unknown>;

    beforeAll(async () => {
      // The invocation record Lambda hands to the on-failure destination.
      const error = outcome.error as Error;
      const record = {
        version: '1.0',
        timestamp: new Date().toISOString(),
        requestContext: {
          requestId: randomUUID(),
          functionArn: 'arn:aws:lambda:us-east-1:111122223333:function:signet-sign:$LATEST',
          condition: 'RetriesExhausted',
          approximateInvokeCount: 3,
        },
        requestPayload: event,
        responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
        responsePayload: { errorType: error.name, errorMessage: error.message, trace: [] },
      };
      bus.events.length = 0;
      sqs.messages.length = 0;
      failed = await invoke(() => failureHandler(record, lambdaContext('signet-failure')));
    });

    it('keeps the original EventBridge event, unchanged, in the dead-letter queue', () => {
      expect(failed.error).toBeUndefined();
      expect(sqs.messages).toHaveLength(1);
      const [message] = sqs.messages;
      expect(message!.queueUrl).toBe(sqs.queueUrl('signet-dead-letters'));
      expect(JSON.parse(message!.body)).toEqual(event);
      expect(message!.attributes).toMatchObject({
        ErrorType: { DataType: 'String', StringValue: 'SigningFailedError' },
        Condition: { DataType: 'String', StringValue: 'RetriesExhausted' },
        ApproximateInvokeCount: { DataType: 'Number', StringValue: '3' },
      });
    });

    it('puts one Image Signing Failed event on the bus', () => {
      expect(bus.events).toHaveLength(1);
      expect(bus.events[0]).toMatchObject({
        Source: 'signet',
        DetailType: 'Image Signing Failed',
        EventBusName: BUS,
      });
      expect(bus.events[0]!.Detail).toMatchObject({
        registry: registry.host,
        repository: 'team-b/api',
        digest,
        tag: 'v2',
        condition: 'RetriesExhausted',
        attempts: 3,
        eventId: event.id,
        error: { type: 'SigningFailedError', message: expect.stringContaining('KMS_DISABLED') },
      });
    });
  });
});

describe('when EventBridge refuses the Image Signed event', () => {
  it('throws, so that the retry announces the signature (as already-signed)', async () => {
    const digest = await push('team-a/refused', 'v1', 'refused');
    const event = await ecrEvent('team-a/refused', digest, 'v1');
    bus.events.length = 0;
    bus.failNext(1);
    const first = await invoke(() => signHandler(event, lambdaContext('signet-sign')));
    expect((first.error as Error | undefined)?.name).toBe('EventPublishError');
    expect(await signatureLayers('team-a/refused', digest)).toHaveLength(1);
    const retry = await invoke(() => signHandler(event, lambdaContext('signet-sign')));
    expect(retry.error).toBeUndefined();
    expect(bus.events.map((e) => [e.Detail['repository'], e.Detail['status']])).toEqual([
      ['team-a/refused', 'already-signed'],
    ]);
  });
});
