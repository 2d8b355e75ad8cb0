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
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { AdmissionController } from '../lib/admission/controller';
import { DEFAULTS } from '../lib/config/defaults';
import { ConfigError, describeError } from '../lib/core/errors';
import type { Logger } from '../lib/core/logger';
import { secretDigest, type SecretDigest } from '../lib/http/auth';
import { handleRequest, type HttpResponse, type VerificationSurface } from '../lib/http/surface';
import { DynamoLedger } from '../lib/ledger/dynamodb';
import { LedgerRecorder } from '../lib/ledger/recorder';
import { createSignet } from '../lib/signet';
import { ParameterConfig, type ConfigSource } from './config';
import { readVerifyEnv, type VerifyFunctionEnv, FUNCTION_METRICS } from './env';
import {
  createLogger,
  createMetrics,
  handlerFromEnvironment,
  libLogger,
  type LambdaHandler,
  type Observability,
} from './runtime';

/** What a configuration builds: the verifier and controller, and the body limit. */
export interface Verification {
  readonly surface: Omit<VerificationSurface, 'access'>;
  readonly maxBodyBytes: number;
  /** Queues the decisions for the ledger table; flushed before each invocation returns. */
  readonly recorder?: LedgerRecorder;
}

/** The verify endpoint's token, as `lib/http` compares it (a digest, never the token itself). */
export interface TokenSource {
  get(): Promise<SecretDigest>;
}

/** What the verify handler runs on; `verifyDependencies` builds the deployed function's. */
export interface VerifyDeps extends Observability {
  /** The configuration and the verifier built from it. */
  readonly configuration: ConfigSource<Verification>;
  readonly token: TokenSource;
}

/** Clients and observability to build `VerifyDeps` with instead of the deployed function's. */
export interface VerifyOverrides extends Partial<Observability> {
  readonly ssm?: Pick<SSMClient, 'send'>;
  readonly secretsManager?: Pick<SecretsManagerClient, 'send'>;
  readonly dynamodb?: Pick<DynamoDBClient, 'send'>;
}

/**
 * The deployed function's dependencies: AWS clients created once per execution environment, the
 * configuration read from the SSM parameter, the token from the Secrets Manager secret.
 */
export function verifyDependencies(env: VerifyFunctionEnv, overrides: VerifyOverrides = {}): VerifyDeps {
  const logger = overrides.logger ?? createLogger();
  const signetLogger = libLogger(logger);
  const dynamodb = env.ledgerTable === undefined ? undefined : (overrides.dynamodb ?? new DynamoDBClient({}));
  return {
    logger,
    metrics: overrides.metrics ?? createMetrics(),
    configuration: new ParameterConfig<Verification>({
      parameterName: env.configParameter,
      ttlSeconds: env.configTtlSeconds,
      ssm: overrides.ssm ?? new SSMClient({}),
      baseDir: env.baseDir,
      logger: signetLogger,
      build: (config) => {
        const { verifier } = createSignet(config, { logger: signetLogger });
        // Written when the invocation's answer is built: a frozen environment writes nothing later.
        const recorder =
          dynamodb === undefined || env.ledgerTable === undefined
            ? undefined
            : new LedgerRecorder({
                ledger: new DynamoLedger({
                  client: dynamodb,
                  table: env.ledgerTable,
                  retentionDays: config.ledger.retentionDays,
                  windowDays: config.reverify?.windowDays ?? DEFAULTS.reverify.windowDays,
                }),
                logger: signetLogger,
                recordedBy: 'lambda',
                flushIntervalMs: 0,
                pruneEveryMs: 0,
              });
        return {
          surface: {
            verifier,
            controller: new AdmissionController({
              verifier,
              logger: signetLogger,
              ...(recorder !== undefined ? { observe: (outcome) => recorder.admission(outcome) } : {}),
            }),
            ...(recorder !== undefined ? { onDecision: (decision) => recorder.verification(decision) } : {}),
          },
          maxBodyBytes: config.server.maxBodyBytes,
          ...(recorder !== undefined ? { recorder } : {}),
        };
      },
    }),
    token: secretToken(overrides.secretsManager ?? new SecretsManagerClient({}), env.tokenSecret),
  };
}

/**
 * The token held by a Secrets Manager string secret, read once per execution environment (a failed
 * read is tried again on the next request): rotating it means updating the secret and the webhook
 * configurations, then letting environments recycle (or redeploying).
 */
