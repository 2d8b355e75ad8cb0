/**
 * ECR pushes as CloudTrail records them (`AWS API Call via CloudTrail`, `eventName: PutImage`),
 * which EventBridge delivers when CloudTrail logs management events. Unlike `ECR Image Action`,
 * the record names who pushed: `detail.userIdentity.arn` (an IAM user, or the assumed role's
 * session). Signet reads it for rules with a `pushedBy` condition on ECR.
 *
 * The pushed digest is in `responseElements.image.imageId.imageDigest`; the tag (for a push by
 * tag) in `requestParameters.imageTag`. A call that failed carries `errorCode` and no response.
 */
import {
  describe,
  get,
  invalid,
  optionalId,
  optionalMediaType,
  optionalString,
  optionalTag,
  requireDigest,
  requireObject,
  requireRepository,
  requireString,
  type JsonObject,
} from './json';
import { NOT_SHA256_REASON, SCHEMA1_MEDIA_TYPES, SCHEMA1_REASON } from './media-types';
import type { NormalizedEvents } from './types';

export const ECR_EVENT_SOURCE_HOST = 'ecr.amazonaws.com';
export const PUT_IMAGE = 'PutImage';
/** Longest principal ARN read (IAM allows 2048-character ARNs). */
const MAX_ARN_LENGTH = 2048;

const ignored = (field: string, reason: string): NormalizedEvents => ({
  events: [],
  ignored: [{ field, reason }],
});

/** Normalizes one CloudTrail API-call event from `aws.ecr`; `registry` is the event account's host. */
export function parseCloudTrailPush(body: JsonObject, registry: string): NormalizedEvents {
  const detail = requireObject(get(body, 'detail'), 'detail');
  const eventSource = requireString(get(detail, 'eventSource'), 'detail.eventSource', 128);
  const eventName = requireString(get(detail, 'eventName'), 'detail.eventName', 128);
  if (eventSource !== ECR_EVENT_SOURCE_HOST || eventName !== PUT_IMAGE) {
    return ignored('detail.eventName', `CloudTrail ${describe(eventSource)} ${describe(eventName)} call`);
  }
  const errorCode = optionalString(get(detail, 'errorCode'), 'detail.errorCode', 256);
  if (errorCode !== undefined)
    return ignored('detail.errorCode', `PutImage failed with ${describe(errorCode)}`);

  const identity = requireObject(get(detail, 'userIdentity'), 'detail.userIdentity');
  const pushedBy = requireString(get(identity, 'arn'), 'detail.userIdentity.arn', MAX_ARN_LENGTH);
  if (pushedBy === '') throw invalid('detail.userIdentity.arn', 'must name the principal that pushed');
  const request = requireObject(get(detail, 'requestParameters'), 'detail.requestParameters');
  const response = requireObject(get(detail, 'responseElements'), 'detail.responseElements');
  const image = requireObject(get(response, 'image'), 'detail.responseElements.image');
  const imageId = requireObject(get(image, 'imageId'), 'detail.responseElements.image.imageId');
  const repository = requireRepository(
    get(request, 'repositoryName'),
    'detail.requestParameters.repositoryName',
  );
  const digest = requireDigest(
    get(imageId, 'imageDigest'),
    'detail.responseElements.image.imageId.imageDigest',
  );
  const tag = optionalTag(get(request, 'imageTag'), 'detail.requestParameters.imageTag');
  const mediaType =
    optionalMediaType(
      get(image, 'imageManifestMediaType'),
      'detail.responseElements.image.imageManifestMediaType',
    ) ??
    optionalMediaType(
      get(request, 'imageManifestMediaType'),
      'detail.requestParameters.imageManifestMediaType',
    );
  const id = optionalId(get(body, 'id'), 'id');
  if (digest.$case === 'other-algorithm') {
    return ignored('detail.responseElements.image.imageId.imageDigest', NOT_SHA256_REASON);
  }
  if (mediaType !== undefined && SCHEMA1_MEDIA_TYPES.has(mediaType)) {
    return ignored('detail.requestParameters.imageManifestMediaType', SCHEMA1_REASON);
  }
  return {
    events: [
      {
        registry,
        repository,
        digest: digest.digest,
        tag,
        mediaType,
        artifactType: undefined,
        source: 'cloudtrail',
        id,
        pushedBy,
      },
    ],
    ignored: [],
  };
}
