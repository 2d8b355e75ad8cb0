/**
 * The admission webhook's decision: an AdmissionReview in, an AdmissionReview out with the same
 * uid. Every distinct image is verified once, all in parallel; one denied image denies the
 * request, and the status message names each denied field, image, policy and reason. Audit and
 * warn outcomes become warnings; `mutateDigest` becomes a JSONPatch (CREATE/UPDATE, allowed only).
 * Nothing that goes wrong inside is ever answered with `allowed: true`.
 */
import { describeError } from '../core/errors';
import { silentLogger, type Logger } from '../core/logger';
import type { ImageDecision } from '../verification/decision';
import { warningText } from '../verification/decision';
import type { ImageVerifier, ReviewBounds } from '../verification/verifier';
import { digestPatch, encodePatch } from './patch';
import {
  ADMISSION_API_VERSION,
  extractImages,
  parseAdmissionReview,
  type AdmissionRequest,
  type ImageSite,
} from './review';

/** The `response` of an AdmissionReview. */
export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: { readonly code: number; readonly message: string };
  readonly warnings?: readonly string[];
  readonly patchType?: 'JSONPatch';
  readonly patch?: string;
}

/** The AdmissionReview Signet answers. */
export interface AdmissionReviewResponse {
  readonly apiVersion: typeof ADMISSION_API_VERSION;
  readonly kind: 'AdmissionReview';
  readonly response: AdmissionResponse;
}

/**
 * What the controller asks of verification: an `ImageVerifier`, or a wrapper around one that
 * shares decisions between reviews (`signet audit`).
 */
export type AdmissionVerifier = Pick<
  ImageVerifier,
  'verifyAll' | 'reviewBounds' | 'deadlineMs' | 'isExcluded'
>;

/** One image of a review and the decision on it. */
export interface CheckedImage {
  readonly site: ImageSite;
  readonly decision: ImageDecision;
}

/** What the controller answered to one review, for whoever records it (the status page, an audit). */
export interface AdmissionOutcome {
  readonly request: AdmissionRequest;
  readonly cluster: string | undefined;
  readonly response: AdmissionResponse;
  /**
   * The decision on every image checked, by site; empty when none was (an excluded namespace, a
   * kind without pod template, a deadline that passed first).
   */
  readonly images: readonly CheckedImage[];
}

export interface AdmissionControllerDeps {
  readonly verifier: AdmissionVerifier;
  readonly logger?: Logger;
  /** Told what was answered to every review it could parse; must not throw (what it throws is ignored). */
  readonly observe?: (outcome: AdmissionOutcome) => void;
  /**
   * Answer within this long, denying when verification has not finished: the apiserver gives a
   * webhook 10 s by default, and a webhook configured `failurePolicy: Ignore` would admit on a
   * timeout. Default: the configuration's `admission.deadlineSeconds` (9 s); the review's reads
   * are aborted then.
   */
  readonly deadlineMs?: number;
}

/** Kubernetes shows a handful of warnings well; more are noise. */
const MAX_WARNINGS = 20;
/** Denial messages stay readable in `kubectl` output and events. */
const MAX_MESSAGE_LENGTH = 4096;

const review = (response: AdmissionResponse): AdmissionReviewResponse => ({
  apiVersion: ADMISSION_API_VERSION,
  kind: 'AdmissionReview',
  response,
});

const deny = (uid: string, message: string, warnings: readonly string[] = []): AdmissionReviewResponse =>
  review({
    uid,
    allowed: false,
    status: {
      code: 403,
      message: message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : message,
    },
    ...(warnings.length > 0 ? { warnings } : {}),
  });

const allow = (uid: string, warnings: readonly string[] = []): AdmissionReviewResponse =>
  review({ uid, allowed: true, ...(warnings.length > 0 ? { warnings } : {}) });

/** An answer and the images it was decided on. */
interface Decided {
  readonly answer: AdmissionReviewResponse;
  readonly images: readonly CheckedImage[];
}

/** An answer given without checking any image. */
const unchecked = (answer: AdmissionReviewResponse): Decided => ({ answer, images: [] });

/** Answers AdmissionReviews for one configuration. */
export class AdmissionController {
  private readonly logger: Logger;

  constructor(private readonly deps: AdmissionControllerDeps) {
    this.logger = deps.logger ?? silentLogger;
  }

  /**
   * Decides one AdmissionReview. Throws InputError ADMISSION_REVIEW_INVALID (HTTP 400) only when
   * the review cannot be answered at all (no uid, wrong apiVersion); every other problem denies.
   */
  async review(body: unknown, cluster: string | undefined): Promise<AdmissionReviewResponse> {
    const request = parseAdmissionReview(body);
    const deadlineMs = this.deps.deadlineMs ?? this.deps.verifier.deadlineMs;
    // The review's reads end with its deadline and share one byte budget, so a slow or hostile
    // registry costs at most the deadline and the budget, and no work outlives the answer.
    const bounds = this.deps.verifier.reviewBounds();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Decided>((resolve) => {
      timer = setTimeout(() => {
        this.logger.warn('admission deadline passed', { uid: request.uid, deadlineMs });
        resolve(
          unchecked(
            deny(
              request.uid,
              `signet: verification did not finish within ${deadlineMs} ms (slow registry or KMS?); denied (fail closed)`,
            ),
          ),
        );
      }, deadlineMs);
    });
    let decided: Decided;
    try {
      decided = await Promise.race([this.decide(request, cluster, bounds), deadline]);
    } catch (err) {
      this.logger.error('admission failed unexpectedly', { uid: request.uid, cause: describeError(err) });
      decided = unchecked(
        deny(request.uid, `signet: internal error, denied (fail closed): ${describeError(err)}`),
      );
    } finally {
      clearTimeout(timer);
      bounds.dispose();
    }
    this.observe({ request, cluster, response: decided.answer.response, images: decided.images });
    return decided.answer;
  }

