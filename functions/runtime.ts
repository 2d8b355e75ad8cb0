/**
 * What every Signet Lambda shares: the handler type the factories return, building the
 * module-level handler from the environment, the Powertools logger and metrics (one service
 * name, one namespace), the adapter that lets `lib/` log through Powertools, and publishing
 * Signet's own events to the configured EventBridge bus.
 */
import type { Context } from 'aws-lambda';
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  PutEventsCommand,
  type EventBridgeClient,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import type { Logger } from '../lib/core/logger';
import { IMAGE_TRUST_LOST } from '../lib/reverify/events';
import { METRICS_NAMESPACE, SERVICE_NAME } from './env';

export { METRICS_NAMESPACE, SERVICE_NAME } from './env';
/** `source` of the events Signet puts on the bus. */
export const EVENT_SOURCE = 'signet';

/** The detail types Signet puts on the bus. */
export const DETAIL_TYPES = {
  signed: 'Image Signed',
  signingFailed: 'Image Signing Failed',
  trustLost: IMAGE_TRUST_LOST,
} as const;

/** A Lambda entry point as Signet's factories build it (middy's handler) and as tests call it. */
export type LambdaHandler<Event, Result> = (event: Event, context: Context) => Promise<Result>;

/** What every handler logs and measures with; the factories take them as dependencies. */
export interface Observability {
  readonly logger: PowertoolsLogger;
  readonly metrics: Metrics;
}

/**
 * The module-level `handler` of a function: `build` runs once, at cold start, and reads the
 * environment. When it throws (a variable the construct sets is missing: a deployment mistake),
 * every invocation rejects with that error, which the Lambda runtime logs and the caller's retry
 * policy handles like any failure. Importing a function's module therefore never throws, so a
 * test can import its factory without setting `process.env` first.
 */
export function handlerFromEnvironment<Event, Result>(
  build: () => LambdaHandler<Event, Result>,
): LambdaHandler<Event, Result> {
  try {
    return build();
  } catch (error) {
    return () => Promise.reject(error);
  }
}

export const createLogger = (): PowertoolsLogger => new PowertoolsLogger({ serviceName: SERVICE_NAME });

export const createMetrics = (): Metrics =>
  new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });

/** `lib/`'s Logger on top of Powertools: the fields become top-level keys of the JSON line. */
export function libLogger(logger: PowertoolsLogger): Logger {
  return {
    debug: (message, fields) => logger.debug(message, fields ?? {}),
    info: (message, fields) => logger.info(message, fields ?? {}),
    warn: (message, fields) => logger.warn(message, fields ?? {}),
    error: (message, fields) => logger.error(message, fields ?? {}),
  };
}

/** Putting events on the bus failed (the call, or some of its entries). */
export class EventPublishError extends Error {
  override readonly name = 'EventPublishError';
}

// PutEvents takes at most 10 entries per call.
const PUT_EVENTS_BATCH = 10;

/**
 * Puts `details` on `busName` as events of `detailType` from `signet`. Throws EventPublishError
 * when any entry was not accepted, so the caller's event is retried (consumers of Signet's events
 * therefore see them at least once, like every EventBridge event).
 */
export async function putSignetEvents(
  client: Pick<EventBridgeClient, 'send'>,
  busName: string,
  detailType: string,
  details: readonly object[],
): Promise<void> {
  for (let i = 0; i < details.length; i += PUT_EVENTS_BATCH) {
    const entries: PutEventsRequestEntry[] = details.slice(i, i + PUT_EVENTS_BATCH).map((detail) => ({
      Source: EVENT_SOURCE,
      DetailType: detailType,
      Detail: JSON.stringify(detail),
      EventBusName: busName,
    }));
    let failed: number;
    let firstError: string | undefined;
    try {
      const out = await client.send(new PutEventsCommand({ Entries: entries }));
      failed = out.FailedEntryCount ?? 0;
      const entry = out.Entries?.find((e) => e.ErrorCode !== undefined);
      firstError = entry === undefined ? undefined : `${entry.ErrorCode}: ${entry.ErrorMessage ?? ''}`;
    } catch (error) {
      throw new EventPublishError(`EventBridge PutEvents to ${busName} failed: ${String(error)}`, {
        cause: error,
      });
    }
    if (failed > 0) {
      throw new EventPublishError(
        `EventBridge did not accept ${failed} of ${entries.length} "${detailType}" events on ${busName}${firstError !== undefined ? ` (${firstError})` : ''}`,
      );
    }
  }
}
