/** One rule made ready to sign one digest: its witness key, signer and deterministic payload. */
import type { SigningRule } from '../config/types';
import { proofAnnotations } from '../cosign/log-evidence';
import { buildPayload, PAYLOAD_ANNOTATIONS } from '../cosign/payload';
import type { PushEvent } from '../events/types';
import type { KeyRing } from '../keys/keyring';
import type { WitnessKey } from '../keys/types';
import type { WitnessServices } from '../transparency';
import type { SignatureCandidate } from './publisher';

/** One rule at work on one digest: the rule, its witness key and signer, and what it signs. */
export interface RuleWork {
  readonly rule: SigningRule;
  readonly key: WitnessKey;
  readonly keyId: string;
  readonly candidate: SignatureCandidate;
  /** The witness's transparency log and timestamp authority; undefined when it has neither. */
  readonly services?: WitnessServices;
}

/** A rule ready to sign, or the reason it cannot (its key is unusable, its algorithm does not fit). */
export type Prepared =
  | { readonly $case: 'ready'; readonly work: RuleWork }
  | { readonly $case: 'failed'; readonly rule: SigningRule; readonly error: unknown };

/** The rule's key, signer and payload for `digest`, or why the rule cannot sign. */
export async function prepareRule(
  keys: KeyRing,
  rule: SigningRule,
  event: PushEvent,
  digest: string,
  conditions: Readonly<Record<string, string>>,
  services?: WitnessServices,
): Promise<Prepared> {
  try {
    const key = keys.get(rule.witness);
    const [signer, publicKey, keyId] = await Promise.all([
      key.signer(rule.algorithm),
      key.publicKey(),
      key.keyId(),
    ]);
    const payload = rulePayload(rule, event.registry, event.repository, digest, event.tag, conditions, keyId);
    const candidate: SignatureCandidate = {
      id: rule.name,
      payload,
      publicKey,
      algorithm: rule.algorithm,
      sign: async (data) => (await signer.sign(data)).signature,
      ...(services === undefined
        ? {}
        : {
            prove: async (signature: Buffer) =>
              proofAnnotations(await services.proveMessage(payload, signature, publicKey, rule.algorithm)),
            requiredAnnotations: services.requiredAnnotations,
          }),
    };
    return {
      $case: 'ready',
      work: { rule, key, keyId, candidate, ...(services === undefined ? {} : { services }) },
    };
  } catch (error) {
    return { $case: 'failed', rule, error };
  }
}

/**
 * The deterministic payload of one rule for one digest: the same inputs, the same bytes. The
 * tag is signed in `default` mode only; `conditions` are the facts that held (`optional`).
 */
export function rulePayload(
  rule: SigningRule,
  registry: string,
  repository: string,
  digest: string,
  tag: string | undefined,
  conditions: Readonly<Record<string, string>>,
  keyId: string,
): Buffer {
  return buildPayload({
    registry,
    repository,
    digest,
    tag: rule.signatureType === 'default' ? tag : undefined,
    annotations: {
      ...rule.annotations,
      ...conditions,
      [PAYLOAD_ANNOTATIONS.rule]: rule.name,
      [PAYLOAD_ANNOTATIONS.witness]: rule.witness,
      [PAYLOAD_ANNOTATIONS.keyId]: keyId,
    },
  });
}
