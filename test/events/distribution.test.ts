import fc from 'fast-check';
import { InputError } from '../../lib/core/errors';
import {
  DISTRIBUTION_EVENTS_V1,
  DISTRIBUTION_EVENTS_V2,
  parseDistributionNotification,
  parsePushNotification,
} from '../../lib/events';
import type { IgnoredNotification, PushEvent } from '../../lib/events/types';
import {
  deeplyNested,
  expectResultOrInputError,
  fixture,
  inputErrorOf,
  pathsOf,
  withValue,
  type JsonPath,
} from './helpers';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const CAPTURED_DIGEST = 'sha256:3e0348d823644d6a73ea7d9fd45ff1eff8facb705e2bc053467d2b2bbf106590';
const V3_DIGEST = 'sha256:ee6be89bcdafa97f78351b96b9ecf103c9a2fe20600f47d0f88fd555ec8b710f';

/** The three envelopes docker-registry 2.8 POSTed for one push, in order. */
const capturedEnvelopes = (): unknown[] =>
  (fixture('distribution-2.8-push-notifications.json') as { envelopes: unknown[] }).envelopes;
/** The manifest push envelope of the capture, the base of every malformed variant. */
const manifestEnvelope = (): unknown => capturedEnvelopes()[2];
const parse = (body: unknown): ReturnType<typeof parseDistributionNotification> =>
  parseDistributionNotification(body, DISTRIBUTION_EVENTS_V1);
const fieldOf = (body: unknown): string => inputErrorOf(() => parse(body)).field;
const target = (...path: JsonPath): JsonPath => ['events', 0, 'target', ...path];

