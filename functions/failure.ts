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
import { requireEnv } from './config';
import { DETAIL_TYPES, FUNCTION_ENV, createLogger, createMetrics, putSignetEvents } from './runtime';

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

const env = process.env;
const logger = createLogger();
const metrics = createMetrics();
const eventBridge = new EventBridgeClient({});
const sqs = new SQSClient({});
const busName = requireEnv(env, FUNCTION_ENV.eventBus);
const queueUrl = requireEnv(env, FUNCTION_ENV.deadLetterQueue);
const registryHost = env[FUNCTION_ENV.registryHost]?.trim() || undefined;

// SQS message attribute values are limited in size along with the whole message; the full error
// is in the sign function's logs under `requestId`.
const MAX_ATTRIBUTE_CHARS = 1024;

async function onSigningFailure(record: unknown): Promise<ImageSigningFailedDetail> {
  if (!isInvocationRecord(record)) {
    // Not from Lambda's destination machinery: nothing to keep, nothing to announce. Throwing
    // would only retry it into the dead-letter queue, which is where such a mistake belongs.
    throw new TypeError('expected a Lambda asynchronous invocation record (requestContext, requestPayload)');
  }
  const detail = failureDetail(record);
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
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
  await putSignetEvents(eventBridge, busName, DETAIL_TYPES.signingFailed, [detail]);
  metrics.addMetric('SigningGaveUp', MetricUnit.Count, 1);
  logger.error('image signing failed for good', { ...detail });
  return detail;
}

function failureDetail(record: InvocationRecord): ImageSigningFailedDetail {
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

/** The Lambda entry point. */
export const handler = middy(onSigningFailure)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use({
    onError: (request) => {
      logger.error('failure handling failed', { cause: describeError(request.error) });
    },
  });
