/**
 * What Signet's policies would decide now for every workload of a Kubernetes List (the output of
 * `kubectl get pods,deployments,cronjobs -A -o json`), without a cluster: each object becomes the
 * AdmissionReview the apiserver would send to create it, answered by the very `AdmissionController`
 * that `/admission` runs. Each distinct image is verified once per set of policies that select it,
 * with a bounded number of reviews in flight.
 */
import { InputError } from '../core/errors';
import { mapBounded } from '../core/pool';
import { isObject } from '../core/json';
import { parseReference } from '../core/reference';
import type { ImageDecision, PolicyEffect, Verdict } from '../verification/decision';
import { isOperationalFailure } from '../verification/reasons';
import type { ImageRequest, ImageVerifier, VerifyScope } from '../verification/verifier';
import type { ReadOptions } from '../registry/types';
import {
  AdmissionController,
  type AdmissionOutcome,
  type AdmissionResponse,
  type AdmissionVerifier,
} from './controller';
import { ADMISSION_API_VERSION, extractImages } from './review';

/** A Kubernetes object as `kubectl get -o json` prints it. */
export type KubernetesObject = Readonly<Record<string, unknown>>;

/** How one workload would fare: admitted, admitted with warnings, denied, or not checked. */
export type WorkloadOutcome = Verdict | 'excluded' | 'unsupported';

/** One image of a workload and what was decided on it. */
export interface AuditedImage {
  /** `spec.template.spec.containers[0].image`. */
  readonly field: string;
  readonly image: string;
  readonly verdict: Verdict;
  /** The reason code of the denying or warning policy (or of the image-level decision). */
  readonly code: string | undefined;
  readonly message: string;
  readonly digest: string | undefined;
  /** Each policy that selected the image, with its effect and reason code. */
  readonly policies: readonly {
    readonly policy: string;
    readonly mode: 'enforce' | 'audit';
    readonly effect: PolicyEffect;
    readonly code: string | undefined;
  }[];
  /** Policies in audit mode that admitted the image with a warning, and would deny it in enforce mode. */
  readonly deniedOnceEnforced: readonly string[];
  readonly warnings: readonly string[];
}

/** One object of the List and the answer `/admission` would give to creating it. */
export interface AuditedWorkload {
  /** Its position in the List's `items`. */
  readonly index: number;
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly outcome: WorkloadOutcome;
  /** The AdmissionReview response, exactly as `/admission` answers it (the uid is the audit's). */
  readonly response: AdmissionResponse;
  readonly images: readonly AuditedImage[];
}

/** Workload counts by outcome. */
export interface OutcomeCounts {
  readonly allow: number;
  readonly warn: number;
  readonly deny: number;
  readonly excluded: number;
  readonly unsupported: number;
}

/** Workload counts by the effect one policy had on them (the worst over their images). */
export interface PolicyCounts {
  readonly policy: string;
  readonly mode: 'enforce' | 'audit';
  readonly pass: number;
  readonly warn: number;
  readonly deny: number;
}

/** The numbers of an audit, for tables, charts and change requests. */
export interface AuditSummary {
  /** Objects in the List. */
  readonly objects: number;
  /** Objects of a kind with a pod template (the rest are `unsupported`). */
  readonly workloads: number;
  readonly outcomes: OutcomeCounts;
  /** Workloads that would be denied once every audit-mode policy enforces (denied now included). */
  readonly deniedOnceEnforced: number;
  readonly images: {
    /** Container image fields checked. */
    readonly references: number;
    /** Distinct image strings among them. */
    readonly distinct: number;
    /** Verifications run: one per distinct image and set of policies selecting it. */
    readonly verifications: number;
  };
  /** By Kubernetes namespace, sorted by name ('' for cluster-scoped objects). */
  readonly namespaces: readonly ({ readonly namespace: string } & OutcomeCounts)[];
  /** By policy, in configuration order. */
  readonly policies: readonly PolicyCounts[];
  /** Workloads with an image no enabled policy selects, by the verdict on that image. */
  readonly noPolicy: { readonly allow: number; readonly warn: number; readonly deny: number };
  /** Reason codes of denied images: how many images (per workload) and workloads each denied. */
  readonly denialReasons: readonly {
    readonly code: string;
    readonly images: number;
    readonly workloads: number;
  }[];
}

/** An audit: when, where, what it found. */
export interface AuditReport {
  /** ISO 8601. */
  readonly generatedAt: string;
  readonly cluster: string | undefined;
  readonly summary: AuditSummary;
  readonly workloads: readonly AuditedWorkload[];
}

