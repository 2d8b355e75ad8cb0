/**
 * What a push would take, decided without the network: which rules sign it, which digests (an
 * index's children for `recursive` rules), or why nothing will.
 */
import type { SigningRule, Trigger } from '../config/types';
import { isSignatureArtifactTag } from '../core/reference';
import { isSignatureArtifactType } from '../cosign/signature-manifest';
import type { PushEvent } from '../events/types';
import type { Descriptor, FetchedManifest } from '../registry/types';
import { isIndexMediaType } from '../registry/types';
import { triggers } from './conditions';
import { REGISTRY_NOT_CONFIGURED } from './report';
import type { RuleSet } from './rules';

/**
 * The rules that sign a push, or why nothing will. A signature pushed for a digest
 * (`sha256-<hex>.sig`) re-drives that digest for the countersigning rules (`redrive`): copy tools
 * push an image before its signatures, and the signature's arrival is what lets a `signedBy`
 * condition hold.
 */
export type PushPlan =
  | { readonly $case: 'sign'; readonly rules: readonly SigningRule[]; readonly redrive?: PushEvent }
  | { readonly $case: 'skip'; readonly reason: string };

/**
 * Signature artifacts and hosts outside `registries[]` are skipped, and so are repositories no
 * enabled rule of `trigger` covers. `ruleName` narrows to one rule (a manual sign) or to a set (a
 * backfill, which knows which rules still lack their witness's signature).
 */
export function planPush(
  rules: RuleSet,
  event: PushEvent,
  trigger: Trigger,
  ruleName?: string | readonly string[],
): PushPlan {
  if (isSignatureArtifactTag(event.tag)) return planSignaturePush(rules, event, trigger);
  if (isSignatureArtifactType(event.artifactType) || isSignatureArtifactType(event.mediaType)) {
    return { $case: 'skip', reason: `signature artifact type ${event.artifactType ?? event.mediaType}` };
  }
  // A host outside registries[] is never contacted, whatever the event says.
  if (!rules.isConfigured(event.registry)) return { $case: 'skip', reason: REGISTRY_NOT_CONFIGURED };
  const covering =
    typeof ruleName === 'object'
      ? rules.matching(event, trigger).filter((rule) => ruleName.includes(rule.name))
      : rules.matching(event, trigger, ruleName);
  if (covering.length === 0) return { $case: 'skip', reason: 'no signing rule covers this repository' };
  const deciding = covering.filter((rule) => triggers(rule, event.source));
  if (deciding.length === 0) {
    return {
      $case: 'skip',
      reason: `no signing rule covers this repository for a ${event.source} event (${describeTrigger(event.source)})`,
    };
  }
  return { $case: 'sign', rules: deciding };
}

/** A pushed `.sig`: the signed digest again, for the countersigning rules that cover it. */
function planSignaturePush(rules: RuleSet, event: PushEvent, trigger: Trigger): PushPlan {
  const skip: PushPlan = { $case: 'skip', reason: 'signature artifact tag' };
  const signed = /^sha256-([a-f0-9]{64})\.sig$/.exec(event.tag ?? '');
  if (signed === null || !rules.isConfigured(event.registry)) return skip;
  const countersigning = rules
    .matching(event, trigger)
    .filter((rule) => rule.conditions?.signedBy !== undefined && triggers(rule, event.source));
  if (countersigning.length === 0) return skip;
  const redrive: PushEvent = {
    ...event,
    digest: `sha256:${signed[1]}`,
    tag: undefined,
    mediaType: undefined,
    artifactType: undefined,
  };
  return { $case: 'sign', rules: countersigning, redrive };
}

/** Which rules an event of `source` decides, for the skip reason of an event that decides none. */
function describeTrigger(source: PushEvent['source']): string {
  switch (source) {
    case 'ecr':
      return 'rules with pushedBy are decided by the CloudTrail PutImage event';
    case 'cloudtrail':
      return 'it decides only rules with pushedBy';
    case 'scan':
      return 'it decides only rules with a scan condition and no pushedBy';
    case 'distribution':
    case 'harbor':
    case 'manual':
      return 'every rule';
  }
}

/**
 * The digests a push signs, each with its rules: the pushed manifest with every rule and, for an
 * index, each child manifest with the rules that are `recursive`.
 */
export function signingTargets(
  digest: string,
  fetched: FetchedManifest,
  rules: readonly SigningRule[],
): { subject: Descriptor; rules: SigningRule[] }[] {
  const root: Descriptor = { mediaType: fetched.mediaType, digest, size: fetched.bytes.length };
  const targets = new Map([[digest, { subject: root, rules: [...rules] }]]);
  const children =
    isIndexMediaType(fetched.mediaType) && 'manifests' in fetched.manifest ? fetched.manifest.manifests : [];
  for (const rule of rules.filter((r) => r.recursive)) {
    for (const child of children) {
      const target = targets.get(child.digest) ?? { subject: child, rules: [] };
      target.rules.push(rule);
      targets.set(child.digest, target);
    }
  }
  return [...targets.values()];
}
