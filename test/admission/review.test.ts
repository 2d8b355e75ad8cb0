import { InputError } from '../../lib/core/errors';
import { extractImages, parseAdmissionReview, type Extraction } from '../../lib/admission/review';
import { fixture, type FixtureName } from './fixtures';

const R = 'registry.example.com';
const images = (extraction: Extraction) => {
  if (extraction.$case !== 'images') throw new Error(`unsupported ${extraction.kind}`);
  return extraction.sites.map((s) => [s.pointer, s.field, s.image]);
};

describe('parseAdmissionReview', () => {
  it('reads the envelope of a Pod CREATE', () => {
    const request = parseAdmissionReview(fixture('pod-create'));
    expect(request).toMatchObject({
      uid: '0f5a1c58-6d8b-4c57-9a0a-3d4f3f1f6b11',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      operation: 'CREATE',
      namespace: 'production',
      name: 'web',
      dryRun: false,
      subResource: undefined,
    });
  });

  it('reads dryRun, subResource and DELETE without an object', () => {
    expect(parseAdmissionReview(fixture('pod-create-dryrun')).dryRun).toBe(true);
    expect(parseAdmissionReview(fixture('pod-ephemeralcontainers-update')).subResource).toBe(
      'ephemeralcontainers',
    );
    expect(parseAdmissionReview(fixture('pod-delete'))).toMatchObject({
      operation: 'DELETE',
      object: undefined,
    });
    expect(parseAdmissionReview(fixture('pod-exec-connect'))).toMatchObject({
      operation: 'CONNECT',
      subResource: 'exec',
    });
  });

  it('takes the namespace from the object when the request has none', () => {
    const review = fixture('pod-create');
    delete review.request.namespace;
    expect(parseAdmissionReview(review).namespace).toBe('production');
  });

  describe('when the review cannot be answered', () => {
    const broken = (mutate: (review: ReturnType<typeof fixture>) => void) => {
      const review = fixture('pod-create');
      mutate(review);
      return () => parseAdmissionReview(review);
    };

    it.each([
      ['request.uid', (r: ReturnType<typeof fixture>) => delete r.request.uid],
      ['request.uid', (r: ReturnType<typeof fixture>) => (r.request.uid = 42)],
      ['apiVersion', (r: ReturnType<typeof fixture>) => (r.apiVersion = 'admission.k8s.io/v1beta1')],
      ['kind', (r: ReturnType<typeof fixture>) => (r.kind = 'Pod')],
      ['request', (r: ReturnType<typeof fixture>) => (r.request = [])],
      ['request.operation', (r: ReturnType<typeof fixture>) => (r.request.operation = 'PATCH')],
      ['request.kind', (r: ReturnType<typeof fixture>) => delete r.request.kind],
      ['request.object', (r: ReturnType<typeof fixture>) => (r.request.object = null)],
      ['request.dryRun', (r: ReturnType<typeof fixture>) => (r.request.dryRun = 'yes')],
      ['request.namespace', (r: ReturnType<typeof fixture>) => (r.request.namespace = 7)],
    ])('throws ADMISSION_REVIEW_INVALID naming %s', (field, mutate) => {
      const parse = broken(mutate);
      expect(parse).toThrowWithCode(InputError, 'ADMISSION_REVIEW_INVALID');
      try {
        parse();
      } catch (err) {
        expect((err as InputError).field).toBe(field);
      }
    });

    it('rejects a body that is not an object', () => {
      expect(() => parseAdmissionReview('x')).toThrowWithCode(InputError, 'ADMISSION_REVIEW_INVALID');
    });
  });
});

