/**
 * Continuous re-verification: one round checks every image admitted within the window again,
 * against the policies, keys and signatures as they are now, with a verifier that remembers
 * nothing from admission (built fresh for the round). An image that was trusted and is not any
 * more (its signature deleted, its key removed, disabled or revoked, its policy changed, its tag
 * moved to another digest) becomes a finding: saved in the ledger, logged, counted, announced
 * as `Image Trust Lost` once. A later round that finds it trusted again resolves it.
 *
 * What is not a finding: a registry or KMS outage, a deadline or budget the round ran out of
 * (the image is `unverifiable` this round and checked again next round); an image admitted with
 * warnings (audit mode) that still only warns, since it was never trusted.
 *
 * The verifier reaches only hosts that an enabled policy names (the same SSRF rule as
 * admission), within `admission.deadlineSeconds` and `maxReviewBytes` per image, at most
 * `reverify.concurrency` images at once.
 */
import { createHash } from 'node:crypto';
import { mapBounded } from '../core/pool';
import type { Revocation, ReverifySettings } from '../config/types';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import { parseReference } from '../core/reference';
import { report, type Telemetry } from '../core/telemetry';
import {
  daysMs,
  placementKey,
  type AdmittedImage,
  type Finding,
  type Ledger,
  type SignatureRecord,
} from '../ledger/types';
import type { ImageDecision, PolicyResult } from '../verification/decision';
import { isOperationalFailure } from '../verification/reasons';
import { describeRevocation, isRevoked } from '../verification/revocation';
import type { ImageVerifier } from '../verification/verifier';

/** Finding codes of re-verification's own (the others are the verifier's reason codes). */
export const FINDING_CODES = {
  /** The admitted tag now names another digest than the one admitted (and running). */
  tagMoved: 'TAG_MOVED',
  /** Every signature that satisfied a witness is revoked by `revocations`. */
  revoked: 'SIGNATURE_REVOKED',
} as const;

/** Reasons that say nothing about the image: this round could not tell. */
const UNDECIDED = new Set(['DEADLINE_EXCEEDED', 'REVIEW_TOO_LARGE', 'INTERNAL_ERROR']);

/** Where new findings are announced (`Image Trust Lost`): EventBridge on AWS, a webhook locally. */
export interface FindingSink {
  announce(findings: readonly Finding[]): Promise<void>;
}

/** What one round checks with: built fresh for it, from the configuration as it is now. */
export interface RoundInput {
  /** A verifier with nothing cached from before the round. */
  readonly verifier: Pick<ImageVerifier, 'verifyWithin'>;
  readonly revocations: readonly Revocation[];
  readonly settings: Pick<ReverifySettings, 'windowDays' | 'concurrency'>;
  /** Releases what the round held (its key ring); called when it ends. */
  readonly dispose?: () => void;
}

/** What a round did. */
export interface RoundSummary {
  readonly checked: number;
  readonly trusted: number;
  /** Findings opened this round. */
  readonly opened: readonly Finding[];
  /** Findings still open (lost before, still lost). */
  readonly stillLost: number;
  readonly resolved: number;
  readonly unverifiable: number;
}

/** What re-verification runs on. */
export interface ReverifierDeps {
  readonly ledger: Ledger;
  readonly logger: Logger;
  readonly sink?: FindingSink;
  readonly telemetry?: Telemetry;
  readonly clock?: () => number;
}

/** How one admitted image fared. */
type Verdict =
  | { readonly $case: 'trusted' }
  | { readonly $case: 'unverifiable'; readonly why: string }
  | {
      readonly $case: 'lost';
      readonly code: string;
      readonly message: string;
      readonly policies: readonly string[];
    };

/** Runs re-verification rounds over the ledger's admitted images. */
export class Reverifier {
  private readonly clock: () => number;

  constructor(private readonly deps: ReverifierDeps) {
    this.clock = deps.clock ?? Date.now;
  }

  /** One round over every image admitted within the window. */
  async round(input: RoundInput): Promise<RoundSummary> {
    try {
      return await this.run(input);
    } finally {
      input.dispose?.();
    }
  }

