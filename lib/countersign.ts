/**
 * `signedBy` conditions answered by the verifier: signing (`lib/signing`) may not import
 * verification, so this composition layer, next to `lib/signet.ts`, builds for each set of
 * countersigned witnesses a one-off policy (those witnesses, any one of them, the rule's
 * `signedIdentity`) and asks an `ImageVerifier` about the pushed digest: exactly the check
 * admission would make, cosign signatures and Sigstore bundles alike.
 */
import type { AdmissionSettings, Policy, SignetConfig } from './config/types';
import { describeError } from './core/errors';
import type { Logger } from './core/logger';
import type { RegistryClientFactory } from './registry/types';
import type { ConditionChecker, CountersignRequest, CountersignVerdict } from './signing/conditions';
import { isOperationalFailure } from './verification/reasons';
import { ImageVerifier } from './verification/verifier';
import type { WitnessKeys } from './verification/witness-check';

/** What the checker verifies with: the configuration's witnesses and admission bounds, the clients, the keys. */
export interface VerifierConditionCheckerDeps {
  readonly config: Pick<SignetConfig, 'witnesses' | 'admission'>;
  readonly registries: RegistryClientFactory;
  readonly keys: WitnessKeys;
  readonly logger?: Logger;
}

/** Answers `signedBy` with `ImageVerifier`, one verifier per (witnesses, signed identity). */
export class VerifierConditionChecker implements ConditionChecker {
  private readonly verifiers = new Map<string, ImageVerifier>();
  private readonly admission: AdmissionSettings;

  constructor(private readonly deps: VerifierConditionCheckerDeps) {
    // Signing asks once per push: a cached positive result would outlive a revoked key for nothing.
    this.admission = { ...deps.config.admission, cacheTtlSeconds: 0, excludeNamespaces: [] };
  }

  async countersigned(request: CountersignRequest): Promise<CountersignVerdict> {
    const image = `${request.registry}/${request.repository}@${request.digest}`;
    let verdict;
    try {
      const decision = await this.verifier(request).verify(image, {}, 'image');
      verdict = decision.policies[0];
      if (verdict === undefined) {
        return { $case: 'error', code: decision.reason?.code ?? 'INTERNAL', detail: decision.message };
      }
    } catch (error) {
      return { $case: 'error', code: 'INTERNAL', detail: describeError(error) };
    }
    if (verdict.verified) {
      // The first listed witness whose signature verified: the same answer for the same registry state.
      const valid = request.witnesses
        .map((name) => verdict.attestors[0]?.witnesses.find((w) => w.witness === name && w.valid))
        .find((w) => w !== undefined);
      if (valid?.signature !== undefined) {
        return {
          $case: 'held',
          witness: valid.witness,
          identity: valid.signature.identity,
          signature: valid.signature.id,
        };
      }
    }
    const reason = verdict.reason;
    if (reason === undefined) return { $case: 'unmet', code: 'NOT_VERIFIED', detail: 'no witness verified' };
    if (isOperationalFailure(reason)) return { $case: 'error', code: reason.code, detail: reason.message };
    return { $case: 'unmet', code: reason.code, detail: reason.message };
  }

  private verifier(request: CountersignRequest): ImageVerifier {
    const key = JSON.stringify([request.witnesses, request.identity]);
    let verifier = this.verifiers.get(key);
    if (verifier === undefined) {
      const policy: Policy = {
        name: `signedBy ${request.witnesses.join(',')}`,
        enabled: true,
        clusters: ['*'],
        namespaces: ['*'],
        // The pipeline asks only about pushes on configured registries; the policy need not bound hosts.
        images: ['**'],
        attestors: [{ witnesses: request.witnesses, count: 1 }],
        mode: 'enforce',
        mutateDigest: false,
        failurePolicy: 'deny',
        signedIdentity: request.identity,
      };
      verifier = new ImageVerifier({
        config: { policies: [policy], witnesses: this.deps.config.witnesses, admission: this.admission },
        registries: this.deps.registries,
        keys: this.deps.keys,
        ...(this.deps.logger !== undefined ? { logger: this.deps.logger } : {}),
      });
      this.verifiers.set(key, verifier);
    }
    return verifier;
  }
}
