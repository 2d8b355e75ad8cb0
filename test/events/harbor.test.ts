import fc from 'fast-check';
import { InputError } from '../../lib/core/errors';
import { parseHarborWebhook, parsePushNotification } from '../../lib/events';
import type { PushEvent } from '../../lib/events/types';
import {
  deeplyNested,
  expectResultOrInputError,
  fixture,
  inputErrorOf,
  pathsOf,
  withValue,
  type JsonPath,
} from './helpers';

const TAGGED_DIGEST = 'sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8';
const UNTAGGED_DIGEST = 'sha256:a85b50bd293763f6fd393ee85a8cd5884e1ba9fe3531c71a6d87ce70c8567161';
const fieldOf = (body: unknown): string => inputErrorOf(() => parseHarborWebhook(body)).field;
const resource = (...path: JsonPath): JsonPath => ['event_data', 'resources', 0, ...path];

describe('parseHarborWebhook', () => {
  describe('with a push by tag (the documented payload)', () => {
    it('returns exactly one PushEvent on the host of resource_url', () => {
      const expected: PushEvent = {
        registry: 'hub.harbor.com',
        repository: 'test-webhook/debian',
        digest: TAGGED_DIGEST,
        tag: 'latest',
        mediaType: undefined,
        artifactType: undefined,
        source: 'harbor',
        id: undefined,
        pushedBy: 'admin',
      };
      expect(parseHarborWebhook(fixture('harbor-push-tag.json'))).toStrictEqual({
        events: [expected],
        ignored: [],
      });
    });
  });

  describe('with a push by digest', () => {
    it('drops the digest Harbor puts in tag: the push is untagged', () => {
      const [event] = parseHarborWebhook(fixture('harbor-push-digest.json')).events;
      expect(event).toStrictEqual({
        registry: 'hub.harbor.com',
        repository: 'test-webhook/debian',
        digest: UNTAGGED_DIGEST,
        tag: undefined,
        mediaType: undefined,
        artifactType: undefined,
        source: 'harbor',
        id: undefined,
        pushedBy: 'robot$test-webhook+ci',
      });
    });

    it.each(['', null, undefined])('treats tag %j as untagged', (tag) => {
      const body = withValue(fixture('harbor-push-tag.json'), resource('tag'), tag);
      expect(parseHarborWebhook(body).events[0]?.tag).toBeUndefined();
    });
  });

  describe('registry host', () => {
    it.each([
      ['harbor.example.com:8443/test-webhook/debian:latest', 'harbor.example.com:8443'],
      ['Harbor.Example.com/test-webhook/debian:latest', 'harbor.example.com'],
      ['https://harbor.example.com/test-webhook/debian:latest', 'harbor.example.com'],
      ['10.0.0.5/test-webhook/debian@' + TAGGED_DIGEST, '10.0.0.5'],
    ])('comes from resource_url %s', (url, host) => {
      const body = withValue(fixture('harbor-push-tag.json'), resource('resource_url'), url);
      expect(parseHarborWebhook(body).events[0]?.registry).toBe(host);
    });
  });

  it('keeps a cosign signature tag for the pipeline to skip', () => {
    const sigTag = `${TAGGED_DIGEST.replace(':', '-')}.sig`;
    const body = withValue(fixture('harbor-push-tag.json'), resource('tag'), sigTag);
    expect(parseHarborWebhook(body).events[0]?.tag).toBe(sigTag);
  });

  it('returns one PushEvent per resource', () => {
    const body = fixture('harbor-push-tag.json') as { event_data: { resources: unknown[] } };
    const digestPush = (fixture('harbor-push-digest.json') as { event_data: { resources: unknown[] } })
      .event_data.resources[0];
    body.event_data.resources.push(digestPush);
    expect(parseHarborWebhook(body).events.map((event) => event.digest)).toStrictEqual([
      TAGGED_DIGEST,
      UNTAGGED_DIGEST,
    ]);
  });

  describe('what is ignored', () => {
    it('a DELETE_ARTIFACT', () => {
      expect(parseHarborWebhook(fixture('harbor-delete-artifact.json'))).toStrictEqual({
        events: [],
        ignored: [{ field: 'type', reason: 'Harbor "DELETE_ARTIFACT" notification' }],
      });
    });

    it.each(['PULL_ARTIFACT', 'SCANNING_STOPPED', 'QUOTA_EXCEED', 'REPLICATION'])(
      'a %s, without reading event_data',
      (type) => {
        const body = withValue(fixture('harbor-push-tag.json'), ['event_data'], 'not read');
        expect(parseHarborWebhook(withValue(body, ['type'], type)).ignored[0]?.field).toBe('type');
      },
    );

    it('a resource with a sha512 digest', () => {
      const body = withValue(
        fixture('harbor-push-tag.json'),
        resource('digest'),
        `sha512:${'cd'.repeat(64)}`,
      );
      expect(parseHarborWebhook(body)).toStrictEqual({
        events: [],
        ignored: [{ field: 'event_data.resources[0]', reason: 'only sha256 manifest digests can be signed' }],
      });
    });
  });

  describe('when the payload is malformed', () => {
    const base = fixture('harbor-push-tag.json');
    it.each<[string, unknown, string]>([
      ['the body is null', null, 'body'],
      ['the body is an array', [base], 'body'],
      ['the body is a number', 1, 'body'],
      [
        'it is a CloudEvents payload',
        { specversion: '1.0', type: 'harbor.artifact.pushed', data: {} },
        'specversion',
      ],
      ['the type is missing', withValue(base, ['type'], undefined), 'type'],
      ['the type is a number', withValue(base, ['type'], 1), 'type'],
      ['event_data is missing', withValue(base, ['event_data'], undefined), 'event_data'],
      ['event_data is an array', withValue(base, ['event_data'], []), 'event_data'],
      [
        'the repository is missing',
        withValue(base, ['event_data', 'repository'], undefined),
        'event_data.repository',
      ],
      [
        'repo_full_name is missing',
        withValue(base, ['event_data', 'repository', 'repo_full_name'], undefined),
        'event_data.repository.repo_full_name',
      ],
      [
        'repo_full_name is upper case',
        withValue(base, ['event_data', 'repository', 'repo_full_name'], 'Test-Webhook/Debian'),
        'event_data.repository.repo_full_name',
      ],
      [
        'repo_full_name is deeply nested',
        withValue(base, ['event_data', 'repository', 'repo_full_name'], deeplyNested(100_000)),
        'event_data.repository.repo_full_name',
      ],
      [
        'resources is missing',
        withValue(base, ['event_data', 'resources'], undefined),
        'event_data.resources',
      ],
      ['resources is an object', withValue(base, ['event_data', 'resources'], {}), 'event_data.resources'],
      [
        'resources holds more than 1000 entries',
        withValue(
          base,
          ['event_data', 'resources'],
          Array.from({ length: 1001 }, () => 0),
        ),
        'event_data.resources',
      ],
      ['a resource is null', withValue(base, resource(), null), 'event_data.resources[0]'],
      [
        'the digest is missing',
        withValue(base, resource('digest'), undefined),
        'event_data.resources[0].digest',
      ],
      [
        'the digest is bad',
        withValue(base, resource('digest'), 'sha256:xyz'),
        'event_data.resources[0].digest',
      ],
      ['the tag is bad', withValue(base, resource('tag'), 'latest!'), 'event_data.resources[0].tag'],
      ['the tag is a number', withValue(base, resource('tag'), 3), 'event_data.resources[0].tag'],
      [
        'resource_url is missing',
        withValue(base, resource('resource_url'), undefined),
        'event_data.resources[0].resource_url',
      ],
      [
        'resource_url has no path',
        withValue(base, resource('resource_url'), 'hub.harbor.com'),
        'event_data.resources[0].resource_url',
      ],
      [
        'resource_url starts with a slash',
        withValue(base, resource('resource_url'), '/test-webhook/debian:latest'),
        'event_data.resources[0].resource_url',
      ],
      [
        'resource_url has a bad host',
        withValue(base, resource('resource_url'), 'hub harbor/test-webhook/debian:latest'),
        'event_data.resources[0].resource_url',
      ],
      [
        'resource_url is an object',
        withValue(base, resource('resource_url'), {}),
        'event_data.resources[0].resource_url',
      ],
    ])('throws EVENT_INVALID when %s', (_case, body, field) => {
      expect(() => parseHarborWebhook(body)).toThrowWithCode(InputError, 'EVENT_INVALID');
      expect(fieldOf(body)).toBe(field);
    });
  });

  describe('never crashes', () => {
    it('on any JSON body', () => {
      fc.assert(
        fc.property(fc.jsonValue(), (body) => expectResultOrInputError(() => parseHarborWebhook(body))),
        {
          numRuns: 300,
        },
      );
    });

    it.each(['harbor-push-tag.json', 'harbor-push-digest.json'])(
      'on any JSON value in any field of %s',
      (name) => {
        const body = fixture(name);
        fc.assert(
          fc.property(fc.constantFrom(...pathsOf(body)), fc.jsonValue({ maxDepth: 4 }), (path, value) =>
            expectResultOrInputError(() => parseHarborWebhook(withValue(body, path, value))),
          ),
          { numRuns: 500 },
        );
      },
    );
  });
});

describe('parsePushNotification', () => {
  it('hands Harbor payloads to the Harbor parser', () => {
    expect(
      parsePushNotification('harbor', fixture('harbor-push-tag.json'), 'application/json').events[0]?.source,
    ).toBe('harbor');
  });
});
