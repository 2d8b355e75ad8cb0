/**
 * `lib/admission/audit.ts` on the hand-checked List (test/fixtures/kubernetes-lists/small.json,
 * whose SOURCES.md gives the expected outcome of each object) against an in-memory registry: every
 * object answered as `/admission` answers it, each image verified once per set of policies.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  admissionReviewFor,
  auditWorkloads,
  readKubernetesList,
  type AuditReport,
  type KubernetesObject,
} from '../../lib/admission/audit';
import { AdmissionController } from '../../lib/admission/controller';
import { extractImages, parseAdmissionReview } from '../../lib/admission/review';
import { InputError } from '../../lib/core/errors';
import { KeyRing } from '../../lib/keys/keyring';
import { ImageVerifier } from '../../lib/verification/verifier';
import {
  MemoryRegistries,
  MemoryRegistry,
  policy,
  testKey,
  verificationConfig,
  type TestKey,
} from '../verification/helpers';

const HOST = 'registry.example.com';
const LIST = join(__dirname, '..', 'fixtures', 'kubernetes-lists', 'small.json');

const small = (): KubernetesObject[] => readKubernetesList(JSON.parse(readFileSync(LIST, 'utf8')));

let release: TestKey;
let registries: MemoryRegistries;
let registry: MemoryRegistry;

beforeAll(() => {
  release = testKey('release');
});

beforeEach(async () => {
  registries = new MemoryRegistries();
  registry = registries.add(HOST);
  for (const [repository, tag] of [
    ['team-a/web', 'v1'],
    ['team-a/migrate', 'v1'],
    ['team-a/api', 'v2'],
  ] as const) {
    await registry.sign(repository, await registry.pushImage(repository, tag), release.privateKey);
  }
  await registry.pushImage('team-a/unsigned', 'v1');
  await registry.pushImage('team-b/preview', 'v7');
});

/** The verifier of SOURCES.md's policies. */
function verifier(): ImageVerifier {
  const witnesses = [release.witness];
  const config = verificationConfig(
    witnesses,
    [
      policy({
        name: 'production',
        namespaces: ['production', 'payments'],
        images: [`${HOST}/team-a/**`],
        attestors: [{ witnesses: ['release'], count: 1 }],
      }),
      policy({
        name: 'staging',
        mode: 'audit',
        namespaces: ['staging'],
        images: [`${HOST}/**`],
        attestors: [{ witnesses: ['release'], count: 1 }],
      }),
    ],
    { excludeNamespaces: ['kube-system'] },
  );
  return new ImageVerifier({
    config,
    registries,
    keys: new KeyRing({ witnesses, baseDir: '/nonexistent' }),
    signatures: { bundles: false },
  });
}

describe('readKubernetesList', () => {
  it('reads the items of a List, and one object as a List of one', () => {
    expect(small()).toHaveLength(12);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web' } };
    expect(readKubernetesList(pod)).toEqual([pod]);
    expect(readKubernetesList({ apiVersion: 'v1', kind: 'PodList', items: [pod] })).toEqual([pod]);
  });

  describe('when items are not Kubernetes objects', () => {
    it('refuses the List with REQUEST_INVALID on items', () => {
      const list = {
        kind: 'List',
        items: [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'ok' } }, { apiVersion: 'v1' }, 'text'],
      };
      expect(() => readKubernetesList(list)).toThrowWithCode(InputError, 'REQUEST_INVALID');
      try {
        readKubernetesList(list);
      } catch (err) {
        expect((err as InputError).field).toBe('items');
        // Every bad item is named, so one run shows them all.
        expect((err as InputError).message).toContain('items[1].kind');
        expect((err as InputError).message).toContain('items[2]');
      }
    });

    it('refuses what is not an object or whose items are not a list', () => {
      expect(() => readKubernetesList([])).toThrowWithCode(InputError, 'REQUEST_INVALID');
      expect(() => readKubernetesList({ kind: 'List', items: {} })).toThrowWithCode(
        InputError,
        'REQUEST_INVALID',
      );
    });
  });
});

describe('admissionReviewFor', () => {
  it.each(small().map((o) => [`${String(o.kind)} ${String((o.metadata as { name: string }).name)}`, o]))(
    'is a CREATE dry run the controller parses, for %s',
    (_, object) => {
      const request = parseAdmissionReview(admissionReviewFor(object, 'uid-1'));
      const metadata = object.metadata as { name: string; namespace: string };
      expect(request).toMatchObject({
        uid: 'uid-1',
        operation: 'CREATE',
        dryRun: true,
        namespace: metadata.namespace,
        name: metadata.name,
        object,
      });
      const apiVersion = String(object.apiVersion);
      expect(request.kind).toEqual({
        group: apiVersion.includes('/') ? apiVersion.split('/')[0] : '',
        version: apiVersion.split('/').pop(),
        kind: object.kind,
      });
      if (object.kind !== 'Service') expect(extractImages(request).$case).toBe('images');
    },
  );
});

