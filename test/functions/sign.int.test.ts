/**
 * The real middy-wrapped sign and failure handlers, invoked the way Lambda invokes them, against
 * real servers: the CNCF distribution registry (images pushed with skopeo), a local KMS behind
 * the AWS SDK (awskms://127.0.0.1:<port>/<key id>), and local SSM, EventBridge and SQS endpoints
 * reached through the SDK's AWS_ENDPOINT_URL_<SERVICE> variables. Signatures are checked with
 * plain fetch + node:crypto, never with Signet's own verification code.
 */
import { createHash, randomUUID, verify } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Context, EventBridgeEvent } from 'aws-lambda';
import { startEventBridgeEndpoint, type EventBridgeEndpoint } from '../support/eventbridge-endpoint';
import { startKmsEndpoint, type CreatedKmsKey, type KmsEndpoint } from '../support/kms-endpoint';
import { makeImage, skopeoCopy } from '../support/images';
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
let sign: typeof import('../../functions/sign');
let failure: typeof import('../../functions/failure');
const savedEnv = { ...process.env };
// Everything the handlers write (Powertools JSON logs, warnings and errors on stderr, EMF
// metrics on stdout), from cold start on.
const written: string[] = [];
let spies: jest.SpyInstance[] = [];

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
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDSIGNETTEST',
    AWS_SECRET_ACCESS_KEY: 'signet-test-secret',
    AWS_ENDPOINT_URL_SSM: ssm.url,
    AWS_ENDPOINT_URL_EVENTBRIDGE: bus.url,
    AWS_ENDPOINT_URL_SQS: sqs.url,
    SIGNET_CONFIG_PARAMETER: PARAMETER,
    SIGNET_EVENT_BUS: BUS,
    SIGNET_DLQ_URL: sqs.queueUrl('signet-dead-letters'),
    // ECR events name <account>.dkr.ecr.<region>.amazonaws.com; here the registry stands in for it.
    SIGNET_ECR_REGISTRY_HOST: registry.host,
    POWERTOOLS_LOG_LEVEL: 'INFO',
  });
  spies = [process.stdout, process.stderr].map((stream) =>
    jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }),
  );
  sign = await import('../../functions/sign');
  failure = await import('../../functions/failure');
});

afterAll(async () => {
  for (const spy of spies) spy.mockRestore();
  process.env = savedEnv;
  await Promise.all([registry?.stop(), kms?.close(), ssm?.close(), bus?.close(), sqs?.close()]);
  await rm(dir, { recursive: true, force: true });
});

/** A Lambda context as the runtime passes it. */
function lambdaContext(name: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:111122223333:function:${name}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: '2026/01/01/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** JSON lines written since `from` (an index into `written`). */
function jsonLines(from = 0): Record<string, unknown>[] {
  return written
    .slice(from)
    .join('')
    .split('\n')
    .filter((line) => line.startsWith('{"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Runs one invocation; returns its result or error and the stdout JSON lines it wrote. */
async function invoke<T>(
  run: () => Promise<T>,
): Promise<{ result: T | undefined; error: unknown; lines: Record<string, unknown>[] }> {
  const from = written.length;
  let result: T | undefined;
  let error: unknown;
  try {
    result = await run();
  } catch (err) {
    error = err;
  }
  return { result, error, lines: jsonLines(from) };
}

/** The sum of an EMF metric over the captured lines. */
function metric(lines: Record<string, unknown>[], name: string): number {
  return lines
    .filter((line) => line['_aws'] !== undefined && typeof line[name] === 'number')
    .reduce((sum, line) => sum + (line[name] as number), 0);
}

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
  let outcome: Awaited<ReturnType<typeof invoke>>;

  beforeAll(async () => {
    digest = await push('team-a/app', 'v1', 'team-a');
    const event = await ecrEvent('team-a/app', digest, 'v1');
    bus.events.length = 0;
    outcome = await invoke(() => sign.handler(event, lambdaContext('signet-sign')));
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
        sign.handler(await ecrEvent('team-a/app', digest, 'v1'), lambdaContext('signet-sign')),
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
      sign.handler(
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
    const invalid = await invoke(() => sign.handler(event, lambdaContext('signet-sign')));
    expect(invalid.error).toBeUndefined();
    expect(invalid.result).toMatchObject({ invalid: { field: 'detail.image-digest' } });
    expect(metric(invalid.lines, 'InvalidEvents')).toBe(1);
  });
});

describe('when the rule key cannot sign (a disabled KMS key)', () => {
  let digest: string;
  let event: EventBridgeEvent<'ECR Image Action', Record<string, string>>;
  let outcome: Awaited<ReturnType<typeof invoke>>;

  beforeAll(async () => {
    digest = await push('team-b/api', 'v2', 'team-b');
    event = await ecrEvent('team-b/api', digest, 'v2');
    bus.events.length = 0;
    outcome = await invoke(() => sign.handler(event, lambdaContext('signet-sign')));
  });

  it('throws, so that Lambda retries the event', () => {
    expect(outcome.error).toBeInstanceOf(sign.SigningFailedError);
    expect(String((outcome.error as Error).message)).toMatch(
      /rule "team-b" \(witness "broken"\): KMS_DISABLED/,
    );
    expect(metric(outcome.lines, 'Failed')).toBe(1);
  });

  it('skips the rule whose witness is a local key file, and writes and announces nothing', async () => {
    // Logged once, when the configuration was loaded.
    expect(jsonLines().filter((l) => l['message'] === 'signing rule skipped in Lambda')).toEqual([
      expect.objectContaining({ level: 'WARN', rule: 'team-b-local', witness: 'laptop' }),
    ]);
    expect(await signatureLayers('team-b/api', digest)).toBeUndefined();
    expect(bus.events).toEqual([]);
  });

  describe('and Lambda gives up after its retries', () => {
    let failed: Awaited<ReturnType<typeof invoke>>;

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
      failed = await invoke(() => failure.handler(record, lambdaContext('signet-failure')));
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
    const first = await invoke(() => sign.handler(event, lambdaContext('signet-sign')));
    expect((first.error as Error | undefined)?.name).toBe('EventPublishError');
    expect(await signatureLayers('team-a/refused', digest)).toHaveLength(1);
    const retry = await invoke(() => sign.handler(event, lambdaContext('signet-sign')));
    expect(retry.error).toBeUndefined();
    expect(bus.events.map((e) => [e.Detail['repository'], e.Detail['status']])).toEqual([
      ['team-a/refused', 'already-signed'],
    ]);
  });
});
