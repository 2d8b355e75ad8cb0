/**
 * What signing a push produced: one outcome per (rule, digest), the report of the whole push, and
 * how a report is logged. Everything that reads a signing result (the journal, the ledger, the
 * status page, metrics, the Lambda) depends on this file, not on the pipeline that fills it.
 */
import type { SigningRule } from '../config/types';
import { describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { UnmetCondition } from './conditions';

/** What happened for one (rule, digest) pair. */
export interface RuleOutcome {
  readonly rule: string;
  readonly witness: string;
  readonly algorithm: string;
  readonly signatureType: string;
  readonly digest: string;
  /**
   * `not-signed`: a condition of the rule did not hold (`unmet` says which and why);
   * `waiting`: its scan result has not arrived (decided again at `waitUntil` or when it does).
   */
  readonly status: 'signed' | 'already-signed' | 'failed' | 'not-signed' | 'waiting';
  /** Where the signature lives: `registry/repository:sha256-<hex>.sig`. */
  readonly signatureRef: string;
  readonly keyId: string | undefined;
  /** For a rule with `bundle: true`: whether its Sigstore bundle was written now or found. */
  readonly bundle?: 'written' | 'present';
  /** Where a bundle written now lives: `registry/repository@<referrer manifest digest>`. */
  readonly bundleRef?: string;
  readonly error?: string;
  readonly errorCode?: string;
  /** For `not-signed` and `waiting`: the condition that did not hold. */
  readonly unmet?: UnmetCondition;
  /** For `waiting`: when the scan wait ends (epoch ms). */
  readonly waitUntil?: number;
}

/** The whole result of handling one push (or one manual sign). */
export interface SigningReport {
  /** `registry/repository[:tag]@digest` */
  readonly image: string;
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  readonly tag: string | undefined;
  /** Set when nothing was attempted, with the reason. */
  readonly skipped: string | undefined;
  readonly outcomes: readonly RuleOutcome[];
  readonly durationMs: number;
}

/** The `skipped` reason for a digest the registry does not (or no longer) hold. */
export const MANIFEST_GONE = 'manifest no longer exists';

/** The `skipped` reason of a push naming a registry host that `registries[]` does not list. */
export const REGISTRY_NOT_CONFIGURED = 'registry not configured';

export const reportFailed = (report: SigningReport): boolean =>
  report.outcomes.some((o) => o.status === 'failed');

/** The outcomes of rules whose conditions did not hold (each an `Image Not Signed`). */
export const notSigned = (report: SigningReport): RuleOutcome[] =>
  report.outcomes.filter((o) => o.status === 'not-signed');

/** `error` and `errorCode` of an outcome from whatever was thrown (`INTERNAL` without a code). */
export function errorFields(error: unknown): { error: string; errorCode: string } {
  const code = (error as { code?: unknown } | undefined)?.code;
  return { error: describeError(error), errorCode: typeof code === 'string' ? code : 'INTERNAL' };
}

/** One rule's outcome on one digest. */
export function ruleOutcome(
  rule: SigningRule,
  digest: string,
  signatureRef: string,
  keyId: string | undefined,
  status: RuleOutcome['status'],
  error?: unknown,
): RuleOutcome {
  return {
    rule: rule.name,
    witness: rule.witness,
    algorithm: rule.algorithm,
    signatureType: rule.signatureType,
    digest,
    status,
    signatureRef,
    keyId,
    ...(error !== undefined ? errorFields(error) : {}),
  };
}

/** One log line per outcome, at the level its status deserves. */
export function logReport(logger: Logger, report: SigningReport): void {
  for (const outcome of report.outcomes) {
    const fields = {
      image: report.image,
      rule: outcome.rule,
      witness: outcome.witness,
      digest: outcome.digest,
      outcome: outcome.status,
      durationMs: Math.round(report.durationMs),
      ...(outcome.error !== undefined ? { cause: outcome.error, code: outcome.errorCode } : {}),
      ...(outcome.unmet !== undefined ? { ...outcome.unmet } : {}),
    };
    switch (outcome.status) {
      case 'failed':
        logger.error('signing failed', fields);
        break;
      case 'not-signed':
        logger.warn('image not signed', fields);
        break;
      case 'waiting':
        logger.info('waiting for the scan result', {
          ...fields,
          until: new Date(outcome.waitUntil ?? 0).toISOString(),
        });
        break;
      case 'signed':
      case 'already-signed':
        logger.info(outcome.status === 'signed' ? 'image signed' : 'already signed', fields);
        break;
    }
  }
}