  private observe(outcome: AdmissionOutcome): void {
    try {
      this.deps.observe?.(outcome);
    } catch {
      // a broken recorder is not a reason to change the answer
    }
  }

  private async decide(
    request: AdmissionRequest,
    cluster: string | undefined,
    bounds: ReviewBounds,
  ): Promise<Decided> {
    const { uid, operation } = request;
    // Deleting or connecting to (exec, attach, port-forward) a workload runs no new image.
    if (operation === 'DELETE' || operation === 'CONNECT') return unchecked(allow(uid));
    // Other subresources (status, scale, binding, eviction) cannot change images.
    if (request.subResource !== undefined && request.subResource !== 'ephemeralcontainers')
      return unchecked(allow(uid));
    if (this.deps.verifier.isExcluded(request.namespace)) return unchecked(allow(uid));

    const extraction = extractImages(request);
    if (extraction.$case === 'unsupported') {
      return unchecked(
        allow(uid, [warningText('signet: kind ', extraction.kind, ' has no pod template Signet checks')]),
      );
    }
    const { sites, problems } = extraction;
    const lines: string[] = problems.map((p) => `${p.field}: ${p.message}`);
    // The same denials with only their reason codes: used when the full text would not fit.
    const brief: string[] = [...lines];
    const checkable = sites.filter((s) => s.problem === undefined);
    for (const site of sites) {
      if (site.problem !== undefined) {
        lines.push(`${site.field}: invalid image reference: ${site.problem}`);
        brief.push(`${site.field}: invalid image reference`);
      }
    }
    const decisions =
      checkable.length > 0
        ? await this.deps.verifier.verifyAll(
            checkable.map((s) => ({ image: s.image, field: s.field })),
            { namespace: request.namespace, cluster },
            bounds,
          )
        : new Map<string, ImageDecision>();

    const warnings = new Set<string>();
    const images: CheckedImage[] = [];
    for (const site of checkable) {
      const decision = decisions.get(site.image);
      if (decision === undefined) {
        lines.push(`${site.field}: ${site.image}: not verified`);
        brief.push(`${site.field}: ${site.image}: not verified`);
        continue;
      }
      images.push({ site, decision });
      for (const warning of decision.warnings) warnings.add(warning);
      if (!decision.allowed) {
        lines.push(siteDenial(site, decision));
        brief.push(`${site.field}: ${site.image}: ${decision.reason?.code ?? 'DENIED'}`);
      }
    }
    const shownWarnings = [...warnings].slice(0, MAX_WARNINGS);
    const what =
      `${request.kind.kind} ${request.namespace !== undefined ? `${request.namespace}/` : ''}${request.name ?? ''}`.trim();
    if (lines.length > 0) {
      this.logger.info('admission denied', {
        uid,
        object: what,
        cluster,
        denials: lines,
        dryRun: request.dryRun,
      });
      // Every denied image must be named: when the details do not fit, the codes do.
      const full = `signet denied ${what}: ${lines.join('; ')}`;
      const message =
        full.length <= MAX_MESSAGE_LENGTH
          ? full
          : `signet denied ${what} (details in Signet's log and POST /verify): ${brief.join('; ')}`;
      return { answer: deny(uid, message, shownWarnings), images };
    }

    const ops =
      operation === 'CREATE' || operation === 'UPDATE'
        ? digestPatch(checkable, (image) => decisions.get(image)?.mutatedImage, operation)
        : [];
    if (ops.length === 0) return { answer: allow(uid, shownWarnings), images };
    return {
      answer: review({
        uid,
        allowed: true,
        ...(shownWarnings.length > 0 ? { warnings: shownWarnings } : {}),
        patchType: 'JSONPatch',
        patch: encodePatch(ops),
      }),
      images,
    };
  }
}

/** `spec.containers[1].image: image X: policy "p": reason` — what a user needs to fix it. */
function siteDenial(site: ImageSite, decision: ImageDecision): string {
  if (decision.reason?.code === 'INVALID_REFERENCE')
    return `${site.field}: invalid image reference: ${decision.reason.detail}`;
  // A tag reference is shown with the digest it resolved to; a digest reference already names it.
  const resolved = decision.digest !== undefined && !site.image.includes('@') ? ` (${decision.digest})` : '';
  return `${site.field}: image ${site.image}${resolved}: ${decision.message}`;
}
