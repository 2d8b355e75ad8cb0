/**
 * The configuration as the AWS edges run it (the sign Lambda, and `signet replay`, which
 * re-delivers the sign Lambda's dead letters): signing rules whose witness is not a KMS key are
 * left out.
 */
import type { SignetConfig, SigningRule } from './types';

/** A signing rule the Lambda cannot run, and why. */
export interface UnusableRule {
  readonly rule: string;
  readonly witness: string;
  readonly reason: string;
}

/**
 * The configuration as the sign Lambda runs it: rules whose witness is not an AWS KMS key are
 * left out. A `file://` private key lives on the developer's machine, not in the function (and
 * private keys never go into SSM), so those rules stay with `signet serve`; the construct warns
 * about each of them at synth time, and a replay must sign exactly what the Lambda would have.
 */
export function kmsSigningOnly(config: SignetConfig): { config: SignetConfig; unusable: UnusableRule[] } {
  const kind = new Map(config.witnesses.map((w) => [w.name, w.key.$case]));
  const usable: SigningRule[] = [];
  const unusable: UnusableRule[] = [];
  for (const rule of config.signingRules) {
    const keyKind = kind.get(rule.witness);
    if (keyKind === 'kms') usable.push(rule);
    else
      unusable.push({
        rule: rule.name,
        witness: rule.witness,
        reason: `witness "${rule.witness}" has a ${keyKind ?? 'missing'} key; the sign Lambda signs with AWS KMS keys only`,
      });
  }
  return { config: { ...config, signingRules: usable }, unusable };
}
