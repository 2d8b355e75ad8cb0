/**
 * May this image run here? Parses the reference, selects the enabled policies for (cluster,
 * Kubernetes namespace, image), resolves a tag with one manifest HEAD, reads the digest's
 * signatures once, checks every attestor set's witnesses and combines the policies' verdicts.
 *
 * Fail closed: registry and key failures deny with their own reason unless the policy says
 * `failurePolicy: allow`; anything unexpected denies. Only verified policy results are cached
 * (by policy content hash, repository, digest and admitted tag), and identical verifications in
 * flight are run once. No registry is contacted for an image no enabled policy selects.
 *
 * Keyless witnesses are checked against a Sigstore trusted root (Fulcio chain, Rekor entry or
 * timestamp, identity) and certificate witnesses against their roots at the signing time, from
 * cosign `.sig` layers and Sigstore bundles alike (witness-check.ts). Limits: signatures by a key
 * witness carry no trusted time, so one stays valid until its key is removed from the config (or
 * its KMS key disabled); for key witnesses, bundles' transparency-log entries are not checked.
 */
import type { AdmissionSettings, Policy, SignetConfig, Witness } from '../config/types';
import { RegistryError, describeError } from '../core/errors';
import { silentLogger, type Logger } from '../core/logger';
import { report, type Telemetry } from '../core/telemetry';
import { formatReference, parseReference, repositoryName, type ImageReference } from '../core/reference';
import { ByteBudget } from '../registry/budget';
import type { ManifestHead, ReadOptions, RegistryClientFactory } from '../registry/types';
import { SingleFlight, TtlLruCache } from './cache';
import {
  warningText,
  type AttestorSetResult,
  type ImageDecision,
  type PolicyEffect,
  type PolicyResult,
  type Verdict,
} from './decision';
import { PolicySet, type CompiledPolicy } from './policies';
import { isOperationalFailure, reason, reasonFromError, type Reason } from './reasons';
import {
  DEFAULT_SIGNATURE_LOADER_OPTIONS,
  loadBundleSignatures,
  loadCosignOnly,
  mergeSignatures,
  type LoadedSignatures,
  type SignatureLoaderOptions,
} from './signatures';
import type { RevocationCheck, SigningTimeLookup } from './revocation';
import { checkWitness, type WitnessKeys, type WitnessResult, type WitnessTarget } from './witness-check';

/** What an ImageVerifier is built from. */
export interface ImageVerifierDeps {
  readonly config: Pick<SignetConfig, 'policies' | 'witnesses' | 'admission'> &
    Partial<Pick<SignetConfig, 'revocations'>>;
  /** Signet's own record of when it signed (the ledger): a trusted time for time-bound revocations. */
  readonly signingTime?: SigningTimeLookup;
  readonly registries: RegistryClientFactory;
  readonly keys: WitnessKeys;
  readonly logger?: Logger;
  /** Clock for the cache (tests). */
  readonly now?: () => number;
  readonly signatures?: Partial<SignatureLoaderOptions>;
  /** Told about cache hits and every policy's decision (metrics). */
  readonly telemetry?: Telemetry;
}

/** Where the image is to run. Unknown values are '' and only match `*`-like globs. */
export interface VerifyScope {
  readonly namespace?: string | undefined;
  readonly cluster?: string | undefined;
}

/**
 * The limits of one review (an AdmissionReview, a `/verify` call): its deadline as a signal that
 * ends every registry read, and the bytes all its reads may take together.
 */
export interface ReviewBounds extends ReadOptions {
  /** Ends the deadline timer once the review is answered. */
  dispose(): void;
}

/** One image of a batch, and the field it came from (named when the reference is malformed). */
export interface ImageRequest {
  readonly image: string;
  readonly field: string;
}

/** A decision before it is tied to the image string as written. */
type Decided = Omit<ImageDecision, 'image' | 'mutatedImage'>;
/** A decision on a canonical reference, shared by every spelling of it in one request. */
type ReferenceDecision = Decided & { readonly mutate: boolean };

/** A tag resolved to its digest, or the digest given. */
interface Target {
  readonly ref: ImageReference;
  readonly digest: string;
  /** The tag admitted, when the image was given by tag. */
  readonly tag: string | undefined;
}

