/**
 * The verify Lambda behind a Function URL: the same request and response bodies as the local
 * service (`signet serve`): `POST /admission`, `POST /admission/<cluster>`, `POST /verify`,
 * `GET /healthz`.
 *
 * The Function URL's auth type is NONE because the Kubernetes apiserver calls webhooks with a
 * plain HTTPS client that cannot SigV4-sign (AWS_IAM auth would refuse every AdmissionReview).
 * Requests are authenticated here instead, with Signet's token (from Secrets Manager, read at
 * cold start): `Authorization: Bearer <token>`, or the token as the first path segment
 * (`/<token>/admission`) for apiservers that cannot be given a header (EKS: the webhook URL is
 * all a ValidatingWebhookConfiguration carries). `/healthz` needs no token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError, InputError, describeError, httpStatusOf, type SignetError } from '../lib/core/errors';
import { CONFIG_ENV, ParameterConfig, configTtlSeconds, requireEnv } from './config';
import { FUNCTION_ENV, createLogger, createMetrics, libLogger } from './runtime';
import { CLUSTER_HEADER, checkCluster } from '../lib/admission/requests';
import { buildVerifyRoutes, type VerifyRoutes } from './verify-routes';

/** The request had no valid token; answered 401. */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
  readonly code = 'UNAUTHORIZED';
}

/** No route for the method and path; answered 404 (or 405 for a known path). */
export class RouteError extends Error {
  override readonly name = 'RouteError';
  constructor(
    readonly code: 'NOT_FOUND' | 'METHOD_NOT_ALLOWED',
    message: string,
  ) {
    super(message);
  }
}

const env = process.env;
const logger = createLogger();
const metrics = createMetrics();
const signetLogger = libLogger(logger);
const secrets = new SecretsManagerClient({});
const tokenSecret = requireEnv(env, FUNCTION_ENV.tokenSecret);
const configuration = new ParameterConfig<VerifyRoutes>({
  parameterName: requireEnv(env, CONFIG_ENV.parameter),
  ttlSeconds: configTtlSeconds(env),
  ssm: new SSMClient({}),
  baseDir: env['LAMBDA_TASK_ROOT'] ?? process.cwd(),
  logger: signetLogger,
  build: (config) => buildVerifyRoutes(config, { logger: signetLogger }),
});

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

// The token is read once per execution environment: rotating it means updating the secret and
// the webhook configurations, then letting environments recycle (or redeploying).
let tokenDigest: Promise<Buffer> | undefined;
function expectedTokenDigest(): Promise<Buffer> {
  tokenDigest ??= (async () => {
    let value: string | undefined;
    try {
      value = (await secrets.send(new GetSecretValueCommand({ SecretId: tokenSecret }))).SecretString;
    } catch (error) {
      throw new ConfigError(
        'CONFIG_UNREADABLE',
        `cannot read the verify token secret ${tokenSecret}: ${describeError(error)}`,
        {
          cause: error,
        },
      );
    }
    if (value === undefined || value.trim() === '') {
      throw new ConfigError('CONFIG_INVALID', `the verify token secret ${tokenSecret} is empty`);
    }
    return digest(value.trim());
  })().catch((error: unknown) => {
    tokenDigest = undefined;
    throw error;
  });
  return tokenDigest;
}
// Read config and token during init, when Lambda gives the function a full CPU.
configuration.get().catch(() => undefined);
expectedTokenDigest().catch(() => undefined);

/** Compares in constant time (over digests, so lengths never leak either). */
const sameToken = (presented: string, expected: Buffer): boolean =>
  timingSafeEqual(digest(presented), expected);

