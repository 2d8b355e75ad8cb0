/**
 * Scan results and pushers in events: ECR basic scanning (`ECR Image Scan`), Amazon Inspector
 * (`Inspector2 Scan`), Harbor (`SCANNING_COMPLETED`, `SCANNING_FAILED`), and ECR pushes as
 * CloudTrail records them (`PutImage`, with `userIdentity.arn`). Fixtures follow the documented
 * shapes (test/fixtures/events/SOURCES.md).
 */
import fc from 'fast-check';
import { InputError } from '../../lib/core/errors';
import {
  parseDistributionNotification,
  parseEcrEvent,
  parseHarborWebhook,
  parsePushNotification,
} from '../../lib/events';
import type { ScanEvent } from '../../lib/events/types';
import { expectResultOrInputError, fixture, inputErrorOf, pathsOf, withValue } from './helpers';

const DIGEST = 'sha256:f98d67af8e53a536502bfc600de3266556b06ed635a32d60aa7a5fe6d7e609d7';
const HARBOR_DIGEST = 'sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8';

const scanOf = (events: { scans?: readonly ScanEvent[] }): ScanEvent | undefined => events.scans?.[0];

describe('ECR Image Scan (basic scanning)', () => {
  it('reads the documented sample: the severities found, the rest 0', () => {
    expect(parseEcrEvent(fixture('ecr-image-scan.json'))).toStrictEqual({
      events: [],
      ignored: [],
      scans: [
        {
          registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
          repository: 'my-repository-name',
          digest: DIGEST,
          tags: [],
          result: {
            $case: 'complete',
            scanner: 'ecr',
            counts: { CRITICAL: 10, HIGH: 0, MEDIUM: 9, LOW: 0 },
            fixable: undefined,
          },
          id: '85fc3613-e913-7fc4-a80c-a3753e4aa9ae',
        },
      ],
    });
  });

  it('counts INFORMATIONAL and UNDEFINED findings as LOW', () => {
    const body = withValue(fixture('ecr-image-scan.json'), ['detail', 'finding-severity-counts'], {
      LOW: 1,
      INFORMATIONAL: 2,
      UNDEFINED: 3,
    });
    expect(scanOf(parseEcrEvent(body))?.result).toMatchObject({ counts: { LOW: 6, CRITICAL: 0 } });
  });

  it('reads a scan without findings (no counts member) as clean', () => {
    const body = withValue(fixture('ecr-image-scan.json'), ['detail', 'finding-severity-counts'], undefined);
    expect(scanOf(parseEcrEvent(body))?.result).toMatchObject({
      $case: 'complete',
      counts: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0 },
    });
  });

  it('reads a FAILED scan as a failed result, with the tags it names', () => {
    const failed = withValue(
      withValue(fixture('ecr-image-scan.json'), ['detail', 'scan-status'], 'FAILED'),
      ['detail', 'image-tags'],
      ['v1', 'latest'],
    );
    expect(scanOf(parseEcrEvent(failed))).toMatchObject({
      tags: ['v1', 'latest'],
      result: { $case: 'failed', scanner: 'ecr', detail: 'ECR basic scan status FAILED' },
    });
  });

  it.each<[string, unknown[], unknown, string]>([
    [
      'a negative count',
      ['detail', 'finding-severity-counts', 'CRITICAL'],
      -1,
      'detail.finding-severity-counts.CRITICAL',
    ],
    [
      'a fractional count',
      ['detail', 'finding-severity-counts', 'MEDIUM'],
      1.5,
      'detail.finding-severity-counts.MEDIUM',
    ],
    ['counts as a list', ['detail', 'finding-severity-counts'], [1], 'detail.finding-severity-counts'],
    ['no status', ['detail', 'scan-status'], undefined, 'detail.scan-status'],
    ['tags as a string', ['detail', 'image-tags'], 'latest', 'detail.image-tags'],
    ['a bad tag', ['detail', 'image-tags'], ['a/b'], 'detail.image-tags[0]'],
    ['no digest', ['detail', 'image-digest'], undefined, 'detail.image-digest'],
  ])('refuses %s, naming the field', (_, path, value, field) => {
    const body = withValue(fixture('ecr-image-scan.json'), path as (string | number)[], value);
    expect(() => parseEcrEvent(body)).toThrowWithCode(InputError, 'EVENT_INVALID');
    expect(inputErrorOf(() => parseEcrEvent(body)).field).toBe(field);
  });
});

