/**
 * The real middy-wrapped verify handler, built by its factory and invoked with Lambda Function URL
 * events (payload 2.0) as the Function URL delivers them, against the real registry (an image
 * signed through KMS by Signet's pipeline), the local KMS (the witness's public key), and local
 * SSM (configuration) and Secrets Manager (token) endpoints that the handler's clients are
 * pointed at. The environment it reads is the typed one of `functions/env.ts`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { readVerifyEnv, verifyEnvironment } from '../../functions/env';
import type { LambdaHandler } from '../../functions/runtime';
import { makeVerifyHandler, verifyDependencies } from '../../functions/verify';
import { parseConfig } from '../../lib/config/load';
import { silentLogger } from '../../lib/core/logger';
import { parseReference } from '../../lib/core/reference';
import { createSignet } from '../../lib/signet';
import { AwsFault, startAwsJsonEndpoint, type AwsJsonEndpoint } from '../support/aws-endpoint';
import { makeImage, skopeoCopy } from '../support/images';
import { startKmsEndpoint, type CreatedKmsKey, type KmsEndpoint } from '../support/kms-endpoint';
import { captureOutput, lambdaContext, localClientConfig, useLambdaEnv } from '../support/lambda-harness';
import { startTestRegistry, type TestRegistry } from '../support/registry';
import { startSsmEndpoint, type SsmEndpoint } from '../support/ssm-endpoint';

jest.setTimeout(60_000);

const PARAMETER = '/signet/config';
const TOKEN = 'k8sWebhookToken0123456789abcdefghijklmnopqrstuv';
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:111122223333:secret:signet-verify-token-AbCdEf';
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'admission');

let dir: string;
let registry: TestRegistry;
let kms: KmsEndpoint;
let ssm: SsmEndpoint;
let secrets: AwsJsonEndpoint;
let key: CreatedKmsKey;
let signedDigest: string;
let clients: { ssm: SSMClient; secretsManager: SecretsManagerClient };
let handler: LambdaHandler<LambdaFunctionURLEvent, LambdaFunctionURLResult>;

useLambdaEnv();
captureOutput();

function configYaml(): string {
  return `
registries:
  - host: ${registry.host}
    insecure: true
witnesses:
  - name: release
    key: awskms://${kms.url.replace('http://', '')}/${key.keyId}
signingRules:
  - name: team-a
    namespaces: [team-a]
    witness: release
    algorithm: ECDSA_SHA_256
    trigger: manual
policies:
  - name: production
    enabled: true
    clusters: ["*"]
    namespaces: [production]
    images: ["${registry.host}/team-a/**"]
    attestors:
      - witnesses: [release]
    mode: enforce
    mutateDigest: true
server:
  maxBodyBytes: 65536
`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signet-verify-fn-'));
  [registry, kms, ssm] = await Promise.all([startTestRegistry(), startKmsEndpoint(), startSsmEndpoint()]);
  secrets = await startAwsJsonEndpoint({
    targetPrefix: 'secretsmanager',
    handlers: {
      GetSecretValue: (body: { SecretId?: string }) => {
        if (body.SecretId !== SECRET_ARN)
          throw new AwsFault('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
        return {
          ARN: SECRET_ARN,
          Name: 'signet-verify-token',
          SecretString: TOKEN,
          VersionId: randomUUID(),
          VersionStages: ['AWSCURRENT'],
        };
      },
    },
  });
  key = kms.createKey('ECC_NIST_P256');
  const yaml = configYaml();
  ssm.put(PARAMETER, yaml);

  // team-a/app:v1 signed with the KMS key by Signet's own pipeline; team-a/unsigned:v1 not signed.
  const layout = path.join(dir, 'layout');
  await makeImage(layout, { seed: 'verify-signed' });
  signedDigest = await skopeoCopy(layout, `${registry.host}/team-a/app:v1`);
  const other = path.join(dir, 'other');
  await makeImage(other, { seed: 'verify-unsigned' });
  await skopeoCopy(other, `${registry.host}/team-a/unsigned:v1`);
  const signet = createSignet(parseConfig(yaml, { baseDir: dir }), { logger: silentLogger });
  const report = await signet.pipeline.signImage(parseReference(`${registry.host}/team-a/app:v1`), 'team-a');
  expect(report.outcomes.map((o) => o.status)).toEqual(['signed']);
  signet.keys.close();

  clients = {
    ssm: new SSMClient(localClientConfig(ssm.url)),
    secretsManager: new SecretsManagerClient(localClientConfig(secrets.url)),
  };
  const env = readVerifyEnv({
    ...verifyEnvironment({ configParameter: PARAMETER, configTtlSeconds: 60, tokenSecret: SECRET_ARN }),
    LAMBDA_TASK_ROOT: dir,
  });
  handler = makeVerifyHandler(verifyDependencies(env, clients));
});

afterAll(async () => {
  for (const client of Object.values(clients ?? {})) client.destroy();
  await Promise.all([registry?.stop(), kms?.close(), ssm?.close(), secrets?.close()]);
  await rm(dir, { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked field by field
type JsonBody = any;

/** A Function URL request (payload format 2.0) as the apiserver's webhook call arrives. */
function urlEvent(
  method: string,
  rawPath: string,
  options: { body?: string; headers?: Record<string, string>; base64?: boolean } = {},
): LambdaFunctionURLEvent {
  const host = 'abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws';
  const body = options.body;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: 'timeout=10s',
    headers: {
      host,
      'content-type': 'application/json',
      accept: 'application/json, */*',
      'user-agent': 'kube-apiserver-admission',
      'x-forwarded-proto': 'https',
      ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}),
      ...options.headers,
    },
    queryStringParameters: { timeout: '10s' },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abcdefghijklmnopqrstuvwxyz012345',
      domainName: host,
      domainPrefix: 'abcdefghijklmnopqrstuvwxyz012345',
      http: {
        method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.10',
        userAgent: 'kube-apiserver-admission',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: '23/Nov/2026:10:00:00 +0000',
      timeEpoch: Date.now(),
    },
    ...(body !== undefined
      ? {
          body: options.base64 ? Buffer.from(body).toString('base64') : body,
          isBase64Encoded: options.base64 ?? false,
        }
      : { isBase64Encoded: false }),
  };
}

