/**
 * Amazon ECR `ECR Image Action` events as EventBridge delivers them: one event per body, the
 * push in `detail`. The registry host is not in the event; it follows from `account` and
 * `region`.
 *
 * `detail.artifact-media-type` is the OCI `artifactType` when the manifest has one and otherwise
 * the config media type, so an ordinary image (and a cosign `.sig` image) reports
 * `application/vnd.oci.image.config.v1+json`: it identifies Sigstore bundles and other artifacts,
 * not legacy cosign signatures, whose tag (`sha256-<hex>.sig`) is what gives them away.
 */
import {
  describe,
  get,
  invalid,
  isObject,
  optionalId,
  optionalMediaType,
  optionalTag,
  requireDigest,
  requireObject,
  requireRepository,
  requireString,
  type JsonObject,
} from './json';
import { parseCloudTrailPush } from './cloudtrail';
import { parseEcrImageScan, parseInspectorScan } from './scans';
import { NOT_SHA256_REASON, SCHEMA1_MEDIA_TYPES, SCHEMA1_REASON } from './media-types';
import type { NormalizedEvents } from './types';

export const ECR_EVENT_SOURCE = 'aws.ecr';
export const ECR_IMAGE_ACTION = 'ECR Image Action';
export const ECR_IMAGE_SCAN = 'ECR Image Scan';
export const CLOUDTRAIL_API_CALL = 'AWS API Call via CloudTrail';
export const INSPECTOR_EVENT_SOURCE = 'aws.inspector2';
export const INSPECTOR_SCAN = 'Inspector2 Scan';

const ACCOUNT = /^[0-9]{12}$/;
// us-west-2, us-gov-west-1, us-isob-east-1, ap-southeast-1, cn-northwest-1. Letters and the
// final digits never overlap and every group starts with "-", so the match is linear.
const REGION = /^[a-z]{2,4}(?:-[a-z]{2,10}){1,2}-[1-9][0-9]?$/;

/** DNS suffix of each AWS partition, by region prefix; everything else is the `aws` partition. */
const PARTITION_SUFFIXES: readonly (readonly [prefix: string, suffix: string])[] = [
  ['cn-', 'amazonaws.com.cn'],
  ['us-isob-', 'sc2s.sgov.gov'],
  ['us-iso-', 'c2s.ic.gov'],
];

/** The private registry host of an account in a region: `<account>.dkr.ecr.<region>.<suffix>`. */
export function ecrRegistryHost(account: string, region: string): string {
  const suffix = PARTITION_SUFFIXES.find(([prefix]) => region.startsWith(prefix))?.[1] ?? 'amazonaws.com';
  return `${account}.dkr.ecr.${region}.${suffix}`;
}

/**
 * Normalizes one EventBridge event about ECR images (not a batch: EventBridge invokes a target per
 * event): a push (`ECR Image Action`), the same push as CloudTrail records it with its pusher
 * (`AWS API Call via CloudTrail`, `PutImage`), or a scan result (`ECR Image Scan` from basic
 * scanning, `Inspector2 Scan` from enhanced scanning).
 */
export function parseEcrEvent(body: unknown): NormalizedEvents {
  if (!isObject(body)) throw invalid('body', `must be one EventBridge event object, got ${describe(body)}`);
  const source = get(body, 'source');
  if (source !== ECR_EVENT_SOURCE && source !== INSPECTOR_EVENT_SOURCE)
    throw invalid(
      'source',
      `must be "${ECR_EVENT_SOURCE}" or "${INSPECTOR_EVENT_SOURCE}", got ${describe(source)}`,
    );
  const detailType = get(body, 'detail-type');
  if (source === INSPECTOR_EVENT_SOURCE) {
    if (detailType !== INSPECTOR_SCAN)
      throw invalid('detail-type', `must be "${INSPECTOR_SCAN}", got ${describe(detailType)}`);
    return parseInspectorScan(body, ecrAccountHost(body));
  }
  if (detailType === ECR_IMAGE_SCAN) return parseEcrImageScan(body, ecrAccountHost(body));
  if (detailType === CLOUDTRAIL_API_CALL) return parseCloudTrailPush(body, ecrAccountHost(body));
  if (detailType !== ECR_IMAGE_ACTION) {
    throw invalid(
      'detail-type',
      `must be "${ECR_IMAGE_ACTION}", "${ECR_IMAGE_SCAN}" or "${CLOUDTRAIL_API_CALL}", got ${describe(detailType)}`,
    );
  }
  const detail = requireObject(get(body, 'detail'), 'detail');

  const actionType = requireString(get(detail, 'action-type'), 'detail.action-type', 64);
  if (actionType !== 'PUSH') return ignoredAs('detail.action-type', `ECR ${describe(actionType)} action`);
  const result = requireString(get(detail, 'result'), 'detail.result', 64);
  if (result !== 'SUCCESS') return ignoredAs('detail.result', `ECR push with result ${describe(result)}`);

  const registry = ecrAccountHost(body);
  const repository = requireRepository(get(detail, 'repository-name'), 'detail.repository-name');
  const digest = requireDigest(get(detail, 'image-digest'), 'detail.image-digest');
  const tag = optionalTag(get(detail, 'image-tag'), 'detail.image-tag');
  const mediaType = optionalMediaType(get(detail, 'manifest-media-type'), 'detail.manifest-media-type');
  const artifactType = optionalMediaType(get(detail, 'artifact-media-type'), 'detail.artifact-media-type');
  const id = optionalId(get(body, 'id'), 'id');

  if (digest.$case === 'other-algorithm') return ignoredAs('detail.image-digest', NOT_SHA256_REASON);
  if (mediaType !== undefined && SCHEMA1_MEDIA_TYPES.has(mediaType)) {
    return ignoredAs('detail.manifest-media-type', SCHEMA1_REASON);
  }
  return {
    events: [
      {
        registry,
        repository,
        digest: digest.digest,
        tag,
        mediaType,
        artifactType,
        source: 'ecr',
        id,
      },
    ],
    ignored: [],
  };
}

/** The registry of the event's `account` in its `region`. */
export function ecrAccountHost(body: JsonObject): string {
  const account = get(body, 'account');
  if (typeof account !== 'string' || !ACCOUNT.test(account)) {
    throw invalid('account', `must be a 12-digit AWS account id, got ${describe(account)}`);
  }
  const region = get(body, 'region');
  if (typeof region !== 'string' || region.length > 32 || !REGION.test(region)) {
    throw invalid('region', `must be an AWS region such as "us-east-1", got ${describe(region)}`);
  }
  return ecrRegistryHost(account, region);
}

/** The whole event carried nothing to sign; `field` is the member that says why. */
export const ignoredAs = (field: string, reason: string): NormalizedEvents => ({
  events: [],
  ignored: [{ field, reason }],
});
