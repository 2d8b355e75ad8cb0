/**
 * The sign function's on-failure destination: Lambda invokes it with the invocation record once
 * an `ECR Image Action` event has failed every attempt (or grown older than the maximum event
 * age). It keeps the original event in the dead-letter queue, body unchanged, for
 * `signet replay`, and then puts one `Image Signing Failed` event on the bus.
 *
 * The queue comes first: losing the event is worse than a late notification. If either step
 * fails the handler throws and Lambda retries it; a repeat may leave a duplicate message, which
 * a replay handles (signing is idempotent). If this function exhausts its own retries, Lambda
 * writes the record itself to the same queue (the construct sets it as this function's DLQ).
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { describeError } from '../lib/core/errors';
import { DLQ_ATTRIBUTES, isInvocationRecord, type InvocationRecord } from '../lib/events/dead-letter';
import { parseEcrEvent } from '../lib/events/ecr';
import { readFailureEnv, type FailureFunctionEnv, FUNCTION_METRICS } from './env';
import {
  DETAIL_TYPES,
  createLogger,
  createMetrics,
  handlerFromEnvironment,
  putSignetEvents,
  type LambdaHandler,
  type Observability,
} from './runtime';

/** The detail of an `Image Signing Failed` event (source `signet`). */
export interface ImageSigningFailedDetail {
  /** Null when the original event could not be read as an ECR push. */
  readonly registry: string | null;
  readonly repository: string | null;
  readonly digest: string | null;
  readonly tag: string | null;
  readonly error: { readonly type: string; readonly message: string };
  /** `RetriesExhausted` or `EventAgeExceeded`. */
  readonly condition: string;
  /** How many times Lambda ran the sign function for this event. */
  readonly attempts: number;
  /** The sign function's request id of its last attempt (to find its logs). */
  readonly requestId: string;
  /** The id of the original EventBridge event. */
  readonly eventId: string | null;
}

/** What the failure handler runs on; `failureDependencies` builds the deployed function's. */
export interface FailureDeps extends Observability {
  /** Keeps the original event in the dead-letter queue. */
  readonly sqs: Pick<SQSClient, 'send'>;
  readonly deadLetterQueue: string;
  /** Receives the `Image Signing Failed` event. */
  readonly eventBridge: Pick<EventBridgeClient, 'send'>;
  readonly eventBus: string;
  /** The sign function's registry host, written into the event instead of the ECR host. */
  readonly registryHost: string | undefined;
}

/** Clients and observability to build `FailureDeps` with instead of the deployed function's. */
export interface FailureOverrides extends Partial<Observability> {
  readonly sqs?: Pick<SQSClient, 'send'>;
  readonly eventBridge?: Pick<EventBridgeClient, 'send'>;
}

/** The deployed function's dependencies: AWS clients created once per execution environment. */
export function failureDependencies(env: FailureFunctionEnv, overrides: FailureOverrides = {}): FailureDeps {
  return {
    logger: overrides.logger ?? createLogger(),
    metrics: overrides.metrics ?? createMetrics(),
    sqs: overrides.sqs ?? new SQSClient({}),
    deadLetterQueue: env.deadLetterQueue,
    eventBridge: overrides.eventBridge ?? new EventBridgeClient({}),
    eventBus: env.eventBus,
    registryHost: env.registryHost,
  };
}

/** The failure handler: middy with Powertools' context injection and EMF metrics around it. */
export function makeFailureHandler(deps: FailureDeps): LambdaHandler<unknown, ImageSigningFailedDetail> {
  const { logger, metrics } = deps;
  return middy((record: unknown) => onSigningFailure(deps, record))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics))
    .use({
      onError: (request) => {
        logger.error('failure handling failed', { cause: describeError(request.error) });
      },
    });
}

// SQS message attribute values are limited in size along with the whole message; the full error
// is in the sign function's logs under `requestId`.
const MAX_ATTRIBUTE_CHARS = 1024;

async function onSigningFailure(deps: FailureDeps, record: unknown): Promise<ImageSigningFailedDetail> {
  if (!isInvocationRecord(record)) {
    // Not from Lambda's destination machinery: nothing to keep, nothing to announce. Throwing
    // would only retry it into the dead-letter queue, which is where such a mistake belongs.
    throw new TypeError('expected a Lambda asynchronous invocation record (requestContext, requestPayload)');
  }
  const detail = failureDetail(record, deps.registryHost);
  await deps.sqs.send(
    new SendMessageCommand({
      QueueUrl: deps.deadLetterQueue,
      MessageBody: JSON.stringify(record.requestPayload),
      MessageAttributes: {
        [DLQ_ATTRIBUTES.errorType]: { DataType: 'String', StringValue: detail.error.type },
        [DLQ_ATTRIBUTES.errorMessage]: {
          DataType: 'String',
          StringValue: detail.error.message.slice(0, MAX_ATTRIBUTE_CHARS) || '(none)',
        },
        [DLQ_ATTRIBUTES.condition]: { DataType: 'String', StringValue: detail.condition },
        [DLQ_ATTRIBUTES.attempts]: { DataType: 'Number', StringValue: String(detail.attempts) },
        [DLQ_ATTRIBUTES.requestId]: { DataType: 'String', StringValue: detail.requestId },
      },
    }),
  );
  await putSignetEvents(deps.eventBridge, deps.eventBus, DETAIL_TYPES.signingFailed, [detail]);
  deps.metrics.addMetric(FUNCTION_METRICS.signingGaveUp, MetricUnit.Count, 1);
  deps.logger.error('image signing failed for good', { ...detail });
  return detail;
}

function failureDetail(record: InvocationRecord, registryHost: string | undefined): ImageSigningFailedDetail {
  const payload = record.requestPayload as { id?: unknown } | null;
  let push: { registry: string; repository: string; digest: string; tag: string | undefined } | undefined;
  try {
    push = parseEcrEvent(record.requestPayload).events[0];
  } catch {
    push = undefined;
  }
  const response = (record.responsePayload ?? {}) as { errorType?: unknown; errorMessage?: unknown };
  return {
    registry: push === undefined ? null : (registryHost ?? push.registry),
    repository: push?.repository ?? null,
    digest: push?.digest ?? null,
    tag: push?.tag ?? null,
    error: {
      type:
        typeof response.errorType === 'string'
          ? response.errorType
          : (record.responseContext?.functionError ?? 'Unknown'),
      message: typeof response.errorMessage === 'string' ? response.errorMessage : '',
    },
    condition: record.requestContext.condition,
    attempts: record.requestContext.approximateInvokeCount,
    requestId: record.requestContext.requestId,
    eventId: typeof payload?.id === 'string' ? payload.id : null,
  };
}

/** The Lambda entry point, built from the environment at cold start. */
export const handler = handlerFromEnvironment(() =>
  makeFailureHandler(failureDependencies(readFailureEnv(process.env))),
);