/** What an audit runs on. */
export interface AuditOptions {
  /** The cluster id policies select on (`--cluster`), as `/admission/<cluster>` would give it. */
  readonly cluster?: string | undefined;
  /** Reviews decided at once (default 8). */
  readonly concurrency?: number;
  /** The clock for `generatedAt` (tests). */
  readonly now?: () => Date;
}

const DEFAULT_CONCURRENCY = 8;
/** A List with more bad items than this names only the first ones. */
const MAX_ITEM_ISSUES = 10;

const invalid = (field: string, message: string): InputError =>
  new InputError('REQUEST_INVALID', field, message);

/**
 * The objects of `kubectl get ... -o json` output: a `List` (or `PodList`, ...) with `items`, or
 * one object. Throws InputError REQUEST_INVALID naming every item that is not a Kubernetes object
 * (no apiVersion, kind or metadata.name).
 */
export function readKubernetesList(value: unknown): KubernetesObject[] {
  if (!isObject(value)) throw invalid('input', 'must be a JSON object: a Kubernetes List or one object');
  const items = typeof value.kind === 'string' && value.kind.endsWith('List') ? value.items : [value];
  if (!Array.isArray(items)) throw invalid('items', 'must be a list of Kubernetes objects');
  const issues: string[] = [];
  items.forEach((item, i) => {
    const at = `items[${i}]`;
    if (!isObject(item)) issues.push(`${at}: not an object`);
    else if (typeof item.apiVersion !== 'string' || item.apiVersion === '')
      issues.push(`${at}.apiVersion: missing`);
    else if (typeof item.kind !== 'string' || item.kind === '') issues.push(`${at}.kind: missing`);
    else if (!isObject(item.metadata) || typeof item.metadata.name !== 'string' || item.metadata.name === '')
      issues.push(`${at}.metadata.name: missing`);
  });
  if (issues.length > 0) {
    const more = issues.length > MAX_ITEM_ISSUES ? `; and ${issues.length - MAX_ITEM_ISSUES} more` : '';
    throw invalid(
      'items',
      `${issues.length} of ${items.length} items are not Kubernetes objects: ${issues.slice(0, MAX_ITEM_ISSUES).join('; ')}${more}`,
    );
  }
  return items as KubernetesObject[];
}

/** Resources of the kinds Signet reads, as the apiserver names them in a review. */
const RESOURCES: Readonly<Record<string, string>> = {
  Pod: 'pods',
  ReplicationController: 'replicationcontrollers',
  Deployment: 'deployments',
  ReplicaSet: 'replicasets',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
  Job: 'jobs',
  CronJob: 'cronjobs',
};

/**
 * The AdmissionReview the apiserver would send to create `object` (a server-side dry run: the
 * object exists already, the question is whether it could be created now).
 */
export function admissionReviewFor(object: KubernetesObject, uid: string): Record<string, unknown> {
  const apiVersion = String(object.apiVersion);
  const slash = apiVersion.lastIndexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const kind = String(object.kind);
  const metadata = isObject(object.metadata) ? object.metadata : {};
  const gvk = { group, version, kind };
  const gvr = { group, version, resource: RESOURCES[kind] ?? `${kind.toLowerCase()}s` };
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: gvk,
      resource: gvr,
      requestKind: gvk,
      requestResource: gvr,
      name: metadata.name,
      ...(typeof metadata.namespace === 'string' && metadata.namespace !== ''
        ? { namespace: metadata.namespace }
        : {}),
      operation: 'CREATE',
      userInfo: { username: 'signet-audit' },
      object,
      oldObject: null,
      dryRun: true,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', dryRun: ['All'] },
    },
  };
}

/**
 * Shares decisions between the reviews of one audit. A decision depends on the scope only through
 * the policies it selects (and the excluded namespaces, which the controller answers before asking),
 * so an image is verified once per set of selecting policies, however many workloads and namespaces
 * run it. Malformed references are not shared: their denial names the field they came from.
 */
class SharedDecisions implements AdmissionVerifier {
  private readonly decisions = new Map<string, Promise<ImageDecision>>();
  private started = 0;

  constructor(private readonly verifier: ImageVerifier) {}

  get deadlineMs(): number {
    return this.verifier.deadlineMs;
  }

  /** Verifications started: one per distinct image and set of selecting policies. */
  get verifications(): number {
    return this.started;
  }

