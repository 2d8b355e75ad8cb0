/**
 * Push-event parsers under arbitrary input: whatever a registry (or anyone who can reach the
 * endpoint) sends, the parser either returns well-formed PushEvents or rejects with an InputError
 * the service answers 4xx, naming the field. It never throws anything else.
 */
import fc from 'fast-check';
import { isDigest, isRegistryHost, isRepository, isTag } from '../../lib/core/reference';
import {
  DISTRIBUTION_EVENTS_V1,
  DISTRIBUTION_EVENTS_V2,
  parseDistributionNotification,
  parseEcrEvent,
  parseHarborWebhook,
  type NormalizedEvents,
  type PushEventSource,
} from '../../lib/events';
import {
  anyJson,
  check,
  expectInputRejection,
  fixture,
  hostileString,
  mutatedFixtures,
  RUNS,
} from './arbitraries';

// The 2.8 file holds the three envelopes one push POSTed, in order; v3 holds one envelope.
const DISTRIBUTION = [
  ...(fixture('events', 'distribution-2.8-push-notifications.json') as { envelopes: unknown[] }).envelopes,
  fixture('events', 'distribution-v3-envelope.json'),
];
const ECR = [
  'ecr-push-tag.json',
  'ecr-push-digest.json',
  'ecr-push-failure.json',
  'ecr-push-cosign-signature.json',
  'ecr-delete.json',
].map((name) => fixture('events', name));
const HARBOR = ['harbor-push-tag.json', 'harbor-push-digest.json', 'harbor-delete-artifact.json'].map(
  (name) => fixture('events', name),
);

const MEDIA_TYPE = /^[^/\s;]+\/[^/\s;]+$/;

const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    DISTRIBUTION_EVENTS_V1,
    DISTRIBUTION_EVENTS_V2,
    'application/json',
    `${DISTRIBUTION_EVENTS_V1}; charset=utf-8`,
    'APPLICATION/JSON',
    'text/plain',
  ),
  hostileString,
);

/** A successful parse must hold only values the pipeline can use without checking again. */
function expectWellFormed(result: NormalizedEvents, source: PushEventSource): void {
  for (const event of result.events) {
    check(isRegistryHost(event.registry), 'registry is not a host', event);
    check(event.registry === event.registry.toLowerCase(), 'registry is not lowercased', event);
    check(isRepository(event.repository), 'repository is not a repository name', event);
    check(isDigest(event.digest), 'digest is not a sha256 digest', event);
    check(event.tag === undefined || isTag(event.tag), 'tag is not a tag', event);
    check(event.mediaType === undefined || MEDIA_TYPE.test(event.mediaType), 'bad mediaType', event);
    check(event.artifactType === undefined || MEDIA_TYPE.test(event.artifactType), 'bad artifactType', event);
    check(event.source === source, 'wrong source', event);
  }
  for (const ignored of result.ignored) {
    check(ignored.field.length > 0 && ignored.reason.length > 0, 'ignored without field or reason', ignored);
  }
  // The service answers with this; it must serialize.
  JSON.stringify(result);
}

/** How often each outcome came up: a fuzzer that never gets past the first check proves little. */
const outcomes = { events: 0, ignored: 0, rejected: 0 };

function checkParse(parse: () => NormalizedEvents, source: PushEventSource): void {
  let result: NormalizedEvents;
  try {
    result = parse();
  } catch (error) {
    expectInputRejection(error, ['EVENT_INVALID', 'UNSUPPORTED_MEDIA_TYPE']);
    outcomes.rejected++;
    return;
  }
  expectWellFormed(result, source);
  if (result.events.length > 0) outcomes.events++;
  else outcomes.ignored++;
}

/** Runs `body` and checks that mutated fixtures produced every outcome, each at least 0.1% of the time. */
function reachingEveryOutcome(body: () => void): void {
  outcomes.events = outcomes.ignored = outcomes.rejected = 0;
  body();
  for (const [outcome, count] of Object.entries(outcomes)) {
    check(count >= RUNS / 1000, `mutated fixtures reached "${outcome}" only ${count} times`);
  }
}

describe('parseDistributionNotification', () => {
  it('accepts or rejects (4xx, naming the field) arbitrary JSON', () => {
    fc.assert(
      fc.property(anyJson, contentType, (body, type) => {
        checkParse(() => parseDistributionNotification(body, type), 'distribution');
      }),
      { numRuns: RUNS },
    );
  });

  it('accepts or rejects mutated real envelopes (2.8 and v3)', () => {
    reachingEveryOutcome(() =>
      fc.assert(
        fc.property(mutatedFixtures(DISTRIBUTION), (body) => {
          checkParse(() => parseDistributionNotification(body, DISTRIBUTION_EVENTS_V1), 'distribution');
        }),
        { numRuns: RUNS },
      ),
    );
  });
});

describe('parseEcrEvent', () => {
  it('accepts or rejects (4xx, naming the field) arbitrary JSON', () => {
    fc.assert(
      fc.property(anyJson, (body) => checkParse(() => parseEcrEvent(body), 'ecr')),
      { numRuns: RUNS },
    );
  });

  it('accepts or rejects mutated real EventBridge events', () => {
    reachingEveryOutcome(() =>
      fc.assert(
        fc.property(mutatedFixtures(ECR), (body) => checkParse(() => parseEcrEvent(body), 'ecr')),
        { numRuns: RUNS },
      ),
    );
  });
});

describe('parseHarborWebhook', () => {
  it('accepts or rejects (4xx, naming the field) arbitrary JSON', () => {
    fc.assert(
      fc.property(anyJson, (body) => checkParse(() => parseHarborWebhook(body), 'harbor')),
      { numRuns: RUNS },
    );
  });

  it('accepts or rejects mutated real Harbor webhooks', () => {
    reachingEveryOutcome(() =>
      fc.assert(
        fc.property(mutatedFixtures(HARBOR), (body) => checkParse(() => parseHarborWebhook(body), 'harbor')),
        { numRuns: RUNS },
      ),
    );
  });
});