describe('Inspector2 Scan (enhanced scanning)', () => {
  it('reads the documented sample: the repository from its ARN, LOW as TOTAL minus the rest', () => {
    expect(scanOf(parseEcrEvent(fixture('inspector2-scan.json')))).toStrictEqual({
      registry: '123456789012.dkr.ecr.us-east-2.amazonaws.com',
      repository: 'amazon/amazon-inspector',
      digest: DIGEST,
      tags: ['inspector-latest'],
      result: {
        $case: 'complete',
        scanner: 'inspector',
        counts: { CRITICAL: 7, HIGH: 61, MEDIUM: 62, LOW: 28 },
        fixable: undefined,
      },
      id: '739c0d3c-4f02-85c7-5a88-94a9EXAMPLE',
    });
  });

  it('reads any other status as a failed scan (no result to judge)', () => {
    const body = withValue(fixture('inspector2-scan.json'), ['detail', 'scan-status'], 'UNSUPPORTED_OS');
    expect(scanOf(parseEcrEvent(body))?.result).toEqual({
      $case: 'failed',
      scanner: 'inspector',
      detail: 'Inspector scan status UNSUPPORTED_OS',
    });
  });

  it.each<[string, unknown[], unknown, string]>([
    ['another detail-type', ['detail-type'], 'Inspector2 Finding', 'detail-type'],
    [
      'an ARN of something else',
      ['detail', 'repository-name'],
      'arn:aws:s3:::bucket',
      'detail.repository-name',
    ],
    ['no counts', ['detail', 'finding-severity-counts'], undefined, 'detail.finding-severity-counts'],
  ])('refuses %s', (_, path, value, field) => {
    const body = withValue(fixture('inspector2-scan.json'), path as (string | number)[], value);
    expect(inputErrorOf(() => parseEcrEvent(body)).field).toBe(field);
  });

  it('takes a plain repository name too', () => {
    const body = withValue(fixture('inspector2-scan.json'), ['detail', 'repository-name'], 'team-a/app');
    expect(scanOf(parseEcrEvent(body))?.repository).toBe('team-a/app');
  });
});

describe('Harbor SCANNING_COMPLETED / SCANNING_FAILED', () => {
  it('reads the vulnerability summary: Unknown counts as LOW, fixable for all severities', () => {
    expect(parseHarborWebhook(fixture('harbor-scanning-completed.json'))).toStrictEqual({
      events: [],
      ignored: [],
      scans: [
        {
          registry: 'hub.harbor.com',
          repository: 'test-webhook/debian',
          digest: HARBOR_DIGEST,
          tags: ['latest'],
          result: {
            $case: 'complete',
            scanner: 'harbor',
            counts: { CRITICAL: 0, HIGH: 3, MEDIUM: 20, LOW: 30 },
            fixable: 20,
          },
          id: undefined,
        },
      ],
    });
  });

  it('reads summary: null (a clean image) as no findings, none fixable', () => {
    const body = withValue(
      fixture('harbor-scanning-completed.json'),
      [
        'event_data',
        'resources',
        0,
        'scan_overview',
        'application/vnd.security.vulnerability.report; version=1.1',
        'summary',
      ],
      null,
    );
    expect(scanOf(parseHarborWebhook(body))?.result).toEqual({
      $case: 'complete',
      scanner: 'harbor',
      counts: { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0 },
      fixable: 0,
    });
  });

  it('reads SCANNING_FAILED, and a report whose status is not Success, as a failed scan', () => {
    expect(scanOf(parseHarborWebhook(fixture('harbor-scanning-failed.json')))?.result).toMatchObject({
      $case: 'failed',
      scanner: 'harbor',
    });
    const errored = withValue(fixture('harbor-scanning-failed.json'), ['type'], 'SCANNING_COMPLETED');
    expect(scanOf(parseHarborWebhook(errored))?.result).toEqual({
      $case: 'failed',
      scanner: 'harbor',
      detail: 'Harbor scan status Error',
    });
  });

  it('reads an untagged (pushed by digest) artifact with no tags', () => {
    const body = withValue(
      fixture('harbor-scanning-completed.json'),
      ['event_data', 'resources', 0, 'tag'],
      HARBOR_DIGEST,
    );
    expect(scanOf(parseHarborWebhook(body))?.tags).toEqual([]);
  });

  it.each<[string, unknown[], unknown, string]>([
    [
      'no scan_overview',
      ['event_data', 'resources', 0, 'scan_overview'],
      undefined,
      'event_data.resources[0].scan_overview',
    ],
    [
      'an overview without a vulnerability report',
      ['event_data', 'resources', 0, 'scan_overview'],
      { 'application/x': {} },
      'event_data.resources[0].scan_overview',
    ],
  ])('refuses %s', (_, path, value, field) => {
    const body = withValue(fixture('harbor-scanning-completed.json'), path as (string | number)[], value);
    expect(inputErrorOf(() => parseHarborWebhook(body)).field).toBe(field);
  });
});

