/**
 * A local Amazon EventBridge for integration tests: `PutEvents` over the AWS JSON 1.1 protocol
 * (`X-Amz-Target: AWSEvents.PutEvents`), behind the real SDK client. Entries are checked the way
 * the API reference describes (1-10 entries; Source, DetailType and Detail required; Detail a
 * JSON object) and recorded; `failNext` makes entries fail the way EventBridge reports partial
 * failures (`FailedEntryCount`, per-entry `ErrorCode`).
 *
 *   const bus = await startEventBridgeEndpoint();
 *   process.env.AWS_ENDPOINT_URL_EVENTBRIDGE = bus.url;
 *   ...
 *   bus.events  // [{ Source, DetailType, Detail (parsed), EventBusName }]
 */
import { randomUUID } from 'node:crypto';
import { AwsFault, startAwsJsonEndpoint, type AwsCall } from './aws-endpoint';

/** One accepted event, with its detail parsed. */
export interface PutEvent {
  readonly id: string;
  readonly Source: string;
  readonly DetailType: string;
  readonly Detail: Record<string, unknown>;
  readonly EventBusName: string | undefined;
  readonly Resources: readonly string[];
}

export interface EventBridgeEndpoint {
  /** `http://127.0.0.1:<port>`: the SDK's `endpoint`, or `AWS_ENDPOINT_URL_EVENTBRIDGE`. */
  readonly url: string;
  readonly calls: AwsCall[];
  /** Accepted events, in order. */
  readonly events: PutEvent[];
  /** The next `n` entries are refused with `errorCode` (default `InternalFailure`). */
  failNext(n: number, errorCode?: string): void;
  /** The next `n` PutEvents calls fail as a whole with `type` (default `InternalException`, 500). */
  failCalls(n: number, type?: string): void;
  close(): Promise<void>;
}

const MAX_ENTRIES = 10;

export async function startEventBridgeEndpoint(): Promise<EventBridgeEndpoint> {
  const events: PutEvent[] = [];
  let failingEntries: { n: number; code: string } = { n: 0, code: 'InternalFailure' };
  let failingCalls: { n: number; type: string } = { n: 0, type: 'InternalException' };

  const endpoint = await startAwsJsonEndpoint({
    targetPrefix: 'AWSEvents',
    handlers: {
      PutEvents: (body: { Entries?: unknown }) => {
        if (failingCalls.n > 0) {
          failingCalls = { ...failingCalls, n: failingCalls.n - 1 };
          throw new AwsFault(failingCalls.type, 'the test endpoint failed this call', 500);
        }
        const entries = body.Entries;
        if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_ENTRIES) {
          throw new AwsFault(
            'ValidationException',
            `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and ${MAX_ENTRIES}`,
          );
        }
        let failed = 0;
        const results = entries.map((entry: Record<string, unknown>) => {
          const problem = checkEntry(entry);
          if (problem !== undefined) {
            failed++;
            return { ErrorCode: 'MalformedDetail', ErrorMessage: problem };
          }
          if (failingEntries.n > 0) {
            failingEntries = { ...failingEntries, n: failingEntries.n - 1 };
            failed++;
            return { ErrorCode: failingEntries.code, ErrorMessage: 'the test endpoint refused this entry' };
          }
          const id = randomUUID();
          events.push({
            id,
            Source: entry['Source'] as string,
            DetailType: entry['DetailType'] as string,
            Detail: JSON.parse(entry['Detail'] as string) as Record<string, unknown>,
            EventBusName: entry['EventBusName'] as string | undefined,
            Resources: (entry['Resources'] as string[] | undefined) ?? [],
          });
          return { EventId: id };
        });
        return { FailedEntryCount: failed, Entries: results };
      },
    },
  });

  return {
    url: endpoint.url,
    calls: endpoint.calls,
    events,
    failNext(n, errorCode = 'InternalFailure') {
      failingEntries = { n, code: errorCode };
    },
    failCalls(n, type = 'InternalException') {
      failingCalls = { n, type };
    },
    close: endpoint.close,
  };
}

function checkEntry(entry: Record<string, unknown>): string | undefined {
  for (const field of ['Source', 'DetailType', 'Detail']) {
    if (typeof entry[field] !== 'string' || entry[field] === '') return `${field} is required`;
  }
  try {
    const detail: unknown = JSON.parse(entry['Detail'] as string);
    if (typeof detail !== 'object' || detail === null || Array.isArray(detail))
      return 'Detail must be a JSON object';
  } catch {
    return 'Detail is not valid JSON';
  }
  return undefined;
}
