/**
 * The HTTP surface under arbitrary requests: any method, path, Authorization header and body.
 * Whatever arrives, `handleRequest` answers (it never throws), never reads a body it has not
 * authenticated, never lets an event through without the events token, never hands the intake an
 * event for a registry the configuration does not list, and never answers a verification route
 * 2xx without the configured credentials.
 */
import fc from 'fast-check';
import { AdmissionController } from '../../lib/admission/controller';
import { silentLogger } from '../../lib/core/logger';
import type { PushEvent } from '../../lib/events/types';
import { eventSender, secretDigest } from '../../lib/http/auth';
import { handleRequest, InFlightLimit, type HttpRequest, type SurfaceDeps } from '../../lib/http/surface';
import { KeyRing } from '../../lib/keys/keyring';
import type { IntakeOutcome, PushIntake } from '../../lib/signing/intake';
import { ImageVerifier } from '../../lib/verification/verifier';
import { MemoryRegistries, policy, testKey, verificationConfig } from '../verification/helpers';
import { anyJson, check, fixture, hostileString, mutatedFixtures, RUNS } from './arbitraries';

const EVENTS_TOKEN = 'events-token-0123456789abcdef';
const BEARER = 'verify-token-0123456789abcdef';
const SECRET = 's3cr3t-path';
const CONFIGURED = 'registry.example.com';

/** An intake that records what it was given and accepts everything. */
class RecordingIntake implements PushIntake {
  readonly seen: PushEvent[] = [];
  accept(events: readonly PushEvent[]): Promise<readonly IntakeOutcome[]> {
    this.seen.push(...events);
    return Promise.resolve(
      events.map((event, i) => ({ $case: 'accepted' as const, id: `id-${i}`, duplicate: false, event })),
    );
  }
}

let deps: SurfaceDeps;
let intake: RecordingIntake;

beforeAll(() => {
  const release = testKey('release');
  const config = verificationConfig(
    [release.witness],
    [policy({ name: 'p', images: [`${CONFIGURED}/**`], attestors: [{ witnesses: ['release'], count: 1 }] })],
  );
  const verifier = new ImageVerifier({
    config,
    registries: new MemoryRegistries(),
    keys: new KeyRing({ witnesses: [release.witness], baseDir: '/nonexistent' }),
    signatures: { bundles: false },
  });
  intake = new RecordingIntake();
  deps = {
    logger: silentLogger,
    maxBodyBytes: 64 * 1024,
    limit: new InFlightLimit(8),
    verification: {
      access: { bearer: secretDigest(BEARER), secretPath: SECRET, tokenInPath: false },
      verifier,
      controller: new AdmissionController({ verifier }),
    },
    events: {
      senders: [eventSender('events token', EVENTS_TOKEN)],
      isConfigured: (host) => host === CONFIGURED,
      intake,
    },
  };
});

/** A body stream that records whether anyone read it. */
function body(bytes: Buffer): { source: HttpRequest['body']; read: () => boolean } {
  let read = false;
  const stream = {
    async *[Symbol.asyncIterator]() {
      read = true;
      yield new Uint8Array(bytes);
    },
  };
  return { source: { $case: 'stream', stream, declaredLength: bytes.length }, read: () => read };
}

const PATHS = fc.oneof(
  fc.constantFrom(
    '/events/distribution',
    '/events/ecr',
    '/events/harbor',
    '/admission',
    '/admission/eu-1',
    '/verify',
    `/${SECRET}/admission`,
    `/${SECRET}/verify`,
    `/${SECRET}/admission/eu-1`,
    '/healthz',
    '/',
    '//events/distribution',
    '/events/distribution/',
    `/${SECRET}`,
  ),
  hostileString.map((s) => `/${s}`),
);

const AUTHORIZATIONS = fc.oneof(
  fc.constantFrom(
    undefined,
    `Bearer ${EVENTS_TOKEN}`,
    `Bearer ${BEARER}`,
    `bearer ${EVENTS_TOKEN}`,
    `Bearer ${EVENTS_TOKEN} extra`,
    `Basic ${EVENTS_TOKEN}`,
    `Bearer ${EVENTS_TOKEN.slice(0, -1)}`,
    'Bearer ',
    '',
  ),
  hostileString,
);

/** Real notifications, the 2.8 ones rewritten onto the configured host (and a v3 one that is on it already). */
const distribution28 = fixture('events', 'distribution-2.8-push-notifications.json') as {
  envelopes: unknown[];
};
const EVENTS = mutatedFixtures([
  ...distribution28.envelopes.map((e) =>
    JSON.parse(JSON.stringify(e).replaceAll('127.0.0.1:5055', CONFIGURED)),
  ),
  ...distribution28.envelopes,
  fixture('events', 'distribution-v3-envelope.json'),
  fixture('events', 'harbor-push-tag.json'),
  fixture('events', 'ecr-push-tag.json'),
]);

const BODIES = fc.oneof(
  EVENTS.map((doc) => JSON.stringify(doc) ?? ''),
  anyJson.map((doc) => JSON.stringify(doc) ?? ''),
  hostileString,
  fc.constant(JSON.stringify(fixture('admission', 'pod-create.json'))),
);

describe('handleRequest under arbitrary requests', () => {
  it('always answers, and authenticates before it reads', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'post', 'OPTIONS'),
        PATHS,
        AUTHORIZATIONS,
        BODIES,
        async (method, path, authorization, text) => {
          const { source, read } = body(Buffer.from(text, 'utf8'));
          const before = intake.seen.length;
          const response = await handleRequest(
            {
              method,
              path,
              headers: { authorization, 'content-type': 'application/json' },
              body: source,
            },
            deps,
          );
          check(response.status >= 200 && response.status < 600, 'answers with an HTTP status', response);
          const isEvents = path.startsWith('/events/');
          // The scheme is case-insensitive (RFC 7235); the token is not.
          const bearer = (token: string) =>
            authorization !== undefined &&
            new RegExp(`^bearer[ \\t]+${token}[ \\t]*$`, 'i').test(authorization);
          const eventsAuthorized = bearer(EVENTS_TOKEN);
          if (isEvents && !eventsAuthorized) {
            check(
              response.status === 401 || response.status === 404 || response.status === 405,
              'refused',
              response,
            );
            check(!read(), 'an unauthenticated events body is never read');
          }
          const isVerification = !isEvents && path !== '/healthz';
          const verificationAuthorized =
            authorization === `Bearer ${BEARER}` && path.startsWith(`/${SECRET}/`);
          if (isVerification && !verificationAuthorized) {
            check(response.status >= 400, 'no verification answer without credentials', response);
            check(!read(), 'an unauthenticated verification body is never read');
          }
          for (const event of intake.seen.slice(before)) {
            check(event.registry === CONFIGURED, 'only configured registries reach the intake', event);
          }
          check(deps.limit?.inFlight === 0, 'every in-flight slot is released');
        },
      ),
      { numRuns: RUNS },
    );
  });
});
