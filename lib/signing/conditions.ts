/**
 * A signing rule's `conditions`: who pushed (`pushedBy`), what the vulnerability scan found
 * (`scan`), and whether a trusted witness already signed the digest (`signedBy`, countersigning).
 * Each is decided for one rule and one digest into held (with the facts that held, written into
 * the payload's `optional` section so a verifier sees why it was signed), unmet (nothing is
 * signed; an `Image Not Signed` names the rule and the reason), or waiting (the scan has not
 * arrived yet).
 *
 * `signedBy` needs signature verification, which `lib/signing` must not import: it asks a
 * `ConditionChecker`, which the composition root (`lib/signet.ts`) implements with the verifier.
 */
import type { ScanCondition, Severity, SignedIdentity, SigningRule } from '../config/types';
import { compileGlob, type Glob } from '../core/glob';
import type { PushEvent, PushEventSource, ScanEvent, ScanResult } from '../events/types';

/** The payload `optional` keys that record which conditions held. */
export const CONDITION_ANNOTATIONS = {
  pushedBy: 'signet.dev/pushed-by',
  scan: 'signet.dev/scan',
  countersigns: 'signet.dev/countersigns',
} as const;

/** A condition of a signing rule. */
export type ConditionName = 'pushedBy' | 'scan' | 'signedBy';

/** Why a condition did not hold (fixed codes: events, logs and metrics name them). */
export type UnmetReason =
  /** The event names no pusher (a registry without authentication, a manual or backfill sign). */
  | 'PUSHER_UNKNOWN'
  /** The pusher matches none of the rule's `pushedBy` globs. */
  | 'PUSHER_NOT_ALLOWED'
  /** No scan result yet; the push waits for it (not final). */
  | 'SCAN_PENDING'
  /** No scan result arrived within `scan.waitSeconds`. */
  | 'SCAN_TIMEOUT'
  /** The scanner ran and failed: there is no result to judge. */
  | 'SCAN_FAILED'
  /** The scan found vulnerabilities above `scan.maxSeverity`. */
  | 'SCAN_FINDINGS'
  /** A manual or backfill sign found no scan result to judge (and cannot wait for one). */
  | 'SCAN_UNAVAILABLE'
  /** None of the `signedBy` witnesses has a valid signature for the digest. */
  | 'NOT_COUNTERSIGNED';

/** A condition that did not hold, and why. */
export interface UnmetCondition {
  readonly condition: ConditionName;
  readonly reason: UnmetReason;
  readonly detail: string;
}

/** What the pipeline asks about the signatures already on a digest (`signedBy`). */
export interface CountersignRequest {
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  readonly tag: string | undefined;
  /** Any one of them suffices. */
  readonly witnesses: readonly string[];
  /** How the signature's identity must relate to `registry/repository`. */
  readonly identity: SignedIdentity;
}

/** The answer to a `CountersignRequest`. */
export type CountersignVerdict =
  /** `witness` signed; `identity` is what its signature names, `signature` its payload digest. */
  | {
      readonly $case: 'held';
      readonly witness: string;
      readonly identity: string | undefined;
      readonly signature: string;
    }
  /** No listed witness has a valid signature; `code` is the verifier's reason. */
  | { readonly $case: 'unmet'; readonly code: string; readonly detail: string }
  /** The registry or a key could not be read: try again later. */
  | { readonly $case: 'error'; readonly code: string; readonly detail: string };

/** Checks conditions that need verification; implemented above `lib/signing` (see `lib/signet.ts`). */
export interface ConditionChecker {
  countersigned(request: CountersignRequest): Promise<CountersignVerdict>;
}

/** What is known about a push besides its event. */
export interface PushContext {
  /** The scan result of the pushed digest, when one arrived. */
  readonly scan?: ScanResult;
  /** When the push was first seen (epoch ms); a scan wait counts from here (default: now). */
  readonly firstSeenAt?: number;
}

/** One rule's conditions on one digest. */
export type Evaluation =
  /** Everything held; `annotations` record what did, for the payload. */
  | { readonly $case: 'held'; readonly annotations: Readonly<Record<string, string>> }
  | { readonly $case: 'unmet'; readonly unmet: UnmetCondition }
  /** The scan has not arrived; the push is decided again at `until` (epoch ms) or when it does. */
  | { readonly $case: 'waiting'; readonly unmet: UnmetCondition; readonly until: number }
  /** A check could not be made (registry or key unavailable): a transient failure. */
  | { readonly $case: 'error'; readonly code: string; readonly detail: string };

/** The code of a rule outcome whose condition check could not be made; transient. */
export const CONDITION_UNAVAILABLE = 'CONDITION_UNAVAILABLE';

/**
 * Whether an event of `source` decides `rule`. An ECR push event names no pusher, so rules with
 * `pushedBy` are decided by CloudTrail's record of the same push instead; that record decides only
 * them. A scan result re-drives the rules that wait for scans, except those also needing the
 * pusher, which the push itself (waiting in the journal) carries.
 */