describe('ECR PutImage through CloudTrail', () => {
  it('returns the push with its pusher, as a cloudtrail event', () => {
    expect(parseEcrEvent(fixture('cloudtrail-ecr-putimage.json'))).toStrictEqual({
      events: [
        {
          registry: '123456789012.dkr.ecr.us-west-2.amazonaws.com',
          repository: 'my-repository-name',
          digest: DIGEST,
          tag: 'latest',
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: undefined,
          source: 'cloudtrail',
          id: '6f87d04b-9f74-4f04-a780-7acf4b0a9b38',
          pushedBy: 'arn:aws:sts::123456789012:assumed-role/ci-push/build-42',
        },
      ],
      ignored: [],
    });
  });

  it.each<[string, unknown[], unknown, string]>([
    ['another ECR call', ['detail', 'eventName'], 'BatchGetImage', 'detail.eventName'],
    ['a call that failed', ['detail', 'errorCode'], 'ImageTagAlreadyExistsException', 'detail.errorCode'],
    [
      'a sha512 digest',
      ['detail', 'responseElements', 'image', 'imageId', 'imageDigest'],
      `sha512:${'ab'.repeat(64)}`,
      'detail.responseElements.image.imageId.imageDigest',
    ],
  ])('ignores %s', (_, path, value, field) => {
    const body = withValue(fixture('cloudtrail-ecr-putimage.json'), path as (string | number)[], value);
    expect(parseEcrEvent(body)).toMatchObject({ events: [], ignored: [{ field }] });
  });

  it.each<[string, unknown[], unknown, string]>([
    ['no identity', ['detail', 'userIdentity'], undefined, 'detail.userIdentity'],
    ['an empty principal', ['detail', 'userIdentity', 'arn'], '', 'detail.userIdentity.arn'],
    ['no response', ['detail', 'responseElements'], null, 'detail.responseElements'],
    [
      'no repository',
      ['detail', 'requestParameters', 'repositoryName'],
      undefined,
      'detail.requestParameters.repositoryName',
    ],
  ])('refuses %s, naming the field', (_, path, value, field) => {
    const body = withValue(fixture('cloudtrail-ecr-putimage.json'), path as (string | number)[], value);
    expect(inputErrorOf(() => parseEcrEvent(body)).field).toBe(field);
  });

  it('hands CloudTrail and scan events to the ECR parser through parsePushNotification', () => {
    expect(parsePushNotification('ecr', fixture('cloudtrail-ecr-putimage.json')).events[0]?.source).toBe(
      'cloudtrail',
    );
    expect(parsePushNotification('ecr', fixture('inspector2-scan.json')).scans).toHaveLength(1);
    expect(parsePushNotification('harbor', fixture('harbor-scanning-completed.json')).scans).toHaveLength(1);
  });
});

describe('the pusher of distribution and Harbor pushes', () => {
  const v3 = (): unknown => fixture('distribution-v3-envelope.json');

  it("reads distribution's actor.name", () => {
    expect(parseDistributionNotification(v3(), undefined).events[0]?.pushedBy).toBe('ci');
  });

  it('has none for an unauthenticated push (actor: {})', () => {
    const body = withValue(v3(), ['events', 0, 'actor'], {});
    expect(parseDistributionNotification(body, undefined).events[0]).not.toHaveProperty('pushedBy');
  });

  it('refuses an actor that is not an object', () => {
    const body = withValue(v3(), ['events', 0, 'actor'], 'ci');
    expect(inputErrorOf(() => parseDistributionNotification(body, undefined)).field).toBe('events[0].actor');
  });

  it("reads Harbor's operator", () => {
    expect(parseHarborWebhook(fixture('harbor-push-tag.json')).events[0]?.pushedBy).toBe('admin');
    const anonymous = withValue(fixture('harbor-push-tag.json'), ['operator'], '');
    expect(parseHarborWebhook(anonymous).events[0]).not.toHaveProperty('pushedBy');
  });
});

describe('never crashes', () => {
  it.each([
    ['ecr-image-scan.json', parseEcrEvent],
    ['inspector2-scan.json', parseEcrEvent],
    ['cloudtrail-ecr-putimage.json', parseEcrEvent],
    ['harbor-scanning-completed.json', parseHarborWebhook],
    ['harbor-scanning-failed.json', parseHarborWebhook],
  ] as const)('on any JSON value in any field of %s', (name, parse) => {
    const body = fixture(name);
    fc.assert(
      fc.property(fc.constantFrom(...pathsOf(body)), fc.jsonValue({ maxDepth: 4 }), (path, value) =>
        expectResultOrInputError(() => parse(withValue(body, path, value))),
      ),
      { numRuns: 300 },
    );
  });
});