/**
 * Memory for one request: each tag is resolved once, each digest's signatures read once, each
 * witness checked once per (digest, tag, signed identity), however many containers and policies
 * ask. Every read is bounded by the request's deadline and byte budget.
 */
class Session {
  readonly heads = new Map<string, Promise<ManifestHead | undefined>>();
  readonly signatures = new Map<string, Promise<LoadedSignatures>>();
  readonly witnesses = new Map<string, Promise<WitnessResult>>();

  constructor(readonly read: ReadOptions) {}
}

/** Work shared between reviews, with the review whose limits it ran under. */
type Shared<V> = { readonly session: Session } & (
  { readonly ok: true; readonly value: V } | { readonly ok: false; readonly error: unknown }
);

/** Errors that say the review's own limits ended the work, not the image. */
const isReviewBound = (err: unknown): boolean =>
  err instanceof RegistryError && (err.code === 'ABORTED' || err.code === 'BUDGET_EXCEEDED');

const memo = <V>(map: Map<string, Promise<V>>, key: string, work: () => Promise<V>): Promise<V> => {
  let pending = map.get(key);
  if (pending === undefined) {
    pending = work();
    map.set(key, pending);
  }
  return pending;
};

/** Verifies images against the configured policies. Build one per configuration and keep it. */
export class ImageVerifier {
  readonly policies: PolicySet;
  private readonly settings: AdmissionSettings;
  private readonly witnesses: ReadonlyMap<string, Witness>;
  private readonly excluded: ReadonlySet<string>;
  private readonly cache: TtlLruCache<PolicyResult>;
  private readonly evaluations = new SingleFlight<Shared<PolicyResult>>();
  /** Tag resolutions in flight: concurrent reviews of one tag share one HEAD. */
  private readonly tagHeads = new SingleFlight<Shared<ManifestHead | undefined>>();
  private readonly loads = new SingleFlight<Shared<LoadedSignatures>>();
  private readonly loaderOptions: SignatureLoaderOptions;
  private readonly logger: Logger;
  private readonly revocation: RevocationCheck;

  constructor(private readonly deps: ImageVerifierDeps) {
    const { config } = deps;
    this.revocation = { revocations: config.revocations ?? [], signingTime: deps.signingTime };
    this.policies = new PolicySet(config.policies, config.witnesses);
    this.settings = config.admission;
    this.witnesses = new Map(config.witnesses.map((w) => [w.name, w]));
    this.excluded = new Set(config.admission.excludeNamespaces);
    this.cache = new TtlLruCache(
      config.admission.cacheTtlSeconds * 1000,
      config.admission.cacheMaxEntries,
      deps.now,
    );
    this.loaderOptions = {
      ...DEFAULT_SIGNATURE_LOADER_OPTIONS,
      maxLayers: config.admission.maxSignatures,
      maxBundles: config.admission.maxSignatures,
      ...deps.signatures,
    };
    this.logger = deps.logger ?? silentLogger;
  }

  /** How long a review may take (`admission.deadlineSeconds`). */
  get deadlineMs(): number {
    return this.settings.deadlineMs;
  }

  /** True for Kubernetes namespaces admitted without any check (`admission.excludeNamespaces`). */
  isExcluded(namespace: string | undefined): boolean {
    return namespace !== undefined && this.excluded.has(namespace);
  }

  /** Forgets every cached result (after a key rotation, say). */
  clearCache(): void {
    this.cache.clear();
  }

