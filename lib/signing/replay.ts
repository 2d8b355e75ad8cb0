/**
 * Replaying the sign function's dead letters (`signet replay`): the original ECR event of each
 * message runs through the same `SigningPipeline` again, and the message may leave the queue only
 * once nothing is left to sign for it. Planning reads the message without the network;
 * `replayPlan` then signs.
 */
import { InputError } from '../core/errors';
import { originalEvent } from '../events/dead-letter';
import { parseEcrEvent } from '../events/ecr';
import type { PushEvent } from '../events/types';
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
  | { readonly $case: 'sign'; readonly pushes: readonly PushEvent[]; readonly rules: readonly string[] };

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
  let pushes: readonly PushEvent[];
  let ignored: readonly { readonly reason: string }[];
  try {
    ({ events: pushes, ignored } = parseEcrEvent(originalEvent(body)));
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    return { $case: 'invalid', field: error.field, message: error.message };
  }
  if (pushes.length === 0) return { $case: 'nothing-to-sign', reasons: ignored.map((i) => i.reason) };
  const host = options.registryHost;
  const events = host === undefined ? pushes : pushes.map((push) => ({ ...push, registry: host }));
  const rules = [
    ...new Set(events.flatMap((e) => options.rules.matching(e, 'automatic').map((r) => r.name))),
  ];
  if (rules.length === 0) {
    return { $case: 'unmatched', images: events.map((e) => `${e.registry}/${e.repository}@${e.digest}`) };
  }
  return { $case: 'sign', pushes: events, rules };
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
      for (const push of plan.pushes) reports.push(await pipeline.handlePush(push));
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