async function call(
  event: LambdaFunctionURLEvent,
): Promise<{ statusCode: number; headers: Record<string, string>; json: JsonBody }> {
  const result = (await handler(event, lambdaContext('signet-verify', { memoryLimitInMB: 1024 }))) as {
    statusCode: number;
    headers: Record<string, string>;
    body: string;
  };
  return { statusCode: result.statusCode, headers: result.headers, json: JSON.parse(result.body) };
}

/** The pod-create fixture with these container images. */
async function podReview(images: string[]): Promise<{ uid: string; body: string }> {
  const review = JSON.parse(await readFile(path.join(FIXTURES, 'pod-create.json'), 'utf8'));
  review.request.uid = randomUUID();
  review.request.object.spec.containers = images.map((image, i) => ({ name: `c${i}`, image }));
  delete review.request.object.spec.initContainers;
  return { uid: review.request.uid, body: JSON.stringify(review) };
}

const bearer = { authorization: `Bearer ${TOKEN}` };

describe('POST /admission with the bearer token', () => {
  it('admits a pod whose image the witness signed, patching the tag to the digest', async () => {
    const review = await podReview([`${registry.host}/team-a/app:v1`]);
    const res = await call(urlEvent('POST', '/admission', { body: review.body, headers: bearer }));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: review.uid, allowed: true, patchType: 'JSONPatch' },
    });
    const patch = JSON.parse(Buffer.from(res.json.response.patch, 'base64').toString());
    expect(JSON.stringify(patch)).toContain(`${registry.host}/team-a/app:v1@${signedDigest}`);
  });

  it('denies a pod with an unsigned image, naming image and policy', async () => {
    const review = await podReview([`${registry.host}/team-a/unsigned:v1`]);
    const res = await call(urlEvent('POST', '/admission', { body: review.body, headers: bearer }));
    expect(res.statusCode).toBe(200);
    expect(res.json.response).toMatchObject({ uid: review.uid, allowed: false, status: { code: 403 } });
    expect(res.json.response.status.message).toContain(`${registry.host}/team-a/unsigned:v1`);
    expect(res.json.response.status.message).toContain('production');
  });

  it('accepts a base64-encoded body and the cluster in the path', async () => {
    const review = await podReview([`${registry.host}/team-a/app:v1`]);
    const res = await call(
      urlEvent('POST', '/admission/prod-eu-1', { body: review.body, headers: bearer, base64: true }),
    );
    expect(res.statusCode).toBe(200);
    expect(res.json.response).toMatchObject({ uid: review.uid, allowed: true });
  });
});

