/**
 * `signet replay` end to end, in process through `main`: the dead-letter queue is the local SQS
 * (AWS JSON 1.0, real `@aws-sdk/client-sqs`), filled the way AWS fills it: by the real failure
 * function (its invocation record in, the original event out), as EventBridge's target DLQ writes
 * (body: the event), and as Lambda's own DLQ writes (body: the invocation record). Witnesses are
 * keys of the local KMS (real `@aws-sdk/client-kms`); the registry is the real distribution
 * registry. ECR host names are not reachable, so, as the sign function does with
 * `SIGNET_ECR_REGISTRY_HOST`, the replay is told the registry host to use instead
 * (`--registry-host`). Signatures are checked with plain fetch and node:crypto only.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { SQSClient, SendMessageCommand, type MessageAttributeValue } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { main } from '../../cli/main';
import type { ReplaySummary } from '../../cli/replay';
import { InputError } from '../../lib/core/errors';
import { startEventBridgeEndpoint, type EventBridgeEndpoint } from '../support/eventbridge-endpoint';
import { freePort } from '../support/ports';
import { startKmsEndpoint, type CreatedKmsKey, type KmsEndpoint } from '../support/kms-endpoint';
import { checkSignatures, pushImageOverHttp, type TrustedKey } from '../support/oci-http';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import { startSqsEndpoint, type SqsEndpoint } from '../support/sqs-endpoint';

jest.setTimeout(60_000);

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'events', 'ecr-push-tag.json');
const BUS = 'arn:aws:events:us-east-1:111122223333:event-bus/signet';

let dir: string;
let configFile: string;
let registry: TestRegistry;
let kms: KmsEndpoint;
let sqs: SqsEndpoint;
let bus: EventBridgeEndpoint;
let sqsClient: SQSClient;
let release: CreatedKmsKey;
let broken: CreatedKmsKey;
let queueUrl: string;
let failure: typeof import('../../functions/failure');
const savedEnv = { ...process.env };
const logged: string[] = [];
let spies: jest.SpyInstance[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-replay-'));
  [registry, kms, sqs, bus] = await Promise.all([
    startTestRegistry(),
    startKmsEndpoint(),
    startSqsEndpoint(),
    startEventBridgeEndpoint(),
  ]);
  release = kms.createKey('ECC_NIST_P256');
  broken = kms.createKey('ECC_NIST_P256', { state: 'Disabled' });
  queueUrl = sqs.queueUrl('signet-dead-letters');
  const kmsHost = kms.url.replace('http://', '');
  configFile = path.join(dir, 'signet.yaml');
  // The same file `cdk deploy` would put in SSM: the laptop rule is `signet serve`'s, and the
  // sign function (hence the replay) leaves it out.
  await writeFile(
    configFile,
    `
registries:
  - host: ${registry.host}
    insecure: true
witnesses:
  - name: release
    key: awskms://${kmsHost}/${release.keyId}
  - name: broken
    key: awskms://${kmsHost}/${broken.keyId}
  - name: laptop
    key: file://keys/laptop.pem
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
  - name: team-a-laptop
    namespaces: [team-a]
    witness: laptop
    algorithm: ECDSA_SHA_256
  - name: team-b
    namespaces: [team-b]
    witness: broken
    algorithm: ECDSA_SHA_256
`,
  );
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDSIGNETTEST',
    AWS_SECRET_ACCESS_KEY: 'signet-test-secret',
    AWS_ENDPOINT_URL_SQS: sqs.url,
    AWS_ENDPOINT_URL_EVENTBRIDGE: bus.url,
    SIGNET_EVENT_BUS: BUS,
    SIGNET_DLQ_URL: queueUrl,
  });
  delete process.env['SIGNET_ECR_REGISTRY_HOST'];
  // Powertools (failure function) and Signet's JSON logs, kept for the assertions.
  spies = [process.stdout, process.stderr].map((stream) =>
    jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      logged.push(String(chunk));
      return true;
    }),
  );
  failure = await import('../../functions/failure');
  sqsClient = new SQSClient({ endpoint: sqs.url });
});

afterAll(async () => {
  for (const spy of spies) spy.mockRestore();
  process.env = savedEnv;
  sqsClient?.destroy();
  await Promise.all([registry?.stop(), kms?.close(), sqs?.close(), bus?.close()]);
  await rm(dir, { recursive: true, force: true });
});

/** Runs `signet replay` in process; returns its exit code and parsed summary. */
async function replay(...extra: string[]): Promise<{ code: number; summary: ReplaySummary }> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const code = await main(
    [
      'replay',
      '--queue',
      queueUrl,
      '--config',
      configFile,
      '--endpoint',
      sqs.url,
      '--registry-host',
      registry.host,
      '--log-level',
      'warn',
      ...extra,
    ],
    out as unknown as typeof process.stdout,
    new PassThrough() as unknown as typeof process.stderr,
  );
  return { code, summary: JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReplaySummary };
}

