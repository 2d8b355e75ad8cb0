/**
 * The checks between a push and its signatures that cost more than the event: a rule's
 * conditions on one digest (cheapest first), the scan result of an image already in the registry,
 * and, for a re-driven digest, the witnesses that already vouch for it.
 */
import type { SigningRule } from '../config/types';
import { signatureTag } from '../core/reference';
import type { PushEvent } from '../events/types';
import type { KeyRing } from '../keys/keyring';
import type { RegistryClient } from '../registry/types';
import {
  CONDITION_ANNOTATIONS,
  CONDITION_UNAVAILABLE,
  countersignAnnotation,
  evaluateLocal,
  type ConditionChecker,
  type Evaluation,
  type PushContext,
} from './conditions';
import { signedWitnesses } from './presence';
import { ruleOutcome, type RuleOutcome } from './report';

/** Finds the scan result of an image already in the registry (`signet sign`, backfill). */
export interface ScanLookup {
  scanResult(registry: string, repository: string, digest: string): Promise<PushContext['scan']>;
}

export interface ConditionGateDeps {
  readonly keys: KeyRing;
  /** Checks `signedBy` conditions (another witness's signature); without it they fail. */
  readonly conditions?: ConditionChecker;
  /** Where a manual sign finds scan results (registry scanners); without it they are unavailable. */
  readonly scans?: ScanLookup;
  /** Epoch ms (scan waits); tests pass a fake. */
  readonly clock?: () => number;
}

export class ConditionGate {
  constructor(private readonly deps: ConditionGateDeps) {}

  /**
   * One rule's conditions on one digest: the pusher and the scan result are in hand; another
   * witness's signature costs registry reads, so it is checked last and only when everything
   * else allows.
   */
  async evaluate(
    rule: SigningRule,
    event: PushEvent,
    digest: string,
    context: PushContext,
  ): Promise<Evaluation> {
    const local = evaluateLocal(rule, event, context, (this.deps.clock ?? Date.now)());
    const signedBy = rule.conditions?.signedBy;
    if (local.$case !== 'held' || signedBy === undefined) return local;
    const checker = this.deps.conditions;
    if (checker === undefined) {
      return { $case: 'error', code: 'INTERNAL', detail: 'no condition checker is wired for signedBy' };
    }
    const verdict = await checker.countersigned({
      registry: event.registry,
      repository: event.repository,
      digest,
      tag: event.tag,
      witnesses: signedBy,
      identity: rule.conditions?.signedIdentity ?? { type: 'matchRepository' },
    });
    switch (verdict.$case) {
      case 'held':
        return {
          $case: 'held',
          annotations: {
            ...local.annotations,
            [CONDITION_ANNOTATIONS.countersigns]: countersignAnnotation(verdict),
          },
        };
      case 'unmet':
        return {
          $case: 'unmet',
          unmet: {
            condition: 'signedBy',
            reason: 'NOT_COUNTERSIGNED',
            detail: `${verdict.code}: ${verdict.detail}`,
          },
        };
      case 'error':
        return { $case: 'error', code: CONDITION_UNAVAILABLE, detail: `${verdict.code}: ${verdict.detail}` };
    }
  }

  /**
   * The context with the scan result filled in for a manual sign whose rules need one: a push
   * waits for its scan's event, an image already in the registry asks the registry's scanner.
   */
  async withScan(
    event: PushEvent,
    rules: readonly SigningRule[],
    context: PushContext,
  ): Promise<PushContext> {
    const lookup = this.deps.scans;
    if (context.scan !== undefined || event.source !== 'manual' || lookup === undefined) return context;
    if (!rules.some((rule) => rule.conditions?.scan !== undefined)) return context;
    const scan = await lookup.scanResult(event.registry, event.repository, event.digest);
    return scan === undefined ? context : { ...context, scan };
  }

  /** The rules whose witness already has a valid signature for the digest, as `already-signed`. */
  async alreadySigned(
    client: RegistryClient,
    event: PushEvent,
    rules: readonly SigningRule[],
  ): Promise<RuleOutcome[]> {
    const probes = await Promise.all(
      rules.map(async (rule) => ({
        witness: rule.witness,
        publicKey: await this.deps.keys.get(rule.witness).publicKey(),
      })),
    );
    const present = await signedWitnesses(client, event.repository, event.digest, probes);
    const signatureRef = `${event.registry}/${event.repository}:${signatureTag(event.digest)}`;
    return rules
      .filter((rule) => present.has(rule.witness))
      .map((rule) => ruleOutcome(rule, event.digest, signatureRef, undefined, 'already-signed'));
  }
}