  isExcluded(namespace: string | undefined): boolean {
    return this.verifier.isExcluded(namespace);
  }

  reviewBounds(): ReturnType<ImageVerifier['reviewBounds']> {
    return this.verifier.reviewBounds();
  }

  async verifyAll(
    images: readonly ImageRequest[],
    scope: VerifyScope = {},
    read: ReadOptions = {},
  ): Promise<Map<string, ImageDecision>> {
    const pending = new Map<string, Promise<ImageDecision>>();
    const fresh: { request: ImageRequest; key: string | undefined }[] = [];
    for (const request of images) {
      if (pending.has(request.image) || fresh.some((f) => f.request.image === request.image)) continue;
      const key = this.keyOf(request, scope);
      const shared = key === undefined ? undefined : this.decisions.get(key);
      if (shared !== undefined) pending.set(request.image, shared);
      else fresh.push({ request, key });
    }
    if (fresh.length > 0) {
      // One batch for what this review needs anew: its images share tag resolutions and reads.
      const batch = this.verifier.verifyAll(
        fresh.map((f) => f.request),
        scope,
        read,
      );
      for (const { request, key } of fresh) {
        const decision = batch.then((decided) => decided.get(request.image) as ImageDecision);
        pending.set(request.image, decision);
        if (key === undefined) continue;
        this.started++;
        this.decisions.set(key, decision);
        // What this review's own deadline or byte budget cut short is tried again by the next review.
        void decision.then((d) => {
          if (d.reason?.code === 'DEADLINE_EXCEEDED' || d.reason?.code === 'REVIEW_TOO_LARGE')
            this.decisions.delete(key);
        });
      }
    }
    const entries = await Promise.all(
      [...pending.entries()].map(async ([image, decision]): Promise<[string, ImageDecision]> => [
        image,
        // The decision may have been made in another namespace: it is told for this one.
        { ...(await decision), namespace: scope.namespace, cluster: scope.cluster },
      ]),
    );
    return new Map(entries);
  }

  private keyOf(request: ImageRequest, scope: VerifyScope): string | undefined {
    let ref;
    try {
      ref = parseReference(request.image);
    } catch {
      return undefined;
    }
    const selection = { cluster: scope.cluster ?? '', namespace: scope.namespace ?? '' };
    const policies = this.verifier.policies;
    const selected = policies.coversHost(ref.registry) ? policies.select(selection, ref) : [];
    return JSON.stringify([selected.map((p) => p.hash), request.image]);
  }
}

/**
 * Decides every object of a List as `/admission` would decide creating it. Objects of kinds
 * without a pod template are `unsupported`, objects in `admission.excludeNamespaces` `excluded`.
 */
export async function auditWorkloads(
  objects: readonly KubernetesObject[],
  verifier: ImageVerifier,
  options: AuditOptions = {},
): Promise<AuditReport> {
  const shared = new SharedDecisions(verifier);
  const outcomes = new Map<string, AdmissionOutcome>();
  const controller = new AdmissionController({
    verifier: shared,
    observe: (outcome) => outcomes.set(outcome.request.uid, outcome),
  });
  const cluster = options.cluster;
  const workloads = await mapBounded(
    objects,
    options.concurrency ?? DEFAULT_CONCURRENCY,
    async (object, index): Promise<AuditedWorkload> => {
      const uid = `signet-audit-${index}`;
      const { response } = await controller.review(admissionReviewFor(object, uid), cluster);
      const outcome = outcomes.get(uid);
      outcomes.delete(uid);
      const metadata = isObject(object.metadata) ? object.metadata : {};
      const namespace =
        typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : undefined;
      const images = (outcome?.images ?? []).map(({ site, decision }) => auditedImage(site.field, decision));
      return {
        index,
        apiVersion: String(object.apiVersion),
        kind: String(object.kind),
        namespace,
        name: String(metadata.name),
        outcome: workloadOutcome(response, outcome, verifier.isExcluded(namespace)),
        response,
        images,
      };
    },
  );
  return {
    generatedAt: (options.now ?? (() => new Date()))().toISOString(),
    cluster,
    summary: summarize(workloads, verifier, shared.verifications),
    workloads,
  };
}

function workloadOutcome(
  response: AdmissionResponse,
  outcome: AdmissionOutcome | undefined,
  excluded: boolean,
): WorkloadOutcome {
  if (!response.allowed) return 'deny';
  if (excluded) return 'excluded';
  // The controller admits kinds without a pod template (with a warning) and checks nothing.
  if (outcome !== undefined && extractImages(outcome.request).$case === 'unsupported') return 'unsupported';
  return (response.warnings ?? []).length > 0 ? 'warn' : 'allow';
}