/** The ECR event EventBridge delivers for a push (the documented sample, with this push in it). */
async function ecrEvent(repository: string, digest: string, tag: string): Promise<Record<string, unknown>> {
  const event = JSON.parse(await readFile(FIXTURE, 'utf8')) as Record<string, unknown>;
  return {
    ...event,
    id: randomUUID(),
    detail: {
      ...(event['detail'] as object),
      'repository-name': repository,
      'image-digest': digest,
      'image-tag': tag,
    },
  };
}

/** The record Lambda hands to an on-failure destination (or writes to a function's DLQ). */
function invocationRecord(event: unknown, errorMessage: string): Record<string, unknown> {
  return {
    version: '1.0',
    timestamp: new Date().toISOString(),
    requestContext: {
      requestId: randomUUID(),
      functionArn: 'arn:aws:lambda:us-west-2:123456789012:function:signet-sign:$LATEST',
      condition: 'RetriesExhausted',
      approximateInvokeCount: 3,
    },
    requestPayload: event,
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    responsePayload: { errorType: 'SigningFailedError', errorMessage, trace: [] },
  };
}

function lambdaContext(name: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:111122223333:function:${name}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: '2026/01/01/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Dead-letters an event the way the failure function does; returns the new message id. */
async function deadLetterViaFailureFunction(event: unknown): Promise<string> {
  const before = new Set(sqs.messages.map((m) => m.messageId));
  await failure.handler(
    invocationRecord(event, 'signing failed: rule "team-a": KMS_THROTTLED'),
    lambdaContext('signet-failure'),
  );
  const added = sqs.messages.filter((m) => !before.has(m.messageId));
  expect(added).toHaveLength(1);
  return added[0]!.messageId;
}

async function send(body: string, attributes: Record<string, MessageAttributeValue> = {}): Promise<string> {
  const sent = await sqsClient.send(
    new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, MessageAttributes: attributes }),
  );
  return sent.MessageId as string;
}

const text = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });

/** Valid signatures of a digest, by witness, checked independently. */
async function signatures(repository: string, digest: string, keys: readonly TrustedKey[]) {
  return checkSignatures(registry.url, repository, digest, keys);
}

const releaseKey = (): TrustedKey => ({
  witness: 'release',
  algorithm: 'ECDSA_SHA_256',
  publicKey: release.publicKey,
});
const brokenKey = (): TrustedKey => ({
  witness: 'broken',
  algorithm: 'ECDSA_SHA_256',
  publicKey: broken.publicKey,
});

interface Image {
  repository: string;
  tag: string;
  digest: string;
  event: Record<string, unknown>;
}

async function image(repository: string, tag: string): Promise<Image> {
  const digest = await pushImageOverHttp(registry.url, repository, tag, `${repository}:${tag}`);
  return { repository, tag, digest, event: await ecrEvent(repository, digest, tag) };
}