export function triggers(rule: SigningRule, source: PushEventSource): boolean {
  const conditions = rule.conditions;
  switch (source) {
    case 'ecr':
      return conditions?.pushedBy === undefined;
    case 'cloudtrail':
      return conditions?.pushedBy !== undefined;
    case 'scan':
      return conditions?.scan !== undefined && conditions.pushedBy === undefined;
    case 'distribution':
    case 'harbor':
    case 'manual':
      return true;
  }
}

/** The push a scan result re-drives: the scanned digest, under the first tag the scanner names. */
export function pushOfScan(scan: ScanEvent): PushEvent {
  return {
    registry: scan.registry,
    repository: scan.repository,
    digest: scan.digest,
    tag: scan.tags[0],
    mediaType: undefined,
    artifactType: undefined,
    source: 'scan',
    id: scan.id,
  };
}

/**
 * Decides the conditions that need no network (`pushedBy`, `scan`), first for every rule: a rule
 * they already refuse never costs a signature read. `now` is epoch ms.
 */
export function evaluateLocal(
  rule: SigningRule,
  event: PushEvent,
  context: PushContext,
  now: number,
): Evaluation {
  const conditions = rule.conditions;
  const annotations: Record<string, string> = {};
  if (conditions === undefined) return { $case: 'held', annotations };
  if (conditions.pushedBy !== undefined) {
    const pusher = event.pushedBy;
    if (pusher === undefined || pusher === '') {
      return unmet('pushedBy', 'PUSHER_UNKNOWN', `the ${event.source} event names no pusher`);
    }
    if (!conditions.pushedBy.some((glob) => compiled(glob).test(pusher))) {
      return unmet(
        'pushedBy',
        'PUSHER_NOT_ALLOWED',
        `pushed by "${pusher}", which matches none of ${conditions.pushedBy.map((g) => `"${g}"`).join(', ')}`,
      );
    }
    annotations[CONDITION_ANNOTATIONS.pushedBy] = pusher;
  }
  if (conditions.scan !== undefined) {
    const scan = evaluateScan(conditions.scan, event, context, now);
    if (scan.$case !== 'held') return scan;
    Object.assign(annotations, scan.annotations);
  }
  return { $case: 'held', annotations };
}

/** Severities from lowest to highest. */
const SEVERITIES: readonly Severity[] = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];

function evaluateScan(
  condition: ScanCondition,
  event: PushEvent,
  context: PushContext,
  now: number,
): Evaluation {
  const scan = context.scan;
  if (scan === undefined) {
    if (event.source === 'manual') {
      return unmet('scan', 'SCAN_UNAVAILABLE', 'no scan result is known for this digest');
    }
    const until = (context.firstSeenAt ?? now) + condition.waitSeconds * 1000;
    if (now >= until) {
      return unmet(
        'scan',
        'SCAN_TIMEOUT',
        `no scan result arrived within ${condition.waitSeconds} s of the push`,
      );
    }
    return {
      $case: 'waiting',
      unmet: { condition: 'scan', reason: 'SCAN_PENDING', detail: 'waiting for the scan result' },
      until,
    };
  }
  switch (scan.$case) {
    case 'failed':
      return unmet('scan', 'SCAN_FAILED', scan.detail);
    case 'complete': {
      const limit = SEVERITIES.indexOf(condition.maxSeverity);
      const above = SEVERITIES.slice(limit + 1).filter((s) => scan.counts[s] > 0);
      const total = above.reduce((n, s) => n + scan.counts[s], 0);
      // Fixability is reported for all findings together: only "none is fixable" can waive them.
      const waived = condition.ignoreUnfixed && scan.fixable === 0;
      if (total > 0 && !waived) {
        return unmet(
          'scan',
          'SCAN_FINDINGS',
          `${scan.scanner} found ${above.map((s) => `${scan.counts[s]} ${s}`).join(', ')} above maxSeverity ${condition.maxSeverity}` +
            (condition.ignoreUnfixed
              ? ` (${scan.fixable === undefined ? 'the scanner does not say which are fixable' : `${scan.fixable} fixable`})`
              : ''),
        );
      }
      const { CRITICAL, HIGH, MEDIUM, LOW } = scan.counts;
      const fixable = condition.ignoreUnfixed ? ` ignoreUnfixed fixable=${scan.fixable ?? 'unknown'}` : '';
      return {
        $case: 'held',
        annotations: {
          [CONDITION_ANNOTATIONS.scan]:
            `${scan.scanner} critical=${CRITICAL} high=${HIGH} medium=${MEDIUM} low=${LOW} ` +
            `maxSeverity=${condition.maxSeverity}${fixable}`,
        },
      };
    }
  }
}

/** The payload record of a countersignature: who signed before, for which identity, which payload. */
export function countersignAnnotation(verdict: Extract<CountersignVerdict, { $case: 'held' }>): string {
  return `witness=${verdict.witness} identity=${verdict.identity ?? '-'} signature=${verdict.signature}`;
}

// Globs come from the configuration: a handful, compiled once each.
const globs = new Map<string, Glob>();
function compiled(pattern: string): Glob {
  let glob = globs.get(pattern);
  if (glob === undefined) {
    glob = compileGlob(pattern);
    globs.set(pattern, glob);
  }
  return glob;
}

const unmet = (condition: ConditionName, reason: UnmetReason, detail: string): Evaluation => ({
  $case: 'unmet',
  unmet: { condition, reason, detail },
});
