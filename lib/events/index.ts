/** Push notifications from every supported registry, normalized to `PushEvent`s. */
import { parseDistributionNotification } from './distribution';
import { parseEcrEvent } from './ecr';
import { parseHarborWebhook } from './harbor';
import type { NormalizedEvents } from './types';

export {
  DISTRIBUTION_EVENTS_V1,
  DISTRIBUTION_EVENTS_V2,
  parseDistributionNotification,
} from './distribution';
export {
  CLOUDTRAIL_API_CALL,
  ECR_EVENT_SOURCE,
  ECR_IMAGE_ACTION,
  ECR_IMAGE_SCAN,
  INSPECTOR_EVENT_SOURCE,
  INSPECTOR_SCAN,
  ecrRegistryHost,
  parseEcrEvent,
} from './ecr';
export {
  HARBOR_PUSH_ARTIFACT,
  HARBOR_SCANNING_COMPLETED,
  HARBOR_SCANNING_FAILED,
  parseHarborWebhook,
} from './harbor';
export { MAX_EVENTS_PER_NOTIFICATION } from './json';
export type {
  IgnoredNotification,
  NormalizedEvents,
  PushEvent,
  PushEventSource,
  ScanEvent,
  ScanResult,
  Scanner,
  SeverityCounts,
} from './types';

/** Which sender a notification body comes from. */
export type PushNotificationKind = 'distribution' | 'ecr' | 'harbor';

/**
 * Normalizes a notification body of the given kind. `contentType` (the request's Content-Type)
 * matters for distribution envelopes only; EventBridge and Harbor bodies are plain JSON.
 * Throws `InputError` (`EVENT_INVALID` naming the field, or `UNSUPPORTED_MEDIA_TYPE`).
 */
export function parsePushNotification(
  kind: PushNotificationKind,
  body: unknown,
  contentType?: string,
): NormalizedEvents {
  switch (kind) {
    case 'distribution':
      return parseDistributionNotification(body, contentType);
    case 'ecr':
      return parseEcrEvent(body);
    case 'harbor':
      return parseHarborWebhook(body);
  }
}