export function secretToken(secrets: Pick<SecretsManagerClient, 'send'>, secretId: string): TokenSource {
  let token: Promise<SecretDigest> | undefined;
  const read = async (): Promise<SecretDigest> => {
    let value: string | undefined;
    try {
      value = (await secrets.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString;
    } catch (error) {
      throw new ConfigError(
        'CONFIG_UNREADABLE',
        `cannot read the verify token secret ${secretId}: ${describeError(error)}`,
        { cause: error },
      );
    }
    if (value === undefined || value.trim() === '') {
      throw new ConfigError('CONFIG_INVALID', `the verify token secret ${secretId} is empty`);
    }
    return secretDigest(value.trim());
  };
  return {
    get: () =>
      (token ??= read().catch((error: unknown) => {
        token = undefined;
        throw error;
      })),
  };
}

/** The verify handler: middy with Powertools' context injection and EMF metrics around `route`. */
export function makeVerifyHandler(
  deps: VerifyDeps,
): LambdaHandler<LambdaFunctionURLEvent, LambdaFunctionURLResult> {
  const { logger, metrics } = deps;
  // Read configuration and token now (cold start, when Lambda gives the function a full CPU);
  // a failure is not fatal here: the first request reads them again and reports the error.
  deps.configuration.get().catch(() => undefined);
  deps.token.get().catch(() => undefined);
  const signetLogger = libLogger(logger);
  return middy((event: LambdaFunctionURLEvent) => route(deps, signetLogger, event))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .use({
      // The token or the configuration could not be read: fail closed with the same error body.
      onError: (request) => {
        logger.error('verify request failed', { cause: describeError(request.error) });
        metrics.addMetric(FUNCTION_METRICS.verifyErrors, MetricUnit.Count, 1);
        const code = (request.error as { code?: string } | null)?.code ?? 'INTERNAL';
        request.response = {
          statusCode: 500,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ error: { code, message: describeError(request.error) } }),
        };
      },
    });
}

/** A Function URL event in, `lib/http`'s answer out: the same surface as `signet serve`. */
async function route(
  deps: VerifyDeps,
  logger: Logger,
  event: LambdaFunctionURLEvent,
): Promise<LambdaFunctionURLResult> {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) headers[name.toLowerCase()] = value;
  const raw = event.body ?? '';
  const started = performance.now();
  const [access, { value: verification }] = await Promise.all([deps.token.get(), deps.configuration.get()]);
  const response = await handleRequest(
    {
      method: event.requestContext.http.method,
      path: event.rawPath || '/',
      headers,
      body: { $case: 'bytes', bytes: Buffer.from(raw, event.isBase64Encoded ? 'base64' : 'utf8') },
    },
    {
      logger,
      maxBodyBytes: verification.maxBodyBytes,
      verification: {
        ...verification.surface,
        access: { bearer: access, secretPath: undefined, tokenInPath: true },
      },
    },
  );
  record(deps.metrics, response, performance.now() - started);
  await recordDecisions(deps, verification.recorder);
  return {
    statusCode: response.status,
    headers: { 'content-type': 'application/json', ...response.headers },
    body: JSON.stringify(response.body),
  };
}

/**
 * The invocation's decisions into the ledger, after the answer is final and before the handler
 * returns (Lambda may freeze the environment once it has). A failure is logged and counted; the
 * answer stands, and the records stay queued for the next invocation.
 */
async function recordDecisions(deps: VerifyDeps, recorder: LedgerRecorder | undefined): Promise<void> {
  if (recorder === undefined || recorder.pending === 0) return;
  try {
    await recorder.flush();
  } catch (error) {
    deps.logger.error('ledger write failed', { pending: recorder.pending, cause: describeError(error) });
    deps.metrics.addMetric(FUNCTION_METRICS.ledgerWriteFailed, MetricUnit.Count, 1);
  }
}

function record(metrics: VerifyDeps['metrics'], response: HttpResponse, ms: number): void {
  const review = response.body as { response?: { allowed?: unknown } } | undefined;
  if (response.status === 200 && typeof review?.response?.allowed === 'boolean') {
    metrics.addMetric(FUNCTION_METRICS.admissionLatency, MetricUnit.Milliseconds, ms);
    metrics.addMetric(
      review.response.allowed ? FUNCTION_METRICS.admitted : FUNCTION_METRICS.denied,
      MetricUnit.Count,
      1,
    );
  } else if (response.status >= 500) {
    metrics.addMetric(FUNCTION_METRICS.verifyErrors, MetricUnit.Count, 1);
  } else if (response.status >= 400) {
    metrics.addMetric(FUNCTION_METRICS.verifyRefused, MetricUnit.Count, 1);
  }
}

/** The Lambda entry point, built from the environment at cold start. */
export const handler = handlerFromEnvironment(() =>
  makeVerifyHandler(verifyDependencies(readVerifyEnv(process.env))),
);