async function route(event: LambdaFunctionURLEvent): Promise<LambdaFunctionURLResult> {
  const method = event.requestContext.http.method.toUpperCase();
  let requestPath = event.rawPath || '/';
  if (method === 'GET' && requestPath === '/healthz') return json(200, { status: 'ok' });

  const expected = await expectedTokenDigest();
  const segments = requestPath.split('/');
  let authorized = false;
  // `/<token>/admission`: the token as the first path segment.
  if (
    segments.length > 2 &&
    segments[1] !== undefined &&
    segments[1] !== '' &&
    sameToken(segments[1], expected)
  ) {
    authorized = true;
    requestPath = `/${segments.slice(2).join('/')}`;
  }
  const header = event.headers?.['authorization'];
  const bearer =
    header !== undefined && /^Bearer\s+/i.test(header) ? header.replace(/^Bearer\s+/i, '').trim() : undefined;
  if (!authorized && bearer !== undefined && bearer !== '' && sameToken(bearer, expected)) authorized = true;
  if (!authorized) throw new UnauthorizedError('a valid bearer token (or secret path) is required');
  if (method === 'GET' && requestPath === '/healthz') return json(200, { status: 'ok' });

  const { value: routes, config } = await configuration.get();
  const isAdmission = requestPath === '/admission' || requestPath.startsWith('/admission/');
  if (!isAdmission && requestPath !== '/verify') {
    throw new RouteError('NOT_FOUND', `${method} ${redact(event.rawPath)}`);
  }
  if (method !== 'POST') throw new RouteError('METHOD_NOT_ALLOWED', `${method} ${redact(event.rawPath)}`);

  if (isAdmission) {
    // The cluster: the path segment after /admission/, else the header (as the local service).
    const header = event.headers?.[CLUSTER_HEADER];
    const cluster =
      requestPath === '/admission'
        ? header === undefined || header === ''
          ? undefined
          : checkCluster(header, CLUSTER_HEADER)
        : checkCluster(requestPath.slice('/admission/'.length), 'cluster (path)');
    const review = readBody(event, config.server.maxBodyBytes, 'ADMISSION_REVIEW_INVALID');
    const started = performance.now();
    const answer = await routes.admission(review, cluster);
    metrics.addMetric('AdmissionLatency', MetricUnit.Milliseconds, performance.now() - started);
    metrics.addMetric(answer.allowed ? 'Admitted' : 'Denied', MetricUnit.Count, 1);
    return json(200, answer.body);
  }
  return json(200, await routes.verify(readBody(event, config.server.maxBodyBytes, 'REQUEST_INVALID')));
}

/** The JSON body of a POST, within the configured size limit. */
function readBody(
  event: LambdaFunctionURLEvent,
  limit: number,
  code: 'ADMISSION_REVIEW_INVALID' | 'REQUEST_INVALID',
): unknown {
  const raw = event.body ?? '';
  const bytes = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (bytes.length > limit) {
    throw new InputError('BODY_TOO_LARGE', 'body', `is ${bytes.length} bytes; the limit is ${limit}`);
  }
  if (bytes.length === 0) throw new InputError(code, 'body', 'is empty; expected JSON');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new InputError(code, 'body', `is not valid JSON (${describeError(error)})`);
  }
}

const json = (
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): LambdaFunctionURLResult => ({
  statusCode,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/** A path for messages and logs without a secret first segment in it. */
function redact(path: string): string {
  const segments = path.split('/');
  return segments.length > 2 ? `/…/${segments.slice(2).join('/')}` : path;
}

/** The status of every error the endpoint answers: here and nowhere else. */
function statusOf(error: unknown): number {
  if (error instanceof UnauthorizedError) return 401;
  if (error instanceof RouteError) return error.code === 'NOT_FOUND' ? 404 : 405;
  return httpStatusOf(error);
}

/** The Lambda entry point. */
export const handler = middy(route)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .use({
    // The one place errors become responses: same body as the local service's.
    onError: (request) => {
      const error = request.error;
      const status = statusOf(error);
      if (status >= 500)
        logger.error('verify request failed', { cause: describeError(error), errorType: error?.name });
      else logger.info('verify request refused', { status, code: (error as SignetError | null)?.code });
      metrics.addMetric(status >= 500 ? 'VerifyErrors' : 'VerifyRefused', MetricUnit.Count, 1);
      const code = (error as { code?: string } | null)?.code ?? 'INTERNAL';
      request.response = json(
        status,
        {
          error: {
            code,
            ...(error instanceof InputError ? { field: error.field } : {}),
            message: describeError(error),
          },
        },
        status === 401 ? { 'www-authenticate': 'Bearer' } : {},
      );
    },
  });
