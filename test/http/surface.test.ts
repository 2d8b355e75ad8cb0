/**
 * Signet's HTTP surface (lib/http/surface.ts) as both edges use it, fed `HttpRequest`s directly:
 * bodies are bounded before and while they are read, the in-flight cap answers 503 before a body
 * is touched and gives its slot back, push events are accepted only for configured registries the
 * sender speaks for, bad input is a 400 naming the field, and routing answers 404 / 405.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventSender, secretDigest } from '../../lib/http/auth';
import { handleRequest, InFlightLimit, type HttpResponse, type SurfaceDeps } from '../../lib/http/surface';
import type { PushEvent } from '../../lib/events/types';
import type { IntakeOutcome, PushIntake } from '../../lib/signing/intake';
import {
  DISTRIBUTION_EVENTS_TYPE,
  RecordingIntake,
  capturingLogger,
  distributionPush,
  httpRequest,
  verificationSurface,
} from '../support/http-surface';
import { endlessBody, heldBody, recordingBody } from '../support/recording-body';
import { fixture as admissionFixture } from '../admission/fixtures';

const EVENTS_TOKEN = 'events-token-2b6d0f4a8c1e3g5i';
const EMBEDDED_TOKEN = 'embedded-token-9a7c5e3g1i2k4m6o';
const WEBHOOK_TOKEN = 'webhook-token-3c5e7g9i1k2m4o6q';
const CONFIGURED = 'registry.example.com';
const EMBEDDED = '127.0.0.1:5000';
const UNCONFIGURED = '169.254.169.254';
const LIMIT = 64 * 1024;

const AS_EVENTS = { authorization: `Bearer ${EVENTS_TOKEN}`, 'content-type': DISTRIBUTION_EVENTS_TYPE };
const AS_EMBEDDED = { authorization: `Bearer ${EMBEDDED_TOKEN}`, 'content-type': DISTRIBUTION_EVENTS_TYPE };
const AS_WEBHOOK = { authorization: `Bearer ${WEBHOOK_TOKEN}` };

const eventFixture = (name: string): unknown =>
  JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'events', name), 'utf8')) as unknown;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers of several shapes
const bodyOf = (response: HttpResponse): any => response.body;

let intake: RecordingIntake;
let lines: string[];
let deps: SurfaceDeps;
let events: NonNullable<SurfaceDeps['events']>;

beforeEach(() => {
  intake = new RecordingIntake();
  const captured = capturingLogger();
  lines = captured.lines;
  events = {
    senders: [
      eventSender('events token', EVENTS_TOKEN),
      eventSender('embedded registry', EMBEDDED_TOKEN, [EMBEDDED]),
    ],
    isConfigured: (host) => host === CONFIGURED || host === EMBEDDED,
    intake,
  };
  deps = {
    logger: captured.logger,
    maxBodyBytes: LIMIT,
    events,
    verification: verificationSurface({
      bearer: secretDigest(WEBHOOK_TOKEN),
      secretPath: undefined,
      tokenInPath: false,
    }),
  };
});

const postEvents = (route: string, body: unknown, headers: Record<string, string> = AS_EVENTS) =>
  handleRequest(httpRequest('POST', route, recordingBody(JSON.stringify(body)).source, headers), deps);

describe('when a body is larger than maxBodyBytes', () => {
  it.each([
    ['/events/distribution', AS_EVENTS],
    ['/admission', AS_WEBHOOK],
    ['/verify', AS_WEBHOOK],
  ])(
    'refuses a declared Content-Length over the limit on %s without reading a byte',
    async (route, headers) => {
      const body = recordingBody(Buffer.alloc(LIMIT + 1, 0x20), { declaredLength: LIMIT + 1 });
      const response = await handleRequest(httpRequest('POST', route, body.source, headers), deps);
      expect(response.status).toBe(413);
      expect(bodyOf(response).error).toMatchObject({ code: 'BODY_TOO_LARGE', field: 'body' });
      expect(response.close).toBe(true);
      expect(body.touched).toBe(false);
    },
  );

  it('cuts a streamed body without Content-Length the moment it passes the limit', async () => {
    const chunk = 4 * 1024;
    const body = endlessBody(chunk);
    const response = await handleRequest(
      httpRequest('POST', '/events/distribution', body.source, AS_EVENTS),
      deps,
    );
    expect(response.status).toBe(413);
    expect(bodyOf(response).error.code).toBe('BODY_TOO_LARGE');
    expect(response.close).toBe(true);
    // Read up to the chunk that crossed the limit, then given up on (the stream was returned).
    expect(body.pulled).toBeGreaterThan(LIMIT);
    expect(body.pulled).toBeLessThanOrEqual(LIMIT + chunk);
    expect(body.finished).toBe(true);
    expect(intake.batches).toHaveLength(0);
  });

  it('cuts a streamed body that declared less than it sends', async () => {
    const body = recordingBody(Buffer.alloc(4 * LIMIT, 0x20), { declaredLength: 100, chunkSize: 1024 });
    const response = await handleRequest(httpRequest('POST', '/verify', body.source, AS_WEBHOOK), deps);
    expect(response.status).toBe(413);
    expect(body.pulled).toBeLessThanOrEqual(LIMIT + 1024);
  });

  it('refuses a body a Lambda received whole (bytes) over the limit', async () => {
    const response = await handleRequest(
      httpRequest('POST', '/verify', { $case: 'bytes', bytes: Buffer.alloc(LIMIT + 1, 0x20) }, AS_WEBHOOK),
      deps,
    );
    expect(response.status).toBe(413);
  });

  it('accepts a body of exactly the limit', async () => {
    const json = JSON.stringify({ image: `${CONFIGURED}/team-a/app:v1` });
    const padded = json + ' '.repeat(LIMIT - Buffer.byteLength(json));
    const response = await handleRequest(
      httpRequest('POST', '/verify', recordingBody(padded).source, AS_WEBHOOK),
      deps,
    );
    expect(response.status).toBe(200);
  });
});

describe('when more requests arrive than maxInFlight', () => {
  let limit: InFlightLimit;

  beforeEach(() => {
    limit = new InFlightLimit(1);
    deps = { ...deps, limit };
  });

  it('answers 503 with Retry-After before reading the body, and gives the slot back after', async () => {
    const slow = heldBody(JSON.stringify(distributionPush(CONFIGURED)));
    const first = handleRequest(httpRequest('POST', '/events/distribution', slow.source, AS_EVENTS), deps);
    // The first request holds the only slot while its body trickles in.
    await new Promise((resolve) => setImmediate(resolve));
    expect(limit.inFlight).toBe(1);

    const extra = recordingBody(JSON.stringify(distributionPush(CONFIGURED)));
    const refused = await handleRequest(
      httpRequest('POST', '/events/distribution', extra.source, AS_EVENTS),
      deps,
    );
    expect(refused.status).toBe(503);
    expect(bodyOf(refused).error.code).toBe('OVERLOADED');
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.close).toBe(true);
    expect(extra.touched).toBe(false);

    slow.release();
    expect((await first).status).toBe(202);
    expect(limit.inFlight).toBe(0);

    const next = await postEvents('/events/distribution', distributionPush(CONFIGURED));
    expect(next.status).toBe(202);
    expect(limit.inFlight).toBe(0);
  });

  it('is applied before credentials are looked at', async () => {
    const slow = heldBody('{}');
    const first = handleRequest(httpRequest('POST', '/verify', slow.source, AS_WEBHOOK), deps);
    await new Promise((resolve) => setImmediate(resolve));
    const refused = await handleRequest(httpRequest('POST', '/verify', recordingBody('{}').source), deps);
    expect(refused.status).toBe(503);
    slow.release();
    await first;
    expect(limit.inFlight).toBe(0);
  });

  it('gives the slot back after every kind of failure', async () => {
    const attempts: [string, Record<string, string>, string | Buffer][] = [
      ['/events/distribution', {}, '{}'],
      ['/events/distribution', AS_EVENTS, 'not json'],
      ['/events/distribution', AS_EVENTS, Buffer.alloc(LIMIT + 1, 0x20)],
      ['/verify', AS_WEBHOOK, '{"image": "::"}'],
      ['/nowhere', AS_WEBHOOK, '{}'],
    ];
    for (const [route, headers, content] of attempts) {
      await handleRequest(httpRequest('POST', route, recordingBody(content).source, headers), deps);
      expect(limit.inFlight).toBe(0);
    }
    const throwing: PushIntake = {
      accept: () => Promise.reject(new Error('journal disk full')),
    };
    await handleRequest(
      httpRequest(
        'POST',
        '/events/distribution',
        recordingBody(JSON.stringify(distributionPush(CONFIGURED))).source,
        AS_EVENTS,
      ),
      { ...deps, events: { ...events, intake: throwing } },
    );
    expect(limit.inFlight).toBe(0);
  });

  it('still answers /healthz with every slot taken', async () => {
    const slow = heldBody('{}');
    const first = handleRequest(httpRequest('POST', '/verify', slow.source, AS_WEBHOOK), deps);
    await new Promise((resolve) => setImmediate(resolve));
    const health = await handleRequest(httpRequest('GET', '/healthz', recordingBody('').source), deps);
    expect(health.status).toBe(200);
    slow.release();
    await first;
  });
});

describe('when an event names a registry outside registries[]', () => {
  it('answers 200 ignored and never hands it to the intake', async () => {
    const response = await postEvents('/events/distribution', distributionPush(UNCONFIGURED));
    expect(response.status).toBe(200);
    expect(bodyOf(response)).toEqual({
      accepted: [],
      ignored: [
        {
          image: `${UNCONFIGURED}/team-a/app:v1@sha256:${'a'.repeat(64)}`,
          reason: 'registry not configured',
        },
      ],
    });
    expect(intake.batches).toHaveLength(0);
  });

  it('hands on only the configured pushes of a mixed notification', async () => {
    const configured = distributionPush(CONFIGURED) as { events: unknown[] };
    const other = distributionPush(UNCONFIGURED) as { events: unknown[] };
    const response = await postEvents('/events/distribution', {
      events: [...other.events, ...configured.events],
    });
    expect(response.status).toBe(202);
    expect(intake.accepted.map((e) => e.registry)).toEqual([CONFIGURED]);
    expect(bodyOf(response).ignored).toEqual([
      expect.objectContaining({
        reason: 'registry not configured',
        image: expect.stringContaining(UNCONFIGURED),
      }),
    ]);
  });

  it('ignores an ECR event for an account no registry lists', async () => {
    const response = await postEvents('/events/ecr', eventFixture('ecr-push-tag.json'), AS_EVENTS);
    expect(response.status).toBe(200);
    expect(bodyOf(response).ignored).toEqual([
      expect.objectContaining({
        reason: 'registry not configured',
        image: expect.stringContaining('123456789012.dkr.ecr.us-west-2.amazonaws.com/'),
      }),
    ]);
    expect(intake.batches).toHaveLength(0);
  });

  it('ignores a Harbor webhook for a Harbor no registry lists', async () => {
    const response = await postEvents('/events/harbor', eventFixture('harbor-push-tag.json'), AS_EVENTS);
    expect(response.status).toBe(200);
    expect(bodyOf(response).ignored).toEqual([
      expect.objectContaining({
        reason: 'registry not configured',
        image: expect.stringContaining('hub.harbor.com/'),
      }),
    ]);
    expect(intake.batches).toHaveLength(0);
  });

  it('compares hosts in canonical form: another spelling of a configured host is that host', async () => {
    const response = await postEvents('/events/distribution', distributionPush('REGISTRY.Example.com:443'));
    expect(response.status).toBe(202);
    expect(intake.accepted.map((e) => e.registry)).toEqual([CONFIGURED]);
  });
});

describe('when the embedded registry delivers events', () => {
  it('accepts pushes to its own host', async () => {
    const response = await postEvents('/events/distribution', distributionPush(EMBEDDED), AS_EMBEDDED);
    expect(response.status).toBe(202);
    expect(intake.accepted.map((e) => e.registry)).toEqual([EMBEDDED]);
  });

  it('ignores pushes it names on any other configured registry', async () => {
    const response = await postEvents('/events/distribution', distributionPush(CONFIGURED), AS_EMBEDDED);
    expect(response.status).toBe(200);
    expect(bodyOf(response).ignored).toEqual([
      expect.objectContaining({ reason: 'registry not served by sender embedded registry' }),
    ]);
    expect(intake.batches).toHaveLength(0);
  });

  it('gives the configured events token every configured registry', async () => {
    const configured = distributionPush(CONFIGURED) as { events: unknown[] };
    const embedded = distributionPush(EMBEDDED) as { events: unknown[] };
    const response = await postEvents('/events/distribution', {
      events: [...configured.events, ...embedded.events],
    });
    expect(response.status).toBe(202);
    expect(intake.accepted.map((e) => e.registry)).toEqual([CONFIGURED, EMBEDDED]);
  });
});

describe('when an authenticated event is accepted', () => {
  it('answers 202 with the id of each accepted push and the reason for each ignored entry', async () => {
    const push = distributionPush(CONFIGURED) as { events: unknown[] };
    const blob = {
      action: 'push',
      target: {
        mediaType: 'application/octet-stream',
        digest: `sha256:${'b'.repeat(64)}`,
        repository: 'team-a/app',
        url: `http://${CONFIGURED}/v2/team-a/app/blobs/sha256:${'b'.repeat(64)}`,
      },
      request: { host: CONFIGURED },
    };
    const response = await postEvents('/events/distribution', { events: [...push.events, blob] });
    expect(response.status).toBe(202);
    expect(response.close).toBe(false);
    expect(bodyOf(response)).toEqual({
      accepted: [
        { id: 'push-1', image: `${CONFIGURED}/team-a/app:v1@sha256:${'a'.repeat(64)}`, duplicate: false },
      ],
      ignored: [{ field: 'events[1]', reason: expect.stringContaining('blob push') }],
    });
  });

  it('reports what the intake ignored (no rule covers it) with 200', async () => {
    const ignoring: PushIntake = {
      accept: async (events: readonly PushEvent[]): Promise<readonly IntakeOutcome[]> =>
        events.map((event) => ({
          $case: 'ignored',
          reason: 'no signing rule covers this repository',
          event,
        })),
    };
    const response = await handleRequest(
      httpRequest(
        'POST',
        '/events/distribution',
        recordingBody(JSON.stringify(distributionPush(CONFIGURED))).source,
        AS_EVENTS,
      ),
      { ...deps, events: { ...events, intake: ignoring } },
    );
    expect(response.status).toBe(200);
    expect(bodyOf(response).ignored).toEqual([
      expect.objectContaining({ reason: 'no signing rule covers this repository' }),
    ]);
  });

  it('answers 5xx when the intake cannot accept, so that the sender delivers again', async () => {
    const broken: PushIntake = { accept: () => Promise.reject(new Error('journal disk full')) };
    const response = await handleRequest(
      httpRequest(
        'POST',
        '/events/distribution',
        recordingBody(JSON.stringify(distributionPush(CONFIGURED))).source,
        AS_EVENTS,
      ),
      { ...deps, events: { ...events, intake: broken } },
    );
    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(lines.some((l) => l.includes('request failed'))).toBe(true);
  });
});

describe('when the input is malformed', () => {
  it.each([
    ['/events/distribution', 'not json', 'EVENT_INVALID', 'body'],
    ['/events/distribution', '', 'EVENT_INVALID', 'body'],
    ['/events/distribution', '{"notEvents": []}', 'EVENT_INVALID', 'events'],
    ['/events/distribution', '{"events": [{"action": "push"}]}', 'EVENT_INVALID', 'events[0].target'],
    ['/events/distribution', '[]', 'EVENT_INVALID', 'body'],
    ['/events/ecr', '{"source": "aws.s3"}', 'EVENT_INVALID', 'source'],
    ['/events/harbor', '{"type": "PUSH_ARTIFACT"}', 'EVENT_INVALID', 'event_data'],
  ])('answers 400 to %s %j naming %s %s', async (route, content, code, field) => {
    const response = await handleRequest(
      httpRequest('POST', route, recordingBody(content).source, AS_EVENTS),
      deps,
    );
    expect(response.status).toBe(400);
    expect(bodyOf(response).error).toMatchObject({ code, field });
    expect(intake.batches).toHaveLength(0);
  });

  it('answers 415 naming content-type for a distribution envelope of another media type', async () => {
    const response = await handleRequest(
      httpRequest(
        'POST',
        '/events/distribution',
        recordingBody(JSON.stringify(distributionPush(CONFIGURED))).source,
        {
          ...AS_EVENTS,
          'content-type': 'text/plain',
        },
      ),
      deps,
    );
    expect(response.status).toBe(415);
    expect(bodyOf(response).error).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', field: 'content-type' });
  });

  it.each([
    ['/verify', '{"img": "nginx"}', 'REQUEST_INVALID', 'img'],
    ['/verify', '{"image": "nginx", "cluster": "a b"}', 'REQUEST_INVALID', 'cluster'],
    ['/verify', '{"image": 1', 'REQUEST_INVALID', 'body'],
    ['/admission', 'not json', 'ADMISSION_REVIEW_INVALID', 'body'],
    ['/admission/not a cluster', '{}', 'REQUEST_INVALID', 'cluster (path)'],
  ])('answers 400 to %s %j naming %s %s', async (route, content, code, field) => {
    const response = await handleRequest(
      httpRequest('POST', route, recordingBody(content).source, AS_WEBHOOK),
      deps,
    );
    expect(response.status).toBe(400);
    expect(bodyOf(response).error).toMatchObject({ code, field });
  });
});

describe('routing', () => {
  it('answers /healthz without any token', async () => {
    const response = await handleRequest(httpRequest('GET', '/healthz', recordingBody('').source), deps);
    expect(response).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it.each([
    ['POST', '/healthz'],
    ['GET', '/events/distribution'],
    ['PUT', '/events/ecr'],
    ['GET', '/admission'],
    ['DELETE', '/verify'],
  ])('answers 405 to %s %s without reading the body', async (method, route) => {
    const body = recordingBody('{}');
    const headers = route.startsWith('/events/') ? AS_EVENTS : AS_WEBHOOK;
    const response = await handleRequest(httpRequest(method, route, body.source, headers), deps);
    expect(response.status).toBe(405);
    expect(bodyOf(response).error.code).toBe('METHOD_NOT_ALLOWED');
    expect(response.close).toBe(true);
    expect(body.touched).toBe(false);
  });

  it.each(['/', '/events', '/events/quay', '/admission-x', '/verify/extra', '/v2/'])(
    'answers 404 to %s without reading the body',
    async (route) => {
      const body = recordingBody('{}');
      const response = await handleRequest(httpRequest('POST', route, body.source, AS_WEBHOOK), deps);
      expect(response.status).toBe(404);
      expect(bodyOf(response).error.code).toBe('NOT_FOUND');
      expect(body.touched).toBe(false);
    },
  );

  it('answers 404 on an edge that serves no events (the verify Lambda)', async () => {
    const { events: _unused, ...lambda } = deps;
    const response = await handleRequest(
      httpRequest('POST', '/events/distribution', recordingBody('{}').source, AS_WEBHOOK),
      lambda,
    );
    expect(response.status).toBe(404);
  });

  it('answers 404 on an edge that serves no verification, whatever the path', async () => {
    const { verification: _verification, ...eventsOnly } = deps;
    const response = await handleRequest(
      httpRequest('POST', '/admission', recordingBody(JSON.stringify(admissionFixture('pod-create'))).source),
      eventsOnly,
    );
    expect(response.status).toBe(404);
  });
});