describe('POST /<token>/admission (secret path, for apiservers that send no header)', () => {
  it('admits like the bearer form', async () => {
    const review = await podReview([`${registry.host}/team-a/app:v1`]);
    const res = await call(urlEvent('POST', `/${TOKEN}/admission`, { body: review.body }));
    expect(res.statusCode).toBe(200);
    expect(res.json.response).toMatchObject({ uid: review.uid, allowed: true });
  });
});

describe('without a valid token', () => {
  it.each([
    [
      'a wrong bearer token',
      urlEvent('POST', '/admission', { body: '{}', headers: { authorization: 'Bearer nope' } }),
    ],
    ['no token at all', urlEvent('POST', '/admission', { body: '{}' })],
    ['a wrong secret path', urlEvent('POST', '/not-the-token/admission', { body: '{}' })],
  ])('answers 401 for %s', async (_case, event) => {
    const res = await call(event);
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.json).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
  });
});

describe('malformed requests', () => {
  it('answers 400 naming the field for a body that is not JSON', async () => {
    const res = await call(urlEvent('POST', '/admission', { body: '{"kind":', headers: bearer }));
    expect(res.statusCode).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'ADMISSION_REVIEW_INVALID', field: 'body' });
  });

  it('answers 413 for a body over server.maxBodyBytes', async () => {
    const res = await call(
      urlEvent('POST', '/admission', { body: JSON.stringify({ pad: 'x'.repeat(70_000) }), headers: bearer }),
    );
    expect(res.statusCode).toBe(413);
    expect(res.json.error.code).toBe('BODY_TOO_LARGE');
  });

  it('answers 404 for an unknown path and 405 for a known one with the wrong method', async () => {
    expect((await call(urlEvent('POST', '/elsewhere', { body: '{}', headers: bearer }))).statusCode).toBe(
      404,
    );
    expect((await call(urlEvent('GET', '/admission', { headers: bearer }))).statusCode).toBe(405);
  });
});

describe('POST /verify', () => {
  it('answers the decision for one image', async () => {
    const body = JSON.stringify({ image: `${registry.host}/team-a/app:v1`, namespace: 'production' });
    const res = await call(urlEvent('POST', '/verify', { body, headers: bearer }));
    expect(res.statusCode).toBe(200);
    expect(res.json).toMatchObject({ allowed: true, digest: signedDigest, namespace: 'production' });
  });

  it('answers 400 naming an unknown field', async () => {
    const res = await call(
      urlEvent('POST', '/verify', { body: JSON.stringify({ img: 'x' }), headers: bearer }),
    );
    expect(res.statusCode).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'REQUEST_INVALID', field: 'img' });
  });
});

describe('GET /healthz', () => {
  it('answers without a token', async () => {
    const res = await call(urlEvent('GET', '/healthz'));
    expect(res.statusCode).toBe(200);
    expect(res.json).toEqual({ status: 'ok' });
  });
});

describe('when the token secret cannot be read', () => {
  it('fails closed: 500 with the error code, for every route that needs the token', async () => {
    const env = readVerifyEnv({
      ...verifyEnvironment({
        configParameter: PARAMETER,
        configTtlSeconds: 60,
        tokenSecret: `${SECRET_ARN}-gone`,
      }),
      LAMBDA_TASK_ROOT: dir,
    });
    const broken = makeVerifyHandler(verifyDependencies(env, clients));
    const review = await podReview([`${registry.host}/team-a/app:v1`]);
    const result = (await broken(
      urlEvent('POST', '/admission', { body: review.body, headers: bearer }),
      lambdaContext('signet-verify'),
    )) as { statusCode: number; body: string };
    expect(result.statusCode).toBe(500);
    expect(JSON.parse(result.body).error).toMatchObject({ code: 'CONFIG_UNREADABLE' });
  });
});
