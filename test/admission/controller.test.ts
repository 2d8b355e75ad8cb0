import { AdmissionController } from '../../lib/admission/controller';
import { applyPatch } from '../../lib/admission/patch';
import { InputError } from '../../lib/core/errors';
import { KeyRing } from '../../lib/keys/keyring';
import type { Policy } from '../../lib/config/types';
import { ImageVerifier } from '../../lib/verification/verifier';
import {
  MemoryRegistries,
  MemoryRegistry,
  policy,
  testKey,
  verificationConfig,
} from '../verification/helpers';
import { fixture, type FixtureName } from './fixtures';

const HOST = 'registry.example.com';
const release = testKey('release');
const digests: Record<string, string> = {};

let registries: MemoryRegistries;
let registry: MemoryRegistry;

const IMAGES = [
  'team-a/web',
  'team-a/migrate',
  'team-a/batch',
  'team-a/fetch',
  'tools/debug',
  'team-a/proxy',
];

beforeEach(async () => {
  registries = new MemoryRegistries();
  registry = registries.add(HOST);
  for (const repo of IMAGES) {
    for (const tag of ['v0', 'v1', 'v2']) {
      const digest = await registry.pushImage(repo, tag, `${repo}:${tag}`);
      digests[`${repo}:${tag}`] = digest;
      await registry.sign(repo, digest, release.privateKey);
    }
  }
  // The digest-pinned sidecar of the Pod fixture.
  const proxy = `sha256:${'a'.repeat(64)}`;
  await registry.sign('team-a/proxy', proxy, release.privateKey);
});

function controller(
  overrides: Partial<Policy> = {},
  admission: Parameters<typeof verificationConfig>[2] = {},
): AdmissionController {
  const policies = [
    policy({
      name: 'team-a',
      images: [`${HOST}/**`],
      attestors: [{ witnesses: ['release'], count: 1 }],
      ...overrides,
    }),
  ];
  const verifier = new ImageVerifier({
    config: verificationConfig([release.witness], policies, admission),
    registries,
    keys: new KeyRing({ witnesses: [release.witness], baseDir: '/' }),
    signatures: { bundles: false },
  });
  return new AdmissionController({ verifier });
}

const decodePatch = (patch: string | undefined) =>
  JSON.parse(Buffer.from(patch ?? '', 'base64').toString('utf8'));