describe('signet replay', () => {
  let fromFailureFunction: Image;
  let fromEventBridge: Image;
  let fromLambdaDlq: Image;
  let stillFailing: Image;
  const ids: Record<string, string> = {};
  let first: { code: number; summary: ReplaySummary };

  beforeAll(async () => {
    [fromFailureFunction, fromEventBridge, fromLambdaDlq, stillFailing] = await Promise.all([
      image('team-a/app', 'v1'),
      image('team-a/api', 'v2'),
      image('team-a/web', 'v3'),
      image('team-b/svc', 'v4'),
    ]);
    ids['failureFunction'] = await deadLetterViaFailureFunction(fromFailureFunction.event);
    ids['eventBridge'] = await send(JSON.stringify(fromEventBridge.event), {
      RULE_ARN: text('arn:aws:events:us-west-2:123456789012:rule/signet-ecr-push'),
      TARGET_ARN: text('arn:aws:lambda:us-west-2:123456789012:function:signet-sign'),
      ERROR_CODE: text('SDK_CLIENT_ERROR'),
      ERROR_MESSAGE: text('Unable to invoke the Lambda function'),
    });
    ids['lambdaDlq'] = await send(JSON.stringify(invocationRecord(fromLambdaDlq.event, 'KMS_THROTTLED')), {
      RequestID: text(randomUUID()),
      ErrorCode: { DataType: 'Number', StringValue: '200' },
      ErrorMessage: text('Rate exceeded'),
    });
    ids['stillFailing'] = await deadLetterViaFailureFunction(stillFailing.event);
    ids['notJson'] = await send('this is not JSON');
    ids['notEcr'] = await send(JSON.stringify({ ...fromEventBridge.event, source: 'aws.s3' }));
    first = await replay();
  });

  it('receives every message with its attributes, ten at most at a time, and hides them while it works', () => {
    const receives = sqs.calls.filter((c) => c.operation === 'ReceiveMessage');
    expect(receives.length).toBeGreaterThan(0);
    for (const call of receives) {
      expect(call.body).toMatchObject({
        QueueUrl: queueUrl,
        MessageAttributeNames: ['All'],
        VisibilityTimeout: 120,
      });
      expect(call.body['MaxNumberOfMessages']).toBeLessThanOrEqual(10);
    }
    expect(first.summary.received).toBe(6);
  });

  it('signs the image of each readable dead letter, whatever shape carries the event', async () => {
    for (const pushed of [fromFailureFunction, fromEventBridge, fromLambdaDlq]) {
      const check = await signatures(pushed.repository, pushed.digest, [releaseKey()]);
      expect({ image: pushed.repository, problems: check.problems }).toEqual({
        image: pushed.repository,
        problems: [],
      });
      expect(check.layers).toBe(1);
      expect(check.byWitness.get('release')).toBe(1);
    }
  });

  it('writes the registry host it was given into the payload, as the sign function does', async () => {
    const { repository, digest, tag } = fromFailureFunction;
    const res = await fetch(`${registry.url}/v2/${repository}/manifests/${digest.replace(':', '-')}.sig`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    const manifest = (await res.json()) as { layers: { digest: string }[] };
    const blob = await fetch(`${registry.url}/v2/${repository}/blobs/${manifest.layers[0]!.digest}`);
    const payload = (await blob.json()) as { critical: { identity: { 'docker-reference': string } } };
    expect(payload.critical.identity['docker-reference']).toBe(`${registry.host}/${repository}:${tag}`);
  });

  it('signs only with the rules the sign function runs (KMS witnesses), and says which it left out', () => {
    expect(logged.join('')).toContain('"rule":"team-a-laptop"');
  });

  it('deletes exactly the messages whose image is now signed', () => {
    const left = sqs.messages.map((m) => m.messageId).sort();
    expect(left).toEqual([ids['stillFailing'], ids['notJson'], ids['notEcr']].sort());
    expect(sqs.calls.filter((c) => c.operation === 'DeleteMessage')).toHaveLength(3);
  });

  it('leaves the message whose signing fails again, and reports why', async () => {
    const failed = first.summary.messages.find((m) => m.messageId === ids['stillFailing']);
    expect(failed).toMatchObject({
      result: 'failed',
      deleted: false,
      signed: 0,
      failures: [expect.stringContaining('KMS_DISABLED')],
      deadLettered: expect.stringContaining('SigningFailedError'),
    });
    expect((await signatures(stillFailing.repository, stillFailing.digest, [brokenKey()])).exists).toBe(
      false,
    );
  });

  it('reports malformed messages by id and field, and leaves them', () => {
    const byId = new Map(first.summary.messages.map((m) => [m.messageId, m]));
    expect(byId.get(ids['notJson']!)).toMatchObject({ result: 'invalid', field: 'body', deleted: false });
    expect(byId.get(ids['notEcr']!)).toMatchObject({ result: 'invalid', field: 'source', deleted: false });
  });

  it('prints the summary and exits 1, because messages are left', () => {
    expect(first.code).toBe(1);
    expect(first.summary).toMatchObject({
      queue: queueUrl,
      dryRun: false,
      received: 6,
      replayed: 3,
      signed: 3,
      alreadySigned: 0,
      failed: 1,
      malformed: 2,
      unmatched: 0,
      left: 3,
    });
  });

  describe('when the same events are dead-lettered again and replayed a second time', () => {
    let second: { code: number; summary: ReplaySummary };
    let signsBefore: number;

    beforeAll(async () => {
      signsBefore = kms.count('Sign');
      // A failure function retry may write its message twice; EventBridge may deliver twice.
      await deadLetterViaFailureFunction(fromFailureFunction.event);
      await send(JSON.stringify(fromEventBridge.event));
      second = await replay();
    });

    it('finds them already signed, signs nothing, adds no layer and deletes them', async () => {
      expect(second.summary).toMatchObject({
        received: 2,
        replayed: 2,
        signed: 0,
        alreadySigned: 2,
        failed: 0,
        left: 0,
      });
      expect(second.code).toBe(0);
      expect(kms.count('Sign')).toBe(signsBefore);
      for (const pushed of [fromFailureFunction, fromEventBridge]) {
        const check = await signatures(pushed.repository, pushed.digest, [releaseKey()]);
        expect([check.layers, check.byWitness.get('release'), check.problems]).toEqual([1, 1, []]);
      }
    });

    it('does not see the messages left by the first run while they are invisible', () => {
      expect(second.summary.messages.map((m) => m.messageId)).not.toContain(ids['stillFailing']);
      expect(sqs.messages.map((m) => m.messageId)).toContain(ids['stillFailing']);
    });
  });

  describe('when the cause is fixed and the left messages are visible again', () => {
    let third: { code: number; summary: ReplaySummary };

    beforeAll(async () => {
      kms.setKeyState(broken.keyId, 'Enabled');
      sqs.expireVisibility();
      third = await replay();
    });

    it('signs and deletes the message that failed before, and leaves the malformed ones again', async () => {
      expect(third.summary).toMatchObject({
        received: 3,
        replayed: 1,
        signed: 1,
        failed: 0,
        malformed: 2,
        left: 2,
      });
      expect(third.code).toBe(1);
      const check = await signatures(stillFailing.repository, stillFailing.digest, [brokenKey()]);
      expect([check.layers, check.byWitness.get('broken'), check.problems]).toEqual([1, 1, []]);
      expect(sqs.messages.map((m) => m.messageId).sort()).toEqual([ids['notJson'], ids['notEcr']].sort());
      expect(sqs.messages.map((m) => m.receiveCount)).toEqual([2, 2]);
    });
  });

  describe('with --dry-run', () => {
    let pushed: Image;
    let id: string;
    let dry: { code: number; summary: ReplaySummary };

    beforeAll(async () => {
      pushed = await image('team-a/dry', 'v5');
      id = await send(JSON.stringify(pushed.event));
      dry = await replay('--dry-run');
    });

    it('reports what it would sign, signs nothing and leaves the message visible', async () => {
      expect(dry.code).toBe(0);
      expect(dry.summary).toMatchObject({ dryRun: true, received: 1, replayed: 0, signed: 0, left: 1 });
      expect(dry.summary.messages).toEqual([
        expect.objectContaining({
          messageId: id,
          result: 'would-sign',
          rules: ['team-a'],
          images: [`${registry.host}/team-a/dry:v5@${pushed.digest}`],
        }),
      ]);
      expect((await signatures(pushed.repository, pushed.digest, [releaseKey()])).exists).toBe(false);
      expect(sqs.visible(queueUrl).map((m) => m.messageId)).toEqual([id]);
    });

    it('and a replay with --max 1 then signs it', async () => {
      const real = await replay('--max', '1');
      expect(real.summary).toMatchObject({ received: 1, replayed: 1, signed: 1 });
      expect(
        (await signatures(pushed.repository, pushed.digest, [releaseKey()])).byWitness.get('release'),
      ).toBe(1);
    });
  });
});

describe('signet replay with bad options', () => {
  const run = (...argv: string[]) =>
    main(
      ['replay', ...argv],
      new PassThrough() as unknown as typeof process.stdout,
      new PassThrough() as unknown as typeof process.stderr,
    );

  /** The error `main` rejects with, as class, code and field. */
  const refusal = (argv: string[]) =>
    run(...argv).then(
      () => 'accepted',
      (error: unknown) =>
        error instanceof InputError ? `${error.name} ${error.code} ${error.field}` : String(error),
    );

  it.each([
    [['--config', 'signet.yaml'], '--queue'],
    [['--queue', 'sqs://queue'], '--queue'],
    [['--queue', 'http://127.0.0.1:9324/only-a-name'], '--queue'],
    [['--queue', 'http://127.0.0.1:9324/111122223333/q', '--max', '0'], '--max'],
    [['--queue', 'http://127.0.0.1:9324/111122223333/q', '--endpoint', 'localhost:9324'], '--endpoint'],
    [
      ['--queue', 'http://127.0.0.1:9324/111122223333/q', '--registry-host', 'http://127.0.0.1:5000'],
      '--registry-host',
    ],
    [['stray', '--queue', 'http://127.0.0.1:9324/111122223333/q'], 'replay'],
  ])('refuses %j naming %s, before reading any config or queue', async (argv, field) => {
    expect(await refusal(argv)).toBe(`InputError REQUEST_INVALID ${field}`);
  });

  it('says which queue it cannot read, and prints no summary', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const out = new PassThrough();
    const printed: Buffer[] = [];
    out.on('data', (c: Buffer) => printed.push(c));
    const argv = [
      'replay',
      '--queue',
      `${nobody}/111122223333/q`,
      '--endpoint',
      nobody,
      '--config',
      configFile,
    ];
    const refused = await main(argv, out as unknown as typeof process.stdout).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(refused)).toContain(`cannot receive from ${nobody}/111122223333/q`);
    expect(Buffer.concat(printed).toString()).toBe('');
  });
});