describe('when the hand-checked List is audited', () => {
  let report: AuditReport;
  const outcomeOf = (kind: string, place: string): string | undefined =>
    report.workloads.find((w) => `${w.kind} ${w.namespace}/${w.name}` === `${kind} ${place}`)?.outcome;

  beforeEach(async () => {
    report = await auditWorkloads(small(), verifier(), { now: () => new Date('2025-06-02T10:00:00Z') });
  });

  it('gives each object the outcome SOURCES.md lists', () => {
    expect(
      Object.fromEntries(report.workloads.map((w) => [`${w.kind} ${w.namespace}/${w.name}`, w.outcome])),
    ).toEqual({
      'Pod kube-system/kube-proxy-8vhzq': 'excluded',
      'Pod production/web-7d4b9c6f5-q8r4t': 'deny',
      'Pod production/web-7d4b9c6f5-x2k9p': 'allow',
      'Pod sandbox/debug': 'deny',
      'Service production/web': 'unsupported',
      'DaemonSet monitoring/node-exporter': 'deny',
      'Deployment payments/ledger': 'deny',
      'Deployment production/web': 'allow',
      'ReplicaSet production/web-7d4b9c6f5': 'allow',
      'StatefulSet staging/preview': 'warn',
      'CronJob payments/reconcile': 'allow',
      'Job production/web-migrate': 'allow',
    });
    expect(report.generatedAt).toBe('2025-06-02T10:00:00.000Z');
  });

  it('names the denied image and its reason code', () => {
    const codes = (kind: string, place: string): (string | undefined)[] =>
      (
        report.workloads.find((w) => `${w.kind} ${w.namespace}/${w.name}` === `${kind} ${place}`)?.images ??
        []
      )
        .filter((i) => i.verdict === 'deny')
        .map((i) => `${i.image} ${i.code}`);
    expect(codes('Pod', 'production/web-7d4b9c6f5-q8r4t')).toEqual([
      `${HOST}/team-a/unsigned:v1 NO_SIGNATURES`,
    ]);
    expect(codes('Pod', 'sandbox/debug')).toEqual([`${HOST}/Team-A/Web:v1 INVALID_REFERENCE`]);
    expect(codes('DaemonSet', 'monitoring/node-exporter')).toEqual([
      'quay.io/prometheus/node-exporter:v1.8.2 NO_MATCHING_POLICY',
    ]);
    expect(codes('Deployment', 'payments/ledger')).toEqual([`${HOST}/team-a/ledger:v4 IMAGE_NOT_FOUND`]);
    expect(outcomeOf('StatefulSet', 'staging/preview')).toBe('warn');
    const preview = report.workloads.find((w) => w.name === 'preview');
    expect(preview?.images[0]?.deniedOnceEnforced).toEqual(['staging']);
  });

  it('answers every object exactly as a controller over the plain verifier answers its review', async () => {
    const plain = new AdmissionController({ verifier: verifier() });
    for (const workload of report.workloads) {
      const object = small()[workload.index] as KubernetesObject;
      const { response } = await plain.review(
        admissionReviewFor(object, `signet-audit-${workload.index}`),
        undefined,
      );
      expect(workload.response).toEqual(response);
    }
  });

  it('counts the outcomes per namespace and per policy', () => {
    const { summary } = report;
    expect(summary).toMatchObject({
      objects: 12,
      workloads: 11,
      outcomes: { allow: 5, warn: 1, deny: 4, excluded: 1, unsupported: 1 },
      deniedOnceEnforced: 5,
      noPolicy: { allow: 0, warn: 0, deny: 1 },
    });
    expect(summary.namespaces.find((n) => n.namespace === 'production')).toEqual({
      namespace: 'production',
      allow: 4,
      warn: 0,
      deny: 1,
      excluded: 0,
      unsupported: 1,
    });
    expect(summary.policies).toEqual([
      { policy: 'production', mode: 'enforce', pass: 5, warn: 0, deny: 2 },
      { policy: 'staging', mode: 'audit', pass: 0, warn: 1, deny: 0 },
    ]);
    expect(summary.denialReasons.map((r) => [r.code, r.workloads])).toEqual([
      ['IMAGE_NOT_FOUND', 1],
      ['INVALID_REFERENCE', 1],
      ['NO_MATCHING_POLICY', 1],
      ['NO_SIGNATURES', 1],
    ]);
  });

  it('resolves each tag once however many workloads run it, and never asks an uncovered registry', () => {
    // team-a/web:v1 runs in two Pods, a Deployment and a ReplicaSet of one namespace's policy set.
    expect(registry.count('HEAD team-a/web:v1')).toBe(1);
    expect(registry.count('HEAD team-a/migrate:v1')).toBe(1);
    expect(registries.requested.filter((h) => h !== HOST)).toEqual([]);
    // web:v1, unsigned:v1, migrate:v1, api:v2, ledger:v4, preview:v7, node-exporter; a malformed
    // reference is not shared (its denial names its own field).
    expect(report.summary.images.verifications).toBe(7);
  });
});