  private async run(input: RoundInput): Promise<RoundSummary> {
    const { ledger, logger } = this.deps;
    const started = this.clock();
    const admitted = await ledger.admitted(started - daysMs(input.settings.windowDays));
    const open = new Map((await ledger.findings()).map((f) => [f.id, f]));
    const signed = new Map<string, Promise<SignatureRecord[]>>();
    const verdicts = await mapBounded(admitted, input.settings.concurrency, (image) =>
      this.check(image, input, signed).catch((err: unknown): Verdict => ({
        $case: 'unverifiable',
        why: describeError(err),
      })),
    );

    const now = this.clock();
    const changed: Finding[] = [];
    const opened: Finding[] = [];
    let trusted = 0;
    let stillLost = 0;
    let resolved = 0;
    let unverifiable = 0;
    admitted.forEach((image, i) => {
      const verdict = verdicts[i] as Verdict;
      const id = findingId(image);
      const existing = open.get(id);
      report(this.deps.telemetry, 'reverification', verdict.$case === 'lost' ? 'finding' : verdict.$case);
      switch (verdict.$case) {
        case 'trusted':
          trusted++;
          if (existing !== undefined) {
            resolved++;
            changed.push({ ...existing, resolvedAt: now });
            logger.info('image trusted again', { image: image.reference, digest: image.digest, finding: id });
          }
          return;
        case 'unverifiable':
          unverifiable++;
          logger.warn('image not re-verified this round', {
            image: image.reference,
            digest: image.digest,
            namespace: image.namespace,
            cluster: image.cluster,
            cause: verdict.why,
          });
          return;
        case 'lost': {
          const finding: Finding = {
            id,
            reference: image.reference,
            digest: image.digest,
            namespace: image.namespace,
            cluster: image.cluster,
            code: verdict.code,
            message: verdict.message,
            policies: verdict.policies,
            firstFoundAt: existing?.firstFoundAt ?? now,
            lastFoundAt: now,
            resolvedAt: undefined,
            lastAdmittedAt: image.lastAdmittedAt,
            announcedAt: existing?.announcedAt,
          };
          changed.push(finding);
          if (existing === undefined) {
            opened.push(finding);
            report(this.deps.telemetry, 'imageTrustLost', verdict.code);
            logger.warn('image trust lost', {
              image: image.reference,
              digest: image.digest,
              namespace: image.namespace,
              cluster: image.cluster,
              code: verdict.code,
              message: verdict.message,
              finding: id,
            });
          } else stillLost++;
          return;
        }
      }
    });

    // Announced at least once: a finding whose announcement failed is announced next round.
    const toAnnounce = changed.filter((f) => f.resolvedAt === undefined && f.announcedAt === undefined);
    const announced = await this.announce(toAnnounce, now);
    const saved = changed.map((f) => (announced.has(f.id) ? { ...f, announcedAt: now } : f));
    if (saved.length > 0) await ledger.saveFindings(saved);
    const summary = { checked: admitted.length, trusted, opened, stillLost, resolved, unverifiable };
    logger.info('re-verification round', {
      checked: summary.checked,
      trusted,
      opened: opened.length,
      stillLost,
      resolved,
      unverifiable,
      ms: this.clock() - started,
    });
    return summary;
  }

  private async announce(findings: readonly Finding[], now: number): Promise<Set<string>> {
    const sink = this.deps.sink;
    if (sink === undefined || findings.length === 0) return new Set(findings.map((f) => f.id));
    try {
      await sink.announce(findings.map((f) => ({ ...f, announcedAt: now })));
      return new Set(findings.map((f) => f.id));
    } catch (err) {
      this.deps.logger.error('Image Trust Lost not announced; trying again next round', {
        findings: findings.length,
        cause: describeError(err),
      });
      return new Set();
    }
  }