describe('AdmissionController', () => {
  it.each<FixtureName>([
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
  ])('allows %s when every image is signed, answering the same uid', async (name) => {
    const review = fixture(name);
    const answer = await controller().review(review, undefined);
    expect(answer).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: review.request.uid, allowed: true },
    });
  });

  it.each<FixtureName>(['pod-delete', 'pod-exec-connect'])('allows %s without any work', async (name) => {
    const answer = await controller().review(fixture(name), undefined);
    expect(answer.response.allowed).toBe(true);
    expect(registries.requested).toEqual([]);
  });

  describe('when an initContainer image is unsigned', () => {
    it('denies the Deployment with 403, naming the field, image, policy and reason', async () => {
      const review = fixture('deployment-create');
      review.request.object.spec.template.spec.initContainers[0].image = `${HOST}/team-a/unsigned:v1`;
      await registry.pushImage('team-a/unsigned', 'v1');
      const { response } = await controller().review(review, undefined);
      expect(response.allowed).toBe(false);
      expect(response.status?.code).toBe(403);
      expect(response.status?.message).toContain('spec.template.spec.initContainers[0].image');
      expect(response.status?.message).toContain(`${HOST}/team-a/unsigned:v1`);
      expect(response.status?.message).toContain('policy "team-a"');
      expect(response.status?.message).toContain('no signatures');
      expect(response.patch).toBeUndefined();
    });
  });

  it('denies a dry run the same way', async () => {
    const review = fixture('pod-create-dryrun');
    review.request.object.spec.containers[0].image = `${HOST}/team-a/unsigned:v1`;
    const { response } = await controller().review(review, undefined);
    expect(response.allowed).toBe(false);
  });

  describe('when an image reference is malformed', () => {
    it('denies, naming the field path, even when no policy would apply', async () => {
      const review = fixture('pod-create');
      review.request.object.spec.containers[1].image = 'Registry.Example.com/Bad Image:v1';
      const { response } = await controller({}, { noMatchingPolicy: 'allow' }).review(review, undefined);
      expect(response.allowed).toBe(false);
      expect(response.status?.message).toContain('spec.containers[1].image: invalid image reference');
    });

    it('denies a non-string image', async () => {
      const review = fixture('pod-create');
      review.request.object.spec.containers[0].image = { name: 'x' };
      const { response } = await controller().review(review, undefined);
      expect(response.allowed).toBe(false);
      expect(response.status?.message).toContain(
        'spec.containers[0].image: invalid image reference: must be a string',
      );
    });
  });

  it('answers HTTP-400 input errors for a review it cannot answer', async () => {
    const review = fixture('pod-create');
    delete review.request.uid;
    await expect(controller().review(review, undefined)).toThrowWithCode(
      InputError,
      'ADMISSION_REVIEW_INVALID',
    );
  });

  describe('in audit mode', () => {
    it('admits unsigned images with warnings under 120 characters', async () => {
      const review = fixture('pod-create');
      review.request.object.spec.containers[0].image = `${HOST}/team-a/unsigned:v1`;
      review.request.object.spec.initContainers[0].image = `${HOST}/team-a/${'x'.repeat(150)}:v1`;
      const { response } = await controller({ mode: 'audit' }).review(review, undefined);
      expect(response.allowed).toBe(true);
      expect(response.warnings).toHaveLength(2);
      for (const warning of response.warnings ?? []) expect(warning.length).toBeLessThan(120);
    });
  });

  it('warns about images no policy covers under noMatchingPolicy: warn', async () => {
    const review = fixture('pod-create');
    review.request.object.spec.containers[0].image = 'nginx:1.27';
    const { response } = await controller(
      { images: [`${HOST}/team-a/**`] },
      { noMatchingPolicy: 'warn' },
    ).review(review, undefined);
    expect(response).toMatchObject({
      allowed: true,
      warnings: [expect.stringContaining('docker.io/library/nginx:1.27')],
    });
    expect(registries.requested.every((h) => h === HOST)).toBe(true);
  });

  it('admits excluded namespaces without work', async () => {
    const review = fixture('pod-create');
    review.request.object.spec.containers[0].image = 'not valid!';
    const { response } = await controller({}, { excludeNamespaces: ['production'] }).review(
      review,
      undefined,
    );
    expect(response.allowed).toBe(true);
    expect(registries.requested).toEqual([]);
  });

  it('allows other subresources (status) without work', async () => {
    const review = fixture('pod-ephemeralcontainers-update');
    review.request.subResource = 'status';
    const { response } = await controller().review(review, undefined);
    expect(response.allowed).toBe(true);
    expect(registries.requested).toEqual([]);
  });

  it('admits kinds without a pod template with a warning', async () => {
    const review = fixture('pod-create');
    review.request.kind = { group: '', version: 'v1', kind: 'ConfigMap' };
    const { response } = await controller().review(review, undefined);
    expect(response).toMatchObject({ allowed: true, warnings: [expect.stringContaining('ConfigMap')] });
  });

  describe('with mutateDigest', () => {
    it('patches every tag reference of a CREATE to tag@digest, leaving digest references', async () => {
      const review = fixture('pod-create');
      const { response } = await controller({ mutateDigest: true }).review(review, undefined);
      expect(response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
      const ops = decodePatch(response.patch);
      expect(ops).toEqual([
        {
          op: 'replace',
          path: '/spec/containers/0/image',
          value: `${HOST}/team-a/web:v1@${digests['team-a/web:v1']}`,
        },
        {
          op: 'replace',
          path: '/spec/initContainers/0/image',
          value: `${HOST}/team-a/migrate:v1@${digests['team-a/migrate:v1']}`,
        },
      ]);
      const patched = applyPatch(review.request.object, ops);
      // What runs is what was checked: the patched pod verifies without resolving any tag.
      const again = fixture('pod-create');
      again.request.object = patched;
      const heads = registry.count('HEAD');
      expect((await controller({ mutateDigest: true }).review(again, undefined)).response).toEqual({
        uid: again.request.uid,
        allowed: true,
      });
      expect(registry.count('HEAD')).toBe(heads);
    });

    it('patches only the images an UPDATE changes', async () => {
      const { response } = await controller({ mutateDigest: true }).review(
        fixture('deployment-update'),
        undefined,
      );
      expect(decodePatch(response.patch).map((op: { path: string }) => op.path)).toEqual([
        '/spec/template/spec/containers/0/image',
      ]);
    });

    it('patches the CronJob template path', async () => {
      const { response } = await controller({ mutateDigest: true }).review(
        fixture('cronjob-create'),
        undefined,
      );
      expect(decodePatch(response.patch).map((op: { path: string }) => op.path)).toEqual([
        '/spec/jobTemplate/spec/template/spec/containers/0/image',
        '/spec/jobTemplate/spec/template/spec/initContainers/0/image',
      ]);
    });

    it('sends no patch when denied', async () => {
      const review = fixture('pod-create');
      review.request.object.spec.initContainers[0].image = `${HOST}/team-a/unsigned:v1`;
      const { response } = await controller({ mutateDigest: true }).review(review, undefined);
      expect(response.allowed).toBe(false);
      expect(response.patch).toBeUndefined();
      expect(response.patchType).toBeUndefined();
    });
  });

  it('verifies each distinct image of a request once', async () => {
    const review = fixture('pod-create');
    const image = `${HOST}/team-a/web:v1`;
    review.request.object.spec.containers = Array.from({ length: 8 }, (_, i) => ({ name: `c${i}`, image }));
    review.request.object.spec.initContainers = [];
    const { response } = await controller().review(review, undefined);
    expect(response.allowed).toBe(true);
    expect(registry.count('HEAD team-a/web')).toBe(1);
    expect(registry.count('GET manifest team-a/web')).toBe(1);
  });

  it('uses the cluster to select policies', async () => {
    const review = fixture('pod-create');
    const c = controller({ clusters: ['eu-1'] });
    expect((await c.review(review, 'eu-1')).response.allowed).toBe(true);
    const other = await c.review(review, 'us-1');
    expect(other.response.allowed).toBe(false);
    expect(other.response.status?.message).toContain('no enabled policy covers');
  });

  it('denies when verification itself blows up', async () => {
    const review = fixture('pod-create');
    const broken = new AdmissionController({
      verifier: {
        isExcluded: () => false,
        deadlineMs: 9000,
        reviewBounds: () => ({ dispose: () => undefined }),
        verifyAll: () => Promise.reject(new Error('bug')),
      } as unknown as ImageVerifier,
    });
    const { response } = await broken.review(review, undefined);
    expect(response).toMatchObject({ uid: review.request.uid, allowed: false, status: { code: 403 } });
    expect(response.status?.message).toContain('internal error');
  });

  it('denies when verification does not finish before the deadline', async () => {
    const review = fixture('pod-create');
    const slow = new AdmissionController({
      verifier: {
        isExcluded: () => false,
        deadlineMs: 9000,
        reviewBounds: () => ({ dispose: () => undefined }),
        verifyAll: () => new Promise(() => undefined),
      } as unknown as ImageVerifier,
      deadlineMs: 20,
    });
    const { response } = await slow.review(review, undefined);
    expect(response).toMatchObject({ uid: review.request.uid, allowed: false, status: { code: 403 } });
    expect(response.status?.message).toContain('did not finish within 20 ms');
  });
});
