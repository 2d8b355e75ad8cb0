/**
 * The dead-letter queue's message format: written by the failure function (`functions/failure.ts`),
 * by EventBridge and by Lambda, read back by `signet replay`.
 *
 * Every message that Signet itself writes has the original EventBridge `ECR Image Action` event,
 * unchanged, as its body, and the failure in message attributes; so does every message that
 * EventBridge writes when it cannot invoke the sign function at all (its target DLQ: attributes
 * `RULE_ARN`, `TARGET_ARN`, `ERROR_CODE`, `ERROR_MESSAGE`). Only when the failure function itself
 * exhausts its retries does Lambda write that function's input: the sign function's invocation
 * record, whose `requestPayload` is the original event. `originalEvent` accepts both.
 */
import { describeError, InputError } from '../core/errors';

/** Message attributes `failure.ts` sets on each message it writes. */
export const DLQ_ATTRIBUTES = {
  errorType: 'ErrorType',
  errorMessage: 'ErrorMessage',
  condition: 'Condition',
  attempts: 'ApproximateInvokeCount',
  requestId: 'RequestId',
} as const;

/** A Lambda asynchronous-invocation record, as Lambda hands it to an on-failure destination. */
export interface InvocationRecord {
  readonly version: string;
  readonly timestamp: string;
  readonly requestContext: {
    readonly requestId: string;
    readonly functionArn: string;
    /** `RetriesExhausted` or `EventAgeExceeded`. */
    readonly condition: string;
    readonly approximateInvokeCount: number;
  };
  /** The event the function was invoked with. */
  readonly requestPayload: unknown;
  readonly responseContext?: { readonly statusCode?: number; readonly functionError?: string };
  /** For a thrown error: `{ errorType, errorMessage, trace }`. */
  readonly responsePayload?: unknown;
}

/** True for a Lambda invocation record (as opposed to a bare event). */
export function isInvocationRecord(value: unknown): value is InvocationRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as { requestContext?: unknown };
  return (
    'requestPayload' in value &&
    typeof record.requestContext === 'object' &&
    record.requestContext !== null &&
    'requestId' in record.requestContext
  );
}

/**
 * The original event of a dead-letter message body (JSON text), whichever shape carries it.
 * Throws `InputError('EVENT_INVALID', 'body')` when the body is empty or not JSON.
 */
export function originalEvent(body: string): unknown {
  if (body.trim() === '') throw new InputError('EVENT_INVALID', 'body', 'is empty; expected JSON');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new InputError('EVENT_INVALID', 'body', `is not valid JSON (${describeError(error)})`, {
      cause: error,
    });
  }
  return isInvocationRecord(parsed) ? parsed.requestPayload : parsed;
}