  /** One admitted image against the current configuration. */
  private async check(
    image: AdmittedImage,
    input: RoundInput,
    signed: Map<string, Promise<SignatureRecord[]>>,
  ): Promise<Verdict> {
    const scope = {
      namespace: image.namespace === '' ? undefined : image.namespace,
      cluster: image.cluster === '' ? undefined : image.cluster,
    };
    const decision = await input.verifier.verifyWithin(image.reference, scope);
    if (decision.digest !== undefined && decision.digest !== image.digest) {
      const ref = parseReference(image.reference);
      return {
        $case: 'lost',
        code: FINDING_CODES.tagMoved,
        message: `tag ${ref.tag ?? 'latest'} of ${image.reference} now names ${decision.digest}; ${image.digest} was admitted and may still run`,
        policies: decision.policies.map((p) => p.policy),
      };
    }
    const judged = judge(decision, image);
    if (judged.$case !== 'trusted' || input.revocations.length === 0) return judged;
    let records = signed.get(image.digest);
    if (records === undefined) {
      records = this.deps.ledger.signatures({ digest: image.digest });
      signed.set(image.digest, records);
    }
    return revoked(decision, await records, input.revocations, this.clock());
  }
}

/** The verdict a fresh decision gives on an image admitted with `image.verdict`. */
function judge(decision: ImageDecision, image: AdmittedImage): Verdict {
  if (decision.verdict === 'allow') return { $case: 'trusted' };
  const why = decision.reason;
  if (why !== undefined && (isOperationalFailure(why) || UNDECIDED.has(why.code))) {
    return { $case: 'unverifiable', why: `${why.code}: ${why.message}` };
  }
  // Admitted with warnings and still only warned about: it never was trusted.
  if (decision.verdict === 'warn' && image.verdict === 'warn') return { $case: 'trusted' };
  return {
    $case: 'lost',
    code: why?.code ?? 'UNVERIFIED',
    message: decision.message,
    policies: decision.policies.filter((p) => p.effect !== 'pass').map((p) => p.policy),
  };
}

/**
 * Whether the signatures that satisfied each policy still count under `revocations`. A witness's
 * signature is judged by its key (the accepted signature's signer) and by what the ledger
 * recorded for that key and digest (the rule, the signing time); a signature the ledger does not
 * know (written by someone else) is judged by its key alone.
 */
function revoked(
  decision: ImageDecision,
  records: readonly SignatureRecord[],
  revocations: readonly Revocation[],
  now: number,
): Verdict {
  for (const policy of decision.policies) {
    const lost = revokedSet(policy, records, revocations, now);
    if (lost !== undefined) {
      return {
        $case: 'lost',
        code: FINDING_CODES.revoked,
        message: `policy "${policy.policy}": ${describeRevocation(lost)}`,
        policies: [policy.policy],
      };
    }
  }
  return { $case: 'trusted' };
}

function revokedSet(
  policy: PolicyResult,
  records: readonly SignatureRecord[],
  revocations: readonly Revocation[],
  now: number,
): Revocation | undefined {
  for (const set of policy.attestors) {
    let voiding: Revocation | undefined;
    const signers = new Set<string>();
    for (const witness of set.witnesses) {
      if (!witness.valid || witness.signature === undefined) continue;
      const keyId = witness.signature.signer;
      const known = records.filter((r) => r.keyId === keyId);
      const verdicts =
        known.length > 0
          ? known.map((r) => isRevoked({ keyId, rule: r.rule, signedAt: r.signedAt }, revocations, now))
          : [isRevoked({ keyId, rule: undefined, signedAt: witness.signature.signedAt }, revocations, now)];
      // Revoked only when every signature Signet knows of by that key for this digest is.
      if (verdicts.every((v) => v !== undefined)) voiding ??= verdicts[0];
      else signers.add(keyId);
    }
    if (signers.size < set.count && voiding !== undefined) return voiding;
  }
  return undefined;
}

/** One finding per placement: the same id as long as the image is admitted there. */
export const findingId = (image: AdmittedImage): string =>
  createHash('sha256').update(placementKey(image)).digest('hex').slice(0, 32);
