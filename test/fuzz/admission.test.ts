/**
 * AdmissionReviews under arbitrary input. Parsing either yields a request or an InputError
 * ADMISSION_REVIEW_INVALID (400) naming the field; image extraction never throws. The whole
 * controller, over a verifier with an in-memory registry (no network), answers every review it
 * can parse with the same uid, and never admits an image that is not signed by the policy's
 * witness: whatever the mutation, `allowed: true` means every image the object runs was verified.
 */
import fc from 'fast-check';
import { AdmissionController } from '../../lib/admission/controller';
import { extractImages, parseAdmissionReview, type AdmissionRequest } from '../../lib/admission/review';
import { InputError } from '../../lib/core/errors';
import { parseReference } from '../../lib/core/reference';
import { KeyRing } from '../../lib/keys/keyring';
import { ImageVerifier } from '../../lib/verification/verifier';
import { MemoryRegistries, policy, testKey, verificationConfig } from '../verification/helpers';
import { anyJson, check, expectInputRejection, fixture, mutatedFixtures, RUNS } from './arbitraries';

const HOST = 'registry.example.com';
const FIXTURES = [
  'pod-create',
  'pod-create-dryrun',
  'deployment-create',
  'deployment-update',
  'replicaset-create',
  'statefulset-create',
  'daemonset-create',
  'job-create',
  'cronjob-create',
  'replicationcontroller-create',
  'pod-ephemeralcontainers-update',
  'pod-delete',
  'pod-exec-connect',
].map((name) => fixture('admission', `${name}.json`));

/** Image references a mutation may put anywhere: signed, unsigned, missing, other registries. */
const IMAGES = fc.constantFrom(
  `${HOST}/team-a/web:v0`,
  `${HOST}/team-a/web:v1`,
  `${HOST}/team-a/web:v2`,
  `${HOST}/team-a/web:v9`,
  `${HOST}/team-a/web`,
  `${HOST}/team-a/web@sha256:${'a'.repeat(64)}`,
  `${HOST}/team-a/proxy@sha256:${'a'.repeat(64)}`,
  `${HOST}/team-a/proxy:v1@sha256:${'a'.repeat(64)}`,
  `${HOST}/team-a/proxy@sha256:${'b'.repeat(64)}`,
  `${HOST}/tools/debug:v2`,
  `${HOST.toUpperCase()}/team-a/web:v1`,
  `other.example.com/team-a/web:v1`,
  'nginx',
  'team-a/web:v1',
  '',
  `${HOST}/team-a/web:v1 `,
);

/** `repository:tag` and `repository@digest` of every image the witness signed. */
const signed = new Set<string>();
let controller: AdmissionController;
let registries: MemoryRegistries;

beforeAll(async () => {
  const release = testKey('release');
  registries = new MemoryRegistries();
  const registry = registries.add(HOST);
  for (const repository of ['team-a/web', 'team-a/migrate', 'team-a/batch', 'team-a/fetch']) {
    for (const tag of ['v0', 'v1']) {
      const digest = await registry.pushImage(repository, tag, `${repository}:${tag}`);
      await registry.sign(repository, digest, release.privateKey);
      signed.add(`${repository}:${tag}`).add(`${repository}@${digest}`);
    }
    // Pushed, never signed.
    await registry.pushImage(repository, 'v2', `${repository}:v2`);
  }
  const proxy = `sha256:${'a'.repeat(64)}`;
  await registry.sign('team-a/proxy', proxy, release.privateKey);
  signed.add(`team-a/proxy@${proxy}`);
  // Present and unsigned: the ephemeral container of the fixture.
  await registry.pushImage('tools/debug', 'v2', 'tools/debug:v2');

  const verifier = new ImageVerifier({
    config: verificationConfig(
      [release.witness],
      [
        policy({
          name: 'team-a',
          images: [`${HOST}/team-a/**`],
          attestors: [{ witnesses: ['release'], count: 1 }],
          mutateDigest: true,
        }),
      ],
      { noMatchingPolicy: 'deny' },
    ),
    registries,
    keys: new KeyRing({ witnesses: [release.witness], baseDir: '/' }),
    signatures: { bundles: false },
  });
  // A deadline long enough never to decide a review in these tests.
  controller = new AdmissionController({ verifier, deadlineMs: 60_000 });
});