  /**
   * The limits of a new review: `admission.deadlineSeconds` and `admission.maxReviewBytes`.
   * Call `dispose` once the review is answered.
   */
  reviewBounds(): ReviewBounds {
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(
          new RegistryError(
            'ABORTED',
            'signet',
            `the review passed its ${this.settings.deadlineMs} ms deadline`,
          ),
        ),
      this.settings.deadlineMs,
    );
    timer.unref();
    return {
      signal: controller.signal,
      budget: new ByteBudget(this.settings.maxReviewBytes),
      dispose: () => clearTimeout(timer),
    };
  }

  /** Decides one image within the review limits of the configuration (`POST /verify`, `signet verify`). */
  async verifyWithin(image: string, scope: VerifyScope = {}, field = 'image'): Promise<ImageDecision> {
    const bounds = this.reviewBounds();
    try {
      return await this.verify(image, scope, field, bounds);
    } finally {
      bounds.dispose();
    }
  }

  /** Decides one image; reads are bounded by `read` (none by default). */
  async verify(
    image: string,
    scope: VerifyScope = {},
    field = 'image',
    read: ReadOptions = {},
  ): Promise<ImageDecision> {
    const decisions = await this.verifyAll([{ image, field }], scope, read);
    return decisions.get(image) as ImageDecision;
  }

  /**
   * Decides every distinct image of a request, in parallel, sharing tag resolutions, signature
   * reads and witness checks. The map is keyed by the image string as given. `read` bounds every
   * registry read of the request (`reviewBounds()`).
   */
  async verifyAll(
    images: readonly ImageRequest[],
    scope: VerifyScope = {},
    read: ReadOptions = {},
  ): Promise<Map<string, ImageDecision>> {
    const session = new Session(read);
    const distinct = new Map<string, ImageRequest>();
    for (const request of images) if (!distinct.has(request.image)) distinct.set(request.image, request);
    // Two spellings of one reference (`nginx`, `docker.io/library/nginx:latest`) share the work.
    const byReference = new Map<string, Promise<ReferenceDecision>>();
    const entries = await Promise.all(
      [...distinct.values()].map(async ({ image, field }): Promise<[string, ImageDecision]> => {
        try {
          return [image, await this.decide(image, field, scope, session, byReference)];
        } catch (err) {
          // A bug must not admit anything.
          this.logger.error('verification failed unexpectedly', { image, cause: describeError(err) });
          return [
            image,
            this.imageLevel(
              image,
              undefined,
              scope,
              'deny',
              reason({ code: 'INTERNAL_ERROR', detail: describeError(err) }),
            ),
          ];
        }
      }),
    );
    return new Map(entries);
  }

  private async decide(
    image: string,
    field: string,
    scope: VerifyScope,
    session: Session,
    byReference: Map<string, Promise<ReferenceDecision>>,
  ): Promise<ImageDecision> {
    if (this.isExcluded(scope.namespace)) {
      return {
        ...this.imageLevel(image, undefined, scope, 'allow', undefined),
        message: `namespace ${scope.namespace} is excluded`,
      };
    }
    let ref: ImageReference;
    try {
      ref = parseReference(image, field);
    } catch (err) {
      return this.imageLevel(image, undefined, scope, 'deny', reasonFromError(err, { field }));
    }
    const key = formatReference(ref);
    const shared = await memo(byReference, key, () => this.decideReference(ref, scope, session));
    const { mutate, ...decision } = shared;
    return {
      ...decision,
      image,
      mutatedImage:
        mutate && decision.allowed && decision.digest !== undefined
          ? `${image}@${decision.digest}`
          : undefined,
    };
  }

  private async decideReference(
    ref: ImageReference,
    scope: VerifyScope,
    session: Session,
  ): Promise<ReferenceDecision> {
    const reference = formatReference(ref);
    const selection = { cluster: scope.cluster ?? '', namespace: scope.namespace ?? '' };
    // The host check first: an uncovered registry is never contacted, whatever follows.
    const selected = this.policies.coversHost(ref.registry) ? this.policies.select(selection, ref) : [];
    if (selected.length === 0) return { ...this.noMatchingPolicy(reference, ref, scope), mutate: false };

    let target: Target | undefined;
    let failure: Reason | undefined;
    if (ref.digest !== undefined) {
      // A digest reference is what runs: never re-resolved.
      target = { ref, digest: ref.digest, tag: undefined };
    } else {
      const tag = ref.tag ?? 'latest';
      try {
        // A HEAD answered while this review waited is as fresh as one it would send itself.
        const head = await memo(session.heads, reference, () =>
          this.joined(this.tagHeads, reference, session, () =>
            this.deps.registries.client(ref.registry).headManifest(ref.repository, tag, session.read),
          ),
        );
        if (head === undefined) failure = reason({ code: 'IMAGE_NOT_FOUND', image: reference });
        else target = { ref, digest: head.digest, tag };
      } catch (err) {
        failure = reasonFromError(err);
      }
    }

    const results = await Promise.all(
      selected.map((policy) =>
        target !== undefined
          ? this.evaluate(policy, target, session)
          : Promise.resolve(this.failed(policy, failure as Reason, [])),
      ),
    );
    // Only tag references are pinned; a digest reference already says exactly what runs.
    const mutate = ref.digest === undefined && selected.some((p) => p.policy.mutateDigest);
    return { ...this.combine(reference, target?.digest, scope, results), mutate };
  }

  /** A policy's result on a resolved image: from the cache, from a verification in flight, or fresh. */
  private async evaluate(policy: CompiledPolicy, target: Target, session: Session): Promise<PolicyResult> {
    const key = `${policy.hash}|${repositoryName(target.ref)}@${target.digest}|${target.tag ?? ''}`;
    const cached = this.cache.get(key);
    report(this.deps.telemetry, 'verificationCache', cached !== undefined);
    if (cached !== undefined) return { ...cached, cached: true };
    const fresh = async (): Promise<PolicyResult> => {
      let result: PolicyResult;
      try {
        result = await this.evaluateUncached(policy, target, session);
      } catch (err) {
        result = this.failed(policy, reason({ code: 'INTERNAL_ERROR', detail: describeError(err) }), []);
      }
      // Only successes are remembered: a failure is checked again on the next request.
      if (result.verified) this.cache.set(key, result);
      return result;
    };
    return this.joined(
      this.evaluations,
      key,
      session,
      fresh,
      (r) => r.reason?.code === 'DEADLINE_EXCEEDED' || r.reason?.code === 'REVIEW_TOO_LARGE',
    );
  }

  /**
   * Joins the same work in flight for another review, or starts it. Work that another review's
   * own deadline or budget ended is done again under this review's limits: one review's limits
   * must not decide another's.
   */
  private async joined<V>(
    flight: SingleFlight<Shared<V>>,
    key: string,
    session: Session,
    work: () => Promise<V>,
    boundByReview: (value: V) => boolean = () => false,
  ): Promise<V> {
    const shared = await flight.run(key, () =>
      work().then(
        (value): Shared<V> => ({ session, ok: true, value }),
        (error: unknown): Shared<V> => ({ session, ok: false, error }),
      ),
    );
    if (shared.session !== session && (shared.ok ? boundByReview(shared.value) : isReviewBound(shared.error)))
      return work();
    if (!shared.ok) throw shared.error;
    return shared.value;
  }

  private async evaluateUncached(
    policy: CompiledPolicy,
    target: Target,
    session: Session,
  ): Promise<PolicyResult> {
    const { ref, digest } = target;
    const where = `${repositoryName(ref)}@${digest}`;
    const client = this.deps.registries.client(ref.registry);
    // Cosign signatures first: they are what nearly every image carries, and when they satisfy
    // the policy the Sigstore bundle referrers are never asked for (one or two registry requests
    // saved on every miss). Only a policy they do not satisfy looks at bundles too.
    let signatures: LoadedSignatures;
    try {
      signatures = await memo(session.signatures, where, () =>
        this.joined(this.loads, where, session, () =>
          loadCosignOnly(client, ref.repository, digest, this.loaderOptions, session.read),
        ),
      );
    } catch (err) {
      return this.failed(policy, reasonFromError(err), []);
    }
    let sets = await this.checkSets(policy, signatures, target, session, where);
    if (sets.some((s) => !s.passed) && this.loaderOptions.bundles) {
      const withBundles = `${where}|bundles`;
      let bundles: LoadedSignatures;
      try {
        bundles = await memo(session.signatures, withBundles, () =>
          this.joined(this.loads, withBundles, session, () =>
            loadBundleSignatures(client, ref.repository, digest, this.loaderOptions, session.read),
          ),
        );
      } catch (err) {
        return this.failed(policy, reasonFromError(err), sets);
      }
      signatures = mergeSignatures(signatures, bundles);
      sets = await this.checkSets(policy, signatures, target, session, withBundles);
    }
    const failing = sets.find((s) => !s.passed);
    if (failing === undefined) {
      return {
        policy: policy.policy.name,
        mode: policy.policy.mode,
        failurePolicy: policy.policy.failurePolicy,
        verified: true,
        effect: 'pass',
        reason: undefined,
        attestors: sets,
        cached: false,
      };
    }
    return this.failed(policy, setReason(failing), sets);
  }

  /** Each attestor set of `policy` against `signatures`; `where` names those signatures in the session. */
  private checkSets(
    policy: CompiledPolicy,
    signatures: LoadedSignatures,
    target: Target,
    session: Session,
    where: string,
  ): Promise<AttestorSetResult[]> {
    const witnessTarget: WitnessTarget = {
      digest: target.digest,
      tag: target.tag,
      repository: repositoryName(target.ref),
      identity: policy.policy.signedIdentity,
    };
    const identity = identityKey(policy.policy);
    return Promise.all(
      policy.policy.attestors.map(async (set) => {
        const witnesses = await Promise.all(
          set.witnesses.map((name) =>
            memo(session.witnesses, `${name}|${where}|${target.tag ?? ''}|${identity}`, () =>
              this.checkWitness(name, signatures, witnessTarget),
            ),
          ),
        );
        const valid = this.distinctSigners(witnesses.filter((w) => w.valid));
        return { count: set.count, valid, passed: valid >= set.count, witnesses };
      }),
    );
  }

  /**
   * How many distinct signers the valid witnesses' signatures have: N of M means N signers, so two
   * witness names for one key (or one keyless identity) count once (the config check refuses such
   * sets of keys; this holds even for a hand-built config, and for signers only known once verified).
   */
  private distinctSigners(valid: readonly WitnessResult[]): number {
    return new Set(valid.map((w) => w.signature?.signer ?? `witness:${w.witness}`)).size;
  }

  private checkWitness(
    name: string,
    signatures: LoadedSignatures,
    target: WitnessTarget,
  ): Promise<WitnessResult> {
    const witness = this.witnesses.get(name);
    if (witness === undefined) {
      // The config loader rejects unknown witnesses; a hand-built config may not have.
      return Promise.resolve({
        witness: name,
        valid: false,
        reason: reason({
          code: 'KEY_UNAVAILABLE',
          witness: name,
          keyCode: 'WITNESS_UNKNOWN',
          detail: 'no witness of that name is configured',
        }),
        signature: undefined,
      });
    }
    return checkWitness(witness, this.deps.keys, signatures, target, new Date(), this.revocation);
  }

  /** A policy that did not verify, and what that means under its mode and failure policy. */
  private failed(policy: CompiledPolicy, why: Reason, attestors: readonly AttestorSetResult[]): PolicyResult {
    const { mode, failurePolicy, name } = policy.policy;
    // An outage is not a verdict on the image: `failurePolicy` alone decides it, in audit mode too
    // (audit softens verdicts on the image; it must not turn a registry or KMS outage into an allow).
    const effect: PolicyEffect = isOperationalFailure(why)
      ? failurePolicy === 'allow'
        ? 'warn'
        : 'deny'
      : mode === 'audit'
        ? 'warn'
        : 'deny';
    return {
      policy: name,
      mode,
      failurePolicy,
      verified: false,
      effect,
      reason: why,
      attestors,
      cached: false,
    };
  }

  private combine(
    reference: string,
    digest: string | undefined,
    scope: VerifyScope,
    results: readonly PolicyResult[],
  ): Decided {
    for (const r of results) report(this.deps.telemetry, 'policyDecision', r.policy, r.effect);
    const denied = results.filter((r) => r.effect === 'deny');
    const warned = results.filter((r) => r.effect === 'warn');
    const verdict: Verdict = denied.length > 0 ? 'deny' : warned.length > 0 ? 'warn' : 'allow';
    const warnings = warned.map((r) => {
      const code = r.reason?.code ?? 'UNVERIFIED';
      const waived = r.reason !== undefined && isOperationalFailure(r.reason);
      return r.mode === 'audit' && !waived
        ? warningText(`signet audit: policy ${r.policy} would deny `, reference, `: ${code}`)
        : warningText(`signet: policy ${r.policy} admitted `, reference, ` unverified: ${code}`);
    });
    const first = denied[0] ?? warned[0];
    const message =
      first === undefined
        ? `verified by ${results.map((r) => `policy "${r.policy}"`).join(', ')}`
        : denied.length > 0
          ? denied.map((r) => `policy "${r.policy}": ${r.reason?.message ?? 'not verified'}`).join('; ')
          : `admitted with warnings: ${warned.map((r) => `policy "${r.policy}" (${r.mode}): ${r.reason?.message ?? 'not verified'}`).join('; ')}`;
    const decision = {
      reference,
      digest,
      namespace: scope.namespace,
      cluster: scope.cluster,
      allowed: verdict !== 'deny',
      verdict,
      reason: first?.reason,
      message,
      policies: results,
      warnings,
    };
    if (verdict !== 'allow') {
      this.logger.info(verdict === 'deny' ? 'image denied' : 'image admitted with warnings', {
        image: reference,
        digest,
        namespace: scope.namespace,
        cluster: scope.cluster,
        policies: (verdict === 'deny' ? denied : warned).map((r) => r.policy),
        code: first?.reason?.code,
      });
    }
    return decision;
  }

  private noMatchingPolicy(reference: string, ref: ImageReference, scope: VerifyScope): Decided {
    const why = reason({ code: 'NO_MATCHING_POLICY', image: repositoryName(ref) });
    switch (this.settings.noMatchingPolicy) {
      case 'deny':
        return { ...this.imageLevel(reference, reference, scope, 'deny', why) };
      case 'allow':
        return {
          ...this.imageLevel(reference, reference, scope, 'allow', why),
          message: `${why.message}; admitted (noMatchingPolicy: allow)`,
        };
      case 'warn':
        return {
          ...this.imageLevel(reference, reference, scope, 'warn', why),
          message: `${why.message}; admitted with a warning (noMatchingPolicy: warn)`,
          warnings: [warningText('signet: no policy covers ', reference, '; admitted unverified')],
        };
    }
  }

  /** A decision made before any policy ran (excluded namespace, bad reference, no policy, a bug). */
  private imageLevel(
    image: string,
    reference: string | undefined,
    scope: VerifyScope,
    verdict: Verdict,
    why: Reason | undefined,
  ): ImageDecision {
    return {
      image,
      reference,
      digest: undefined,
      namespace: scope.namespace,
      cluster: scope.cluster,
      allowed: verdict !== 'deny',
      verdict,
      reason: why,
      message: why?.message ?? 'admitted',
      policies: [],
      warnings: [],
      mutatedImage: undefined,
    };
  }
}

/** The signed-identity rule of a policy as a memo key part. */
const identityKey = (policy: Policy): string => JSON.stringify(policy.signedIdentity);

/**
 * The reason an attestor set failed. An operational failure (a key or registry error) that could
 * account for the missing witnesses is reported as such, so `failurePolicy` applies to it; a
 * single witness speaks for itself; witnesses that all failed the same way share their reason;
 * otherwise the count is what failed.
 */
export function setReason(set: AttestorSetResult): Reason {
  const failing = set.witnesses.filter((w) => !w.valid && w.reason !== undefined);
  const reasons = failing.map((w) => w.reason as Reason);
  const operational = reasons.filter((r) => isOperationalFailure(r));
  const firstOperational = operational[0];
  if (firstOperational !== undefined && set.valid + operational.length >= set.count) return firstOperational;
  const first = reasons[0];
  if (first !== undefined && set.valid === 0 && reasons.every((r) => r.code === first.code)) return first;
  return reason({
    code: 'INSUFFICIENT_WITNESSES',
    required: set.count,
    valid: set.valid,
    witnesses: set.witnesses.map((w) => ({
      witness: w.witness,
      code: w.valid ? 'VALID' : (w.reason?.code ?? 'INTERNAL_ERROR'),
    })),
  });
}
