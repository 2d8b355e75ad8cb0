/**
 * Replaying the sign function's dead letters (`signet replay`): the original ECR event of each
 * message (a push, or a scan result that decides a push) runs through the same `SigningPipeline` again, and the message may leave the queue only
 * once nothing is left to sign for it. Planning reads the message without the network;
 * `replayPlan` then signs.
 */
import { InputError } from '../core/errors';
import { originalEvent } from '../events/dead-letter';
import { parseEcrEvent } from '../events/ecr';
import type { PushEvent, ScanEvent } from '../events/types';
import { pushOfScan } from './conditions';
import type { SigningPipeline } from './pipeline';
import { reportFailed, type SigningReport } from './report';
import type { RuleSet } from './rules';

/** What one dead letter asks for, decided from its body and the rules alone. */
export type ReplayPlan =
  /** Not a dead letter Signet can read: no JSON, or not an `ECR Image Action` event. */
  | { readonly $case: 'invalid'; readonly field: string; readonly message: string }
  /** A well-formed event that carries nothing to sign (a delete, a failed push, a schema 1 manifest). */
  | { readonly $case: 'nothing-to-sign'; readonly reasons: readonly string[] }
  /** No enabled automatic rule of this configuration covers the image. */
  | { readonly $case: 'unmatched'; readonly images: readonly string[] }
  | {
      readonly $case: 'sign';
      readonly pushes: readonly PushEvent[];
      /** Scan results (`ECR Image Scan`, `Inspector2 Scan`): they decide the scanned push's rules. */
      readonly scans: readonly ScanEvent[];
      readonly rules: readonly string[];
      /** The original event's `time`: a scan wait counts from it, not from the replay. */
      readonly pushedAt: number | undefined;
    };

/** What replaying one dead letter came to. */
export type ReplayResult =
  | Exclude<ReplayPlan, { $case: 'sign' }>
  /** Every rule's signature is in the registry (now, or already), or the image is gone. */
  | { readonly $case: 'signed'; readonly reports: readonly SigningReport[] }
  /** At least one rule failed again. */
  | { readonly $case: 'failed'; readonly reports: readonly SigningReport[] };

/** How to read dead letters. */
export interface ReplayOptions {
  /** The rules the sign function runs (`kmsSigningOnly` of the configuration). */
  readonly rules: RuleSet;
  /** The sign function's `SIGNET_ECR_REGISTRY_HOST`: the host written instead of the ECR one. */
  readonly registryHost?: string;
}

/** Reads one message body. Never throws for bad input: that is the `invalid` plan. */
export function planReplay(body: string, options: ReplayOptions): ReplayPlan {
  let original: unknown;
  let parsed: ReturnType<typeof parseEcrEvent>;
  try {
    original = originalEvent(body);
    parsed = parseEcrEvent(original);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    return { $case: 'invalid', field: error.field, message: error.message };
  }
  const host = options.registryHost;
  const rehost = <E extends { readonly registry: string }>(e: E): E =>
    host === undefined ? e : { ...e, registry: host };
  const pushes = parsed.events.map(rehost);
  const scans = (parsed.scans ?? []).map(rehost);
  if (pushes.length === 0 && scans.length === 0) {
    return { $case: 'nothing-to-sign', reasons: parsed.ignored.map((i) => i.reason) };
  }
  const decided = [...pushes, ...scans.map(pushOfScan)];
  const rules = [
    ...new Set(decided.flatMap((e) => options.rules.matching(e, 'automatic').map((r) => r.name))),
  ];
  if (rules.length === 0) {
    return { $case: 'unmatched', images: decided.map((e) => `${e.registry}/${e.repository}@${e.digest}`) };
  }
  const time = (original as { time?: unknown }).time;
  const pushedAt = typeof time === 'string' ? Date.parse(time) : Number.NaN;
  return {
    $case: 'sign',
    pushes,
    scans,
    rules,
    pushedAt: Number.isFinite(pushedAt) ? pushedAt : undefined,
  };
}

/** Carries out a plan: signs what it asks for with the pipeline the sign function runs. */
export async function replayPlan(plan: ReplayPlan, pipeline: SigningPipeline): Promise<ReplayResult> {
  switch (plan.$case) {
    case 'invalid':
    case 'nothing-to-sign':
    case 'unmatched':
      return plan;
    case 'sign': {
      const reports: SigningReport[] = [];
      const context = plan.pushedAt === undefined ? {} : { firstSeenAt: plan.pushedAt };
      for (const push of plan.pushes) reports.push(await pipeline.handlePush(push, context));
      for (const scan of plan.scans) reports.push(await pipeline.handleScan(scan));
      return { $case: reports.some(reportFailed) ? 'failed' : 'signed', reports };
    }
  }
}

/**
 * True when the message may be deleted: its image is signed by every rule (a pipeline skip, such
 * as a manifest deleted since, leaves nothing to sign either), or the event itself carries nothing
 * to sign. Unreadable messages, failures and images no rule covers stay for a person to look at:
 * deleting them would lose the only record of an unsigned push.
 */
export function isSettled(result: ReplayResult): boolean {
  switch (result.$case) {
    case 'signed':
    case 'nothing-to-sign':
      return true;
    case 'failed':
    case 'invalid':
    case 'unmatched':
      return false;
  }
}