/** True when Signet verified `image` as signed: its digest (or else its tag) is in `signed`. */
function isSigned(image: string): boolean {
  let ref;
  try {
    ref = parseReference(image);
  } catch {
    return false;
  }
  if (ref.registry !== HOST) return false;
  return ref.digest !== undefined
    ? signed.has(`${ref.repository}@${ref.digest}`)
    : signed.has(`${ref.repository}:${ref.tag ?? 'latest'}`);
}

/** Whether a correct controller may admit `request`: nothing to check, or every image signed. */
function mayAdmit(request: AdmissionRequest): boolean {
  if (request.operation === 'DELETE' || request.operation === 'CONNECT') return true;
  if (request.subResource !== undefined && request.subResource !== 'ephemeralcontainers') return true;
  const extraction = extractImages(request);
  if (extraction.$case === 'unsupported') return true;
  if (extraction.problems.length > 0) return false;
  return extraction.sites.every((site) => site.problem === undefined && isSigned(site.image));
}

function parsed(body: unknown): AdmissionRequest | undefined {
  try {
    return parseAdmissionReview(body);
  } catch (error) {
    expectInputRejection(error, ['ADMISSION_REVIEW_INVALID']);
    return undefined;
  }
}

describe('parseAdmissionReview and extractImages', () => {
  it('parse or reject (400, naming the field) arbitrary JSON', () => {
    fc.assert(
      fc.property(anyJson, (body) => {
        const request = parsed(body);
        if (request !== undefined) extractImages(request);
      }),
      { numRuns: RUNS },
    );
  });

  it('parse or reject mutated real reviews, and extract well-formed image sites', () => {
    fc.assert(
      fc.property(mutatedFixtures(FIXTURES, IMAGES), (body) => {
        const request = parsed(body);
        if (request === undefined) return;
        check(request.uid.length > 0, 'empty uid', request);
        const extraction = extractImages(request);
        if (extraction.$case === 'unsupported') {
          check(extraction.kind.length > 0, 'unsupported kind without a name', extraction);
          return;
        }
        for (const site of extraction.sites) {
          check(site.pointer.startsWith('/'), 'pointer is not a JSON pointer', site);
          check(site.field.length > 0 && typeof site.image === 'string', 'site without field or image', site);
        }
        for (const problem of extraction.problems) {
          check(problem.field.length > 0 && problem.message.length > 0, 'problem without field', problem);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('AdmissionController', () => {
  it('answers every parseable mutated review with its uid, and admits only signed images', async () => {
    const seen = { allowed: 0, denied: 0, rejected: 0 };
    await fc.assert(
      fc.asyncProperty(mutatedFixtures(FIXTURES, IMAGES), async (body) => {
        let answer;
        try {
          answer = await controller.review(body, undefined);
        } catch (error) {
          expectInputRejection(error, ['ADMISSION_REVIEW_INVALID']);
          check(
            error instanceof InputError && parsed(body) === undefined,
            'rejected a parseable review',
            body,
          );
          seen.rejected++;
          return;
        }
        const request = parseAdmissionReview(body);
        const { response } = answer;
        check(response.uid === request.uid, 'answered another uid', { body, response });
        if (response.allowed) {
          seen.allowed++;
          check(mayAdmit(request), 'admitted an unsigned or unreadable image', { body, response });
          if (response.patch !== undefined) {
            const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as unknown;
            check(Array.isArray(ops) && ops.length > 0, 'patch is not a JSONPatch', response);
          }
        } else {
          seen.denied++;
          check(response.status?.code === 403, 'denied without 403', response);
          const message = response.status?.message ?? '';
          check(message.length > 0 && message.length <= 4096, 'denial message empty or too long', response);
          check(response.patch === undefined, 'denied with a patch', response);
        }
      }),
      { numRuns: RUNS },
    );
    expect(seen.allowed).toBeGreaterThan(RUNS / 100);
    expect(seen.denied).toBeGreaterThan(RUNS / 100);
    expect(seen.rejected).toBeGreaterThan(RUNS / 100);
    // Only the one registry the policy covers was ever asked.
    expect(new Set(registries.requested)).toEqual(new Set([HOST]));
  });
});
