import fc from 'fast-check';
import { InputError } from '../../lib/core/errors';
import { isSignatureArtifactTag } from '../../lib/core/reference';
import { ecrRegistryHost, parseEcrEvent, parsePushNotification } from '../../lib/events';
import type { PushEvent } from '../../lib/events/types';
import { deeplyNested, expectResultOrInputError, fixture, inputErrorOf, pathsOf, withValue } from './helpers';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const PUSHED_DIGEST = 'sha256:f98d67af8e53a536502bfc600de3266556b06ed635a32d60aa7a5fe6d7e609d7';
const fieldOf = (body: unknown): string => inputErrorOf(() => parseEcrEvent(body)).field;

describe('parseEcrEvent', () => {
  describe('with a push by tag', () => {
    it('returns exactly one PushEvent on the account and region registry', () => {
      const expected: PushEvent = {
        registry: '123456789012.dkr.ecr.us-west-2.amazonaws.com',
        repository: 'my-repository-name',
        digest: PUSHED_DIGEST,
        tag: 'latest',
        mediaType: OCI_MANIFEST,
        artifactType: OCI_CONFIG,
        source: 'ecr',
        id: '13cde686-328b-6117-af20-0e5566167482',
      };
      expect(parseEcrEvent(fixture('ecr-push-tag.json'))).toStrictEqual({ events: [expected], ignored: [] });
    });

    it('reads the original documented sample, without the media types', () => {
      const body = withValue(
        withValue(fixture('ecr-push-tag.json'), ['detail', 'manifest-media-type'], undefined),
        ['detail', 'artifact-media-type'],
        undefined,
      );
      const [event] = parseEcrEvent(body).events;
      expect(event?.mediaType).toBeUndefined();
      expect(event?.artifactType).toBeUndefined();
    });
  });

  describe('with a push by digest', () => {
    it('returns an untagged PushEvent for "image-tag": ""', () => {
      expect(parseEcrEvent(fixture('ecr-push-digest.json')).events).toStrictEqual([
        {
          registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
          repository: 'team-a/app',
          digest: 'sha256:778645862e8bba7ad64eabc8f6b51158e47124c12864ed42d7baf744b6329542',
          tag: undefined,
          mediaType: OCI_MANIFEST,
          artifactType: OCI_CONFIG,
          source: 'ecr',
          id: 'fcf0ea66-968f-3eda-ca24-40dcd217003b',
        },
      ]);
    });

    it.each([undefined, null])('treats image-tag %s as untagged', (tag) => {
      const body = withValue(fixture('ecr-push-digest.json'), ['detail', 'image-tag'], tag);
      expect(parseEcrEvent(body).events[0]?.tag).toBeUndefined();
    });
  });

  describe('with the push of a cosign signature', () => {
    it('still returns a PushEvent, keeping the .sig tag for the pipeline to skip', () => {
      const [event] = parseEcrEvent(fixture('ecr-push-cosign-signature.json')).events;
      expect(event?.tag).toBe(`${PUSHED_DIGEST.replace(':', '-')}.sig`);
      expect(isSignatureArtifactTag(event?.tag)).toBe(true);
      // ECR reports the config media type: only the tag tells a .sig image from any other.
      expect(event?.artifactType).toBe(OCI_CONFIG);
    });

    it('passes a Sigstore bundle artifact type through', () => {
      const body = withValue(
        withValue(
          fixture('ecr-push-digest.json'),
          ['detail', 'artifact-media-type'],
          'application/vnd.dev.sigstore.bundle.v0.3+json',
        ),
        ['detail', 'manifest-media-type'],
        OCI_MANIFEST,
      );
      expect(parseEcrEvent(body).events[0]?.artifactType).toBe(
        'application/vnd.dev.sigstore.bundle.v0.3+json',
      );
    });
  });

  describe('what is ignored', () => {
    it('a DELETE (the documented sample, whose digest is never read)', () => {
      expect(parseEcrEvent(fixture('ecr-delete.json'))).toStrictEqual({
        events: [],
        ignored: [{ field: 'detail.action-type', reason: 'ECR "DELETE" action' }],
      });
    });

    it('a failed push', () => {
      expect(parseEcrEvent(fixture('ecr-push-failure.json'))).toStrictEqual({
        events: [],
        ignored: [{ field: 'detail.result', reason: 'ECR push with result "FAILURE"' }],
      });
    });

    it.each(['UPDATE_STORAGE_CLASS', 'REPLICATE'])('a %s action', (actionType) => {
      const body = withValue(fixture('ecr-push-tag.json'), ['detail', 'action-type'], actionType);
      expect(parseEcrEvent(body).ignored[0]?.field).toBe('detail.action-type');
    });

    it('a schema1 manifest', () => {
      const body = withValue(
        fixture('ecr-push-tag.json'),
        ['detail', 'manifest-media-type'],
        'application/vnd.docker.distribution.manifest.v1+prettyjws',
      );
      expect(parseEcrEvent(body)).toStrictEqual({
        events: [],
        ignored: [{ field: 'detail.manifest-media-type', reason: 'schema1 manifests cannot be signed' }],
      });
    });
  });

  describe('registry host', () => {
    it.each([
      ['123456789012', 'us-east-1', '123456789012.dkr.ecr.us-east-1.amazonaws.com'],
      ['123456789012', 'us-gov-west-1', '123456789012.dkr.ecr.us-gov-west-1.amazonaws.com'],
      ['123456789012', 'cn-north-1', '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn'],
      ['123456789012', 'cn-northwest-1', '123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn'],
      ['123456789012', 'us-iso-east-1', '123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov'],
      ['123456789012', 'us-isob-east-1', '123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov'],
    ])('is derived from account %s and region %s', (account, region, host) => {
      expect(ecrRegistryHost(account, region)).toBe(host);
      const body = withValue(
        withValue(fixture('ecr-push-tag.json'), ['account'], account),
        ['region'],
        region,
      );
      expect(parseEcrEvent(body).events[0]?.registry).toBe(host);
    });
  });

  describe('when the event is malformed', () => {
    const base = fixture('ecr-push-tag.json');
    const detail = (key: string, value: unknown): unknown => withValue(base, ['detail', key], value);
    it.each<[string, unknown, string]>([
      ['the body is null', null, 'body'],
      ['the body is an array of events', [base], 'body'],
      ['the body is a string', JSON.stringify(base), 'body'],
      ['the source is not aws.ecr', withValue(base, ['source'], 'aws.s3'), 'source'],
      ['the source is missing', withValue(base, ['source'], undefined), 'source'],
      [
        'the detail-type is another ECR event',
        withValue(base, ['detail-type'], 'ECR Pull Through Cache Action'),
        'detail-type',
      ],
      ['the detail-type is a number', withValue(base, ['detail-type'], 1), 'detail-type'],
      ['the detail is missing', withValue(base, ['detail'], undefined), 'detail'],
      ['the detail is a string', withValue(base, ['detail'], '{}'), 'detail'],
      ['the action-type is missing', detail('action-type', undefined), 'detail.action-type'],
      ['the action-type is a number', detail('action-type', 1), 'detail.action-type'],
      ['the result is missing', detail('result', undefined), 'detail.result'],
      ['the result is an object', detail('result', { ok: true }), 'detail.result'],
      ['the account has 11 digits', withValue(base, ['account'], '12345678901'), 'account'],
      ['the account is a number', withValue(base, ['account'], 123456789012), 'account'],
      ['the account is missing', withValue(base, ['account'], undefined), 'account'],
      ['the region is upper case', withValue(base, ['region'], 'US-WEST-2'), 'region'],
      ['the region has no number', withValue(base, ['region'], 'us-west'), 'region'],
      ['the region is a hostname', withValue(base, ['region'], 'evil.example.com/x'), 'region'],
      ['the region is missing', withValue(base, ['region'], undefined), 'region'],
      ['the repository is missing', detail('repository-name', undefined), 'detail.repository-name'],
      ['the repository is upper case', detail('repository-name', 'My-Repo'), 'detail.repository-name'],
      ['the repository is an array', detail('repository-name', ['a']), 'detail.repository-name'],
      ['the digest is missing', detail('image-digest', undefined), 'detail.image-digest'],
      [
        'the digest is the documented 60-digit one',
        detail('image-digest', 'sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234'),
        'detail.image-digest',
      ],
      ['the digest is a number', detail('image-digest', 256), 'detail.image-digest'],
      ['the tag has a slash', detail('image-tag', 'v1/x'), 'detail.image-tag'],
      ['the tag is a number', detail('image-tag', 1), 'detail.image-tag'],
      ['the manifest media type is a number', detail('manifest-media-type', 1), 'detail.manifest-media-type'],
      [
        'the artifact media type is not a media type',
        detail('artifact-media-type', 'config'),
        'detail.artifact-media-type',
      ],
      ['the id is a number', withValue(base, ['id'], 1), 'id'],
      [
        'the repository is deeply nested',
        detail('repository-name', deeplyNested(100_000)),
        'detail.repository-name',
      ],
    ])('throws EVENT_INVALID when %s', (_case, body, field) => {
      expect(() => parseEcrEvent(body)).toThrowWithCode(InputError, 'EVENT_INVALID');
      expect(fieldOf(body)).toBe(field);
    });
  });

  describe('never crashes', () => {
    it('on any JSON body', () => {
      fc.assert(
        fc.property(fc.jsonValue(), (body) => expectResultOrInputError(() => parseEcrEvent(body))),
        { numRuns: 300 },
      );
    });

    it.each(['ecr-push-tag.json', 'ecr-push-digest.json', 'ecr-delete.json', 'ecr-push-failure.json'])(
      'on any JSON value in any field of %s',
      (name) => {
        const body = fixture(name);
        fc.assert(
          fc.property(fc.constantFrom(...pathsOf(body)), fc.jsonValue({ maxDepth: 4 }), (path, value) =>
            expectResultOrInputError(() => parseEcrEvent(withValue(body, path, value))),
          ),
          { numRuns: 500 },
        );
      },
    );
  });
});

describe('parsePushNotification', () => {
  it('hands ECR events to the ECR parser, whatever the content type', () => {
    expect(
      parsePushNotification('ecr', fixture('ecr-push-tag.json'), 'application/json').events[0]?.source,
    ).toBe('ecr');
    expect(parsePushNotification('ecr', fixture('ecr-push-tag.json')).events).toHaveLength(1);
  });
});