function auditedImage(field: string, decision: ImageDecision): AuditedImage {
  return {
    field,
    image: decision.image,
    verdict: decision.verdict,
    code: decision.reason?.code,
    message: decision.message,
    digest: decision.digest,
    policies: decision.policies.map((p) => ({
      policy: p.policy,
      mode: p.mode,
      effect: p.effect,
      code: p.reason?.code,
    })),
    // Audit mode softens verdicts on the image only; an outage is decided by failurePolicy already.
    deniedOnceEnforced: decision.policies
      .filter(
        (p) =>
          p.mode === 'audit' &&
          p.effect === 'warn' &&
          p.reason !== undefined &&
          !isOperationalFailure(p.reason),
      )
      .map((p) => p.policy),
    warnings: decision.warnings,
  };
}

const EFFECT_RANK: Readonly<Record<PolicyEffect, number>> = { pass: 0, warn: 1, deny: 2 };

/** The counts of an audit's workloads. */
export function summarize(
  workloads: readonly AuditedWorkload[],
  verifier: Pick<ImageVerifier, 'policies'>,
  verifications: number,
): AuditSummary {
  const zero = (): { -readonly [K in keyof OutcomeCounts]: number } => ({
    allow: 0,
    warn: 0,
    deny: 0,
    excluded: 0,
    unsupported: 0,
  });
  const outcomes = zero();
  const namespaces = new Map<string, ReturnType<typeof zero>>();
  const policies = new Map<
    string,
    { policy: string; mode: 'enforce' | 'audit'; pass: number; warn: number; deny: number }
  >(
    verifier.policies.policies.map((p) => [
      p.policy.name,
      { policy: p.policy.name, mode: p.policy.mode, pass: 0, warn: 0, deny: 0 },
    ]),
  );
  const noPolicy = { allow: 0, warn: 0, deny: 0 };
  const reasons = new Map<string, { code: string; images: number; workloads: number }>();
  const distinct = new Set<string>();
  let references = 0;
  let deniedOnceEnforced = 0;
  for (const workload of workloads) {
    outcomes[workload.outcome]++;
    const namespace = workload.namespace ?? '';
    const counts = namespaces.get(namespace) ?? zero();
    counts[workload.outcome]++;
    namespaces.set(namespace, counts);
    if (workload.outcome === 'deny' || workload.images.some((image) => image.deniedOnceEnforced.length > 0))
      deniedOnceEnforced++;

    const effects = new Map<string, PolicyEffect>();
    let unmatched: Verdict | undefined;
    const codes = new Set<string>();
    for (const image of workload.images) {
      references++;
      distinct.add(image.image);
      for (const p of image.policies) {
        const before = effects.get(p.policy);
        if (before === undefined || EFFECT_RANK[p.effect] > EFFECT_RANK[before])
          effects.set(p.policy, p.effect);
      }
      if (image.code === 'NO_MATCHING_POLICY') {
        if (unmatched === undefined || VERDICT_RANK[image.verdict] > VERDICT_RANK[unmatched])
          unmatched = image.verdict;
      }
      if (image.verdict === 'deny') {
        const code = image.code ?? 'DENIED';
        const entry = reasons.get(code) ?? { code, images: 0, workloads: 0 };
        entry.images++;
        reasons.set(code, entry);
        codes.add(code);
      }
    }
    for (const code of codes) (reasons.get(code) as { workloads: number }).workloads++;
    for (const [policy, effect] of effects) {
      const entry = policies.get(policy);
      if (entry !== undefined) entry[effect]++;
    }
    if (unmatched !== undefined) noPolicy[unmatched]++;
  }
  return {
    objects: workloads.length,
    workloads: workloads.length - outcomes.unsupported,
    outcomes,
    deniedOnceEnforced,
    images: { references, distinct: distinct.size, verifications },
    namespaces: [...namespaces.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([namespace, counts]) => ({ namespace, ...counts })),
    policies: [...policies.values()],
    noPolicy,
    denialReasons: [...reasons.values()].sort(
      (a, b) => b.workloads - a.workloads || (a.code < b.code ? -1 : 1),
    ),
  };
}

const VERDICT_RANK: Readonly<Record<Verdict, number>> = { allow: 0, warn: 1, deny: 2 };