describe('extractImages', () => {
  it("finds a Pod's containers and initContainers with pointers and field paths", () => {
    expect(images(extractImages(parseAdmissionReview(fixture('pod-create'))))).toEqual([
      ['/spec/containers/0/image', 'spec.containers[0].image', `${R}/team-a/web:v1`],
      ['/spec/containers/1/image', 'spec.containers[1].image', `${R}/team-a/proxy@sha256:${'a'.repeat(64)}`],
      ['/spec/initContainers/0/image', 'spec.initContainers[0].image', `${R}/team-a/migrate:v1`],
    ]);
  });

  it.each<[FixtureName, string]>([
    ['deployment-create', '/spec/template/spec'],
    ['replicaset-create', '/spec/template/spec'],
    ['statefulset-create', '/spec/template/spec'],
    ['daemonset-create', '/spec/template/spec'],
    ['replicationcontroller-create', '/spec/template/spec'],
  ])('reads the pod template of %s at %s', (name, base) => {
    expect(images(extractImages(parseAdmissionReview(fixture(name))))).toEqual([
      [
        `${base}/containers/0/image`,
        `${base.slice(1).replace(/\//g, '.')}.containers[0].image`,
        `${R}/team-a/web:v1`,
      ],
      [
        `${base}/initContainers/0/image`,
        `${base.slice(1).replace(/\//g, '.')}.initContainers[0].image`,
        `${R}/team-a/migrate:v1`,
      ],
    ]);
  });

  it('reads a Job at spec.template.spec and a CronJob at spec.jobTemplate.spec.template.spec', () => {
    expect(images(extractImages(parseAdmissionReview(fixture('job-create'))))).toEqual([
      [
        '/spec/template/spec/containers/0/image',
        'spec.template.spec.containers[0].image',
        `${R}/team-a/batch:v1`,
      ],
      [
        '/spec/template/spec/initContainers/0/image',
        'spec.template.spec.initContainers[0].image',
        `${R}/team-a/fetch:v1`,
      ],
    ]);
    expect(images(extractImages(parseAdmissionReview(fixture('cronjob-create'))))).toEqual([
      [
        '/spec/jobTemplate/spec/template/spec/containers/0/image',
        'spec.jobTemplate.spec.template.spec.containers[0].image',
        `${R}/team-a/batch:v1`,
      ],
      [
        '/spec/jobTemplate/spec/template/spec/initContainers/0/image',
        'spec.jobTemplate.spec.template.spec.initContainers[0].image',
        `${R}/team-a/fetch:v1`,
      ],
    ]);
  });

  it('reads only the ephemeral containers of the pods/ephemeralcontainers subresource', () => {
    expect(images(extractImages(parseAdmissionReview(fixture('pod-ephemeralcontainers-update'))))).toEqual([
      ['/spec/ephemeralContainers/0/image', 'spec.ephemeralContainers[0].image', `${R}/tools/debug:v2`],
    ]);
  });

  it('reads the legacy EphemeralContainers kind', () => {
    const review = fixture('pod-ephemeralcontainers-update');
    review.request.kind = { group: '', version: 'v1', kind: 'EphemeralContainers' };
    review.request.object = {
      kind: 'EphemeralContainers',
      apiVersion: 'v1',
      metadata: { name: 'web' },
      ephemeralContainers: review.request.object.spec.ephemeralContainers,
    };
    expect(images(extractImages(parseAdmissionReview(review)))).toEqual([
      ['/ephemeralContainers/0/image', 'ephemeralContainers[0].image', `${R}/tools/debug:v2`],
    ]);
  });

  it('reads ephemeralContainers of a Pod too', () => {
    const review = fixture('pod-create');
    review.request.object.spec.ephemeralContainers = [{ name: 'dbg', image: 'busybox' }];
    expect(images(extractImages(parseAdmissionReview(review)))).toContainEqual([
      '/spec/ephemeralContainers/0/image',
      'spec.ephemeralContainers[0].image',
      'busybox',
    ]);
  });

  it('marks images an UPDATE leaves unchanged', () => {
    const extraction = extractImages(parseAdmissionReview(fixture('deployment-update')));
    expect(extraction.$case === 'images' && extraction.sites.map((s) => [s.field, s.unchanged])).toEqual([
      ['spec.template.spec.containers[0].image', false],
      ['spec.template.spec.initContainers[0].image', true],
    ]);
  });

  it('reports kinds without a pod template as unsupported', () => {
    const review = fixture('pod-create');
    review.request.kind = { group: 'argoproj.io', version: 'v1alpha1', kind: 'Rollout' };
    expect(extractImages(parseAdmissionReview(review))).toEqual({
      $case: 'unsupported',
      kind: 'argoproj.io/Rollout',
    });
  });

  it('turns a non-string image into a site with a problem, and a malformed list into a problem', () => {
    const review = fixture('pod-create');
    review.request.object.spec.containers[1].image = 42;
    review.request.object.spec.initContainers = 'nope';
    const extraction = extractImages(parseAdmissionReview(review));
    expect(extraction).toMatchObject({
      $case: 'images',
      problems: [{ field: 'spec.initContainers', message: 'must be a list of containers' }],
    });
    expect(extraction.$case === 'images' && extraction.sites[1]).toMatchObject({
      field: 'spec.containers[1].image',
      problem: 'must be a string, got number',
    });
  });

  it('reports a missing pod template', () => {
    const review = fixture('deployment-create');
    delete review.request.object.spec.template;
    expect(extractImages(parseAdmissionReview(review))).toMatchObject({
      problems: [{ field: 'spec.template.spec', message: 'Deployment has no pod spec here' }],
    });
  });
});