describe('parseDistributionNotification', () => {
  describe('with the notifications docker-registry 2.8 sent for one push', () => {
    const results = capturedEnvelopes().map(parse);

    it('returns the manifest push as exactly one PushEvent', () => {
      const expected: PushEvent = {
        registry: '127.0.0.1:5055',
        repository: 'team-a/app',
        digest: CAPTURED_DIGEST,
        tag: 'v1',
        mediaType: OCI_MANIFEST,
        artifactType: undefined,
        source: 'distribution',
        id: '81ea5d74-3f69-451e-9c51-053703dc20e6',
      };
      expect(results.flatMap((result) => result.events)).toStrictEqual([expected]);
    });

    it('ignores the two blob pushes', () => {
      const blob: IgnoredNotification = {
        field: 'events[0]',
        reason: 'blob push (application/octet-stream)',
      };
      expect(results.map((result) => result.ignored)).toStrictEqual([[blob], [blob], []]);
    });
  });

  describe('with a distribution v3 (events.v2+json) envelope', () => {
    const result = parseDistributionNotification(
      fixture('distribution-v3-envelope.json'),
      DISTRIBUTION_EVENTS_V2,
    );

    it('returns the manifest push, with target.references read past', () => {
      expect(result.events).toStrictEqual([
        {
          registry: 'registry.example.com',
          repository: 'team-a/app',
          digest: V3_DIGEST,
          tag: 'v2',
          mediaType: OCI_MANIFEST,
          artifactType: undefined,
          source: 'distribution',
          id: '5d3bd1b1-7b1e-4a35-9d0e-1c1b2f0c6a10',
          pushedBy: 'ci',
        },
      ]);
    });

    it('ignores the layer push, the blob mount and the tag delete (empty digest and media type)', () => {
      expect(result.ignored).toStrictEqual([
        {
          field: 'events[1]',
          reason: 'blob push (application/vnd.docker.container.image.rootfs.diff+x-gtar)',
        },
        { field: 'events[2]', reason: 'blob mount' },
        { field: 'events[3]', reason: 'delete event' },
      ]);
    });

    it('takes target.artifactType when the descriptor carries one', () => {
      const body = withValue(
        fixture('distribution-v3-envelope.json'),
        target('artifactType'),
        'application/vnd.example+json',
      );
      expect(parse(body).events[0]?.artifactType).toBe('application/vnd.example+json');
    });

    it('names the index of the bad event', () => {
      const body = withValue(fixture('distribution-v3-envelope.json'), ['events', 1, 'action'], 7);
      expect(fieldOf(body)).toBe('events[1].action');
    });
  });

  describe('content type', () => {
    it.each([
      DISTRIBUTION_EVENTS_V1,
      DISTRIBUTION_EVENTS_V2,
      'application/json',
      'application/json; charset=utf-8',
      'Application/VND.Docker.Distribution.Events.V1+JSON',
      undefined,
    ])('accepts %s', (contentType) => {
      expect(parseDistributionNotification(manifestEnvelope(), contentType).events).toHaveLength(1);
    });

    it.each([
      'text/plain',
      '',
      'application/x-www-form-urlencoded',
      'application/vnd.docker.distribution.events.v3+json',
    ])('refuses %j', (contentType) => {
      const run = (): unknown => parseDistributionNotification(manifestEnvelope(), contentType);
      expect(run).toThrowWithCode(InputError, 'UNSUPPORTED_MEDIA_TYPE');
      expect(inputErrorOf(run).field).toBe('content-type');
    });

    it('checks the content type before the body', () => {
      expect(() => parseDistributionNotification(null, 'text/html')).toThrowWithCode(
        InputError,
        'UNSUPPORTED_MEDIA_TYPE',
      );
    });
  });

  describe('when the notification is malformed', () => {
    const base = manifestEnvelope();
    it.each<[string, unknown, string]>([
      ['the body is null', null, 'body'],
      ['the body is a number', 42, 'body'],
      ['the body is a string', '{"events":[]}', 'body'],
      ['the body is an array', [base], 'body'],
      ['events is missing', {}, 'events'],
      ['events is an object', { events: { 0: {} } }, 'events'],
      ['events is a string', { events: 'push' }, 'events'],
      ['an event is null', { events: [null] }, 'events[0]'],
      ['an event is an array', { events: [[]] }, 'events[0]'],
      ['the action is missing', withValue(base, ['events', 0, 'action'], undefined), 'events[0].action'],
      ['the action is a number', withValue(base, ['events', 0, 'action'], 1), 'events[0].action'],
      [
        'the action is an object',
        withValue(base, ['events', 0, 'action'], { push: true }),
        'events[0].action',
      ],
      ['the target is missing', withValue(base, target(), undefined), 'events[0].target'],
      ['the target is an array', withValue(base, target(), []), 'events[0].target'],
      ['the digest is missing', withValue(base, target('digest'), undefined), 'events[0].target.digest'],
      [
        'the digest is short',
        withValue(base, target('digest'), 'sha256:3e0348d8'),
        'events[0].target.digest',
      ],
      [
        'the digest is upper case',
        withValue(base, target('digest'), CAPTURED_DIGEST.toUpperCase()),
        'events[0].target.digest',
      ],
      [
        'the digest has no algorithm',
        withValue(base, target('digest'), CAPTURED_DIGEST.slice(7)),
        'events[0].target.digest',
      ],
      ['the digest is a number', withValue(base, target('digest'), 7), 'events[0].target.digest'],
      [
        'the sha256 digest has 60 digits',
        withValue(base, target('digest'), CAPTURED_DIGEST.slice(0, -4)),
        'events[0].target.digest',
      ],
      [
        'the sha512 digest has 64 digits',
        withValue(base, target('digest'), `sha512:${'ab'.repeat(32)}`),
        'events[0].target.digest',
      ],
      [
        'the repository is missing',
        withValue(base, target('repository'), undefined),
        'events[0].target.repository',
      ],
      [
        'the repository is upper case',
        withValue(base, target('repository'), 'Team-A/App'),
        'events[0].target.repository',
      ],
      [
        'the repository has a tag',
        withValue(base, target('repository'), 'team-a/app:v1'),
        'events[0].target.repository',
      ],
      [
        'the repository is an array',
        withValue(base, target('repository'), ['team-a', 'app']),
        'events[0].target.repository',
      ],
      ['the repository is empty', withValue(base, target('repository'), ''), 'events[0].target.repository'],
      ['the tag has a space', withValue(base, target('tag'), 'v 1'), 'events[0].target.tag'],
      ['the tag is too long', withValue(base, target('tag'), 'v'.repeat(129)), 'events[0].target.tag'],
      ['the tag starts with a dot', withValue(base, target('tag'), '.v1'), 'events[0].target.tag'],
      ['the tag is a number', withValue(base, target('tag'), 1), 'events[0].target.tag'],
      ['the media type is a number', withValue(base, target('mediaType'), 1), 'events[0].target.mediaType'],
      [
        'the media type is not type/subtype',
        withValue(base, target('mediaType'), 'manifest'),
        'events[0].target.mediaType',
      ],
      [
        'the artifact type is an object',
        withValue(base, target('artifactType'), {}),
        'events[0].target.artifactType',
      ],
      ['the id is a number', withValue(base, ['events', 0, 'id'], 12), 'events[0].id'],
      [
        'the request is a string',
        withValue(base, ['events', 0, 'request'], '127.0.0.1:5055'),
        'events[0].request',
      ],
      [
        'a manifest URL comes without a media type',
        withValue(base, target('mediaType'), undefined),
        'events[0].target.mediaType',
      ],
    ])('throws EVENT_INVALID when %s', (_case, body, field) => {
      expect(() => parse(body)).toThrowWithCode(InputError, 'EVENT_INVALID');
      expect(fieldOf(body)).toBe(field);
    });

    describe('when neither the request nor the URL gives the registry host', () => {
      it.each<[string, unknown]>([
        [
          'both are missing',
          withValue(withValue(base, ['events', 0, 'request'], undefined), target('url'), undefined),
        ],
        [
          'the host is missing and the URL is not one',
          withValue(withValue(base, ['events', 0, 'request', 'host'], undefined), target('url'), 'not a url'),
        ],
        [
          'the host is invalid and the URL is ftp',
          withValue(withValue(base, ['events', 0, 'request', 'host'], 'a b'), target('url'), 'ftp://x/y'),
        ],
        [
          'the host is a number and the URL is missing',
          withValue(withValue(base, ['events', 0, 'request', 'host'], 5055), target('url'), undefined),
        ],
        [
          'the host has port 0',
          withValue(
            withValue(base, ['events', 0, 'request', 'host'], 'registry:0'),
            target('url'),
            undefined,
          ),
        ],
      ])('throws EVENT_INVALID naming events[0].request.host when %s', (_case, body) => {
        expect(() => parse(body)).toThrowWithCode(InputError, 'EVENT_INVALID');
        expect(fieldOf(body)).toBe('events[0].request.host');
      });
    });

    it('refuses more than 1000 events, whatever they are', () => {
      const body = { events: Array.from({ length: 1001 }, () => null) };
      expect(fieldOf(body)).toBe('events');
    });

    it('reads 1000 events', () => {
      const event = (manifestEnvelope() as { events: unknown[] }).events[0];
      expect(parse({ events: Array.from({ length: 1000 }, () => event) }).events).toHaveLength(1000);
    });

    it('refuses a deeply nested value in a field without overflowing the stack', () => {
      const body = withValue(base, target('repository'), deeplyNested(100_000));
      expect(fieldOf(body)).toBe('events[0].target.repository');
    });
  });

  describe('registry host', () => {
    const base = manifestEnvelope();

    it('falls back to the host of target.url when request.host is missing', () => {
      const body = withValue(base, ['events', 0, 'request', 'host'], undefined);
      expect(parse(body).events[0]?.registry).toBe('127.0.0.1:5055');
    });

    it('falls back to the host of target.url when request.host is not a host', () => {
      const body = withValue(
        withValue(base, ['events', 0, 'request', 'host'], 'not a host'),
        target('url'),
        `https://registry.example.com:8443/v2/team-a/app/manifests/${CAPTURED_DIGEST}`,
      );
      expect(parse(body).events[0]?.registry).toBe('registry.example.com:8443');
    });

    it('prefers request.host to the URL', () => {
      const body = withValue(
        base,
        target('url'),
        `http://internal:5000/v2/team-a/app/manifests/${CAPTURED_DIGEST}`,
      );
      expect(parse(body).events[0]?.registry).toBe('127.0.0.1:5055');
    });

    it('lowercases the Host header', () => {
      const body = withValue(base, ['events', 0, 'request', 'host'], 'Registry.Example.COM:5000');
      expect(parse(body).events[0]?.registry).toBe('registry.example.com:5000');
    });

    it('keeps an IPv6 host with its port', () => {
      const body = withValue(base, ['events', 0, 'request', 'host'], '[::1]:5000');
      expect(parse(body).events[0]?.registry).toBe('[::1]:5000');
    });
  });

  describe('what is ignored', () => {
    const base = manifestEnvelope();
    const reasonFor = (body: unknown): IgnoredNotification[] => {
      const result = parse(body);
      expect(result.events).toHaveLength(0);
      return [...result.ignored];
    };

    it.each([
      ['pull', 'pull event'],
      ['delete', 'delete event'],
      ['mount', 'blob mount'],
      ['replicate', 'unknown action "replicate"'],
    ])('a %s event', (action, reason) => {
      expect(reasonFor(withValue(base, ['events', 0, 'action'], action))).toStrictEqual([
        { field: 'events[0]', reason },
      ]);
    });

    it('a pull without a target (nothing else is read)', () => {
      const body = { events: [{ action: 'pull' }] };
      expect(reasonFor(body)).toStrictEqual([{ field: 'events[0]', reason: 'pull event' }]);
    });

    it.each([
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
      'application/vnd.docker.distribution.manifest.v1+json',
    ])('a schema1 manifest push (%s)', (mediaType) => {
      expect(reasonFor(withValue(base, target('mediaType'), mediaType))).toStrictEqual([
        { field: 'events[0]', reason: 'schema1 manifests cannot be signed' },
      ]);
    });

    it.each([
      'application/vnd.oci.image.layer.v1.tar+gzip',
      'application/vnd.oci.image.config.v1+json',
      'application/octet-stream',
    ])('a blob push of %s', (mediaType) => {
      const body = withValue(withValue(base, target('mediaType'), mediaType), target('url'), undefined);
      expect(reasonFor(body)).toStrictEqual([{ field: 'events[0]', reason: `blob push (${mediaType})` }]);
    });

    it('a push to a blob URL, even with a manifest media type', () => {
      const body = withValue(
        base,
        target('url'),
        `http://127.0.0.1:5055/v2/team-a/app/blobs/${CAPTURED_DIGEST}`,
      );
      expect(reasonFor(body)).toStrictEqual([{ field: 'events[0]', reason: `blob push (${OCI_MANIFEST})` }]);
    });

    it('a manifest URL with a media type distribution cannot store', () => {
      const body = withValue(base, target('mediaType'), 'application/vnd.oci.artifact.manifest.v1+json');
      expect(reasonFor(body)).toStrictEqual([
        {
          field: 'events[0]',
          reason: 'manifest of unsupported media type application/vnd.oci.artifact.manifest.v1+json',
        },
      ]);
    });

    it('a push with neither media type nor URL', () => {
      const body = withValue(withValue(base, target('mediaType'), undefined), target('url'), undefined);
      expect(reasonFor(body)[0]?.reason).toMatch(/not a manifest/);
    });

    it('a manifest pushed with a sha512 digest', () => {
      const body = withValue(base, target('digest'), `sha512:${'ab'.repeat(64)}`);
      expect(reasonFor(body)).toStrictEqual([
        { field: 'events[0]', reason: 'only sha256 manifest digests can be signed' },
      ]);
    });

    it('an empty envelope yields nothing', () => {
      expect(parse({ events: [] })).toStrictEqual({ events: [], ignored: [] });
    });
  });

  describe('what is kept', () => {
    const base = manifestEnvelope();

    it.each([
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
    ])('a push of %s', (mediaType) => {
      expect(parse(withValue(base, target('mediaType'), mediaType)).events[0]?.mediaType).toBe(mediaType);
    });

    it('a push by digest, untagged', () => {
      const event = parse(withValue(base, target('tag'), undefined)).events[0];
      expect(event?.tag).toBeUndefined();
      expect(event?.digest).toBe(CAPTURED_DIGEST);
    });

    it('a cosign signature push, with its tag so that the pipeline can skip it', () => {
      const sigTag = `${CAPTURED_DIGEST.replace(':', '-')}.sig`;
      expect(parse(withValue(base, target('tag'), sigTag)).events[0]?.tag).toBe(sigTag);
    });

    it('a manifest push to a repository with a "blobs" path component', () => {
      const body = withValue(
        withValue(base, target('repository'), 'team-a/blobs'),
        target('url'),
        `http://127.0.0.1:5055/v2/team-a/blobs/manifests/${CAPTURED_DIGEST}`,
      );
      expect(parse(body).events[0]?.repository).toBe('team-a/blobs');
    });

    it('a media type with parameters, as its essence', () => {
      const body = withValue(base, target('mediaType'), `${OCI_MANIFEST}; charset=utf-8`);
      expect(parse(body).events[0]?.mediaType).toBe(OCI_MANIFEST);
    });

    it('an event without an id', () => {
      expect(parse(withValue(base, ['events', 0, 'id'], undefined)).events[0]?.id).toBeUndefined();
    });
  });

  describe('never crashes', () => {
    it('on any JSON body', () => {
      fc.assert(
        fc.property(fc.jsonValue(), (body) => expectResultOrInputError(() => parse(body))),
        { numRuns: 300 },
      );
    });

    it('on any JSON value in any field of a real envelope', () => {
      const body = fixture('distribution-v3-envelope.json');
      const paths = pathsOf(body);
      fc.assert(
        fc.property(fc.constantFrom(...paths), fc.jsonValue({ maxDepth: 4 }), (path, value) =>
          expectResultOrInputError(() => parse(withValue(body, path, value))),
        ),
        { numRuns: 2000 },
      );
    });

    it('on any JSON value in two fields of the captured manifest push', () => {
      const body = manifestEnvelope();
      const paths = pathsOf(body).filter((path) => path.length > 2);
      fc.assert(
        fc.property(
          fc.constantFrom(...paths),
          fc.constantFrom(...paths),
          fc.jsonValue(),
          fc.jsonValue(),
          (p1, p2, v1, v2) => {
            let mutated: unknown;
            try {
              mutated = withValue(withValue(body, p1, v1), p2, v2);
            } catch {
              return; // p2 lay under p1, which v1 replaced
            }
            expectResultOrInputError(() => parse(mutated));
          },
        ),
        { numRuns: 1000 },
      );
    });

    it('on any content type', () => {
      fc.assert(
        fc.property(fc.string(), (contentType) =>
          expectResultOrInputError(() => parseDistributionNotification(manifestEnvelope(), contentType)),
        ),
      );
    });
  });
});

describe('parsePushNotification', () => {
  it('hands distribution envelopes and their content type to the distribution parser', () => {
    expect(
      parsePushNotification('distribution', manifestEnvelope(), DISTRIBUTION_EVENTS_V1).events[0]?.digest,
    ).toBe(CAPTURED_DIGEST);
    expect(() => parsePushNotification('distribution', manifestEnvelope(), 'text/plain')).toThrowWithCode(
      InputError,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  });
});
