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
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { AdmissionController } from '../lib/admission/controller';
import { ConfigError, describeError } from '../lib/core/errors';
import { secretDigest, type SecretDigest } from '../lib/http/auth';
import { handleRequest, type HttpResponse, type VerificationSurface } from '../lib/http/surface';
import { createSignet } from '../lib/signet';
import { CONFIG_ENV, ParameterConfig, configTtlSeconds, requireEnv } from './config';
import { FUNCTION_ENV, createLogger, createMetrics, libLogger } from './runtime';

const env = process.env;
const logger = createLogger();
const metrics = createMetrics();
const signetLogger = libLogger(logger);
const secrets = new SecretsManagerClient({});
const tokenSecret = requireEnv(env, FUNCTION_ENV.tokenSecret);

/** What a configuration builds: the verifier and controller, and the body limit. */
interface Verification {
  readonly surface: Omit<VerificationSurface, 'access'>;
  readonly maxBodyBytes: number;
}

const configuration = new ParameterConfig<Verification>({
  parameterName: requireEnv(env, CONFIG_ENV.parameter),
  ttlSeconds: configTtlSeconds(env),
  ssm: new SSMClient({}),
  baseDir: env['LAMBDA_TASK_ROOT'] ?? process.cwd(),
  logger: signetLogger,
  build: (config) => {
    const { verifier } = createSignet(config, { logger: signetLogger });
    return {
      surface: { verifier, controller: new AdmissionController({ verifier, logger: signetLogger }) },
      maxBodyBytes: config.server.maxBodyBytes,
    };
  },
});

// The token is read once per execution environment: rotating it means updating the secret and
// the webhook configurations, then letting environments recycle (or redeploying).
let token: Promise<SecretDigest> | undefined;
function expectedToken(): Promise<SecretDigest> {
  token ??= (async () => {
    let value: string | undefined;
    try {
      value = (await secrets.send(new GetSecretValueCommand({ SecretId: tokenSecret }))).SecretString;
    } catch (error) {
      throw new ConfigError(
        'CONFIG_UNREADABLE',
        `cannot read the verify token secret ${tokenSecret}: ${describeError(error)}`,
        { cause: error },
      );
    }
    if (value === undefined || value.trim() === '') {
      throw new ConfigError('CONFIG_INVALID', `the verify token secret ${tokenSecret} is empty`);
    }
    return secretDigest(value.trim());
  })().catch((error: unknown) => {
    token = undefined;
    throw error;
  });
  return token;
}
// Read config and token during init, when Lambda gives the function a full CPU.
configuration.get().catch(() => undefined);
expectedToken().catch(() => undefined);

/** A Function URL event in, `lib/http`'s answer out: the same surface as `signet serve`. */
async function route(event: LambdaFunctionURLEvent): Promise<LambdaFunctionURLResult> {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) headers[name.toLowerCase()] = value;
  const raw = event.body ?? '';
  const started = performance.now();
  const [access, { value: verification }] = await Promise.all([expectedToken(), configuration.get()]);
  const response = await handleRequest(
    {
      method: event.requestContext.http.method,
      path: event.rawPath || '/',
      headers,
      body: { $case: 'bytes', bytes: Buffer.from(raw, event.isBase64Encoded ? 'base64' : 'utf8') },
    },
    {
      logger: signetLogger,
      maxBodyBytes: verification.maxBodyBytes,
      verification: {
        ...verification.surface,
        access: { bearer: access, secretPath: undefined, tokenInPath: true },
      },
    },
  );
  record(response, performance.now() - started);
  return {
    statusCode: response.status,
    headers: { 'content-type': 'application/json', ...response.headers },
    body: JSON.stringify(response.body),
  };
}

function record(response: HttpResponse, ms: number): void {
  const review = response.body as { response?: { allowed?: unknown } } | undefined;
  if (response.status === 200 && typeof review?.response?.allowed === 'boolean') {
    metrics.addMetric('AdmissionLatency', MetricUnit.Milliseconds, ms);
    metrics.addMetric(review.response.allowed ? 'Admitted' : 'Denied', MetricUnit.Count, 1);
  } else if (response.status >= 500) {
    metrics.addMetric('VerifyErrors', MetricUnit.Count, 1);
  } else if (response.status >= 400) {
    metrics.addMetric('VerifyRefused', MetricUnit.Count, 1);
  }
}

/** The Lambda entry point. */
export const handler = middy(route)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .use({
    // The token or the configuration could not be read: fail closed with the same error body.
    onError: (request) => {
      logger.error('verify request failed', { cause: describeError(request.error) });
      metrics.addMetric('VerifyErrors', MetricUnit.Count, 1);
      const code = (request.error as { code?: string } | null)?.code ?? 'INTERNAL';
      request.response = {
        statusCode: 500,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ error: { code, message: describeError(request.error) } }),
      };
    },
  });
