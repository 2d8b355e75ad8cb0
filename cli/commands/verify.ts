/** `signet verify IMAGE... [--namespace NS] [--cluster C]`: one decision per image. */
import { loadConfigFile } from '../../lib/config/load';
import { matchesAny } from '../../lib/core/glob';
import { parseReference, repositoryName } from '../../lib/core/reference';
import { createSignet } from '../../lib/signet';
import type { ImageDecision } from '../../lib/verification/decision';
import type { PolicySet } from '../../lib/verification/policies';
import type { VerifyScope } from '../../lib/verification/verifier';
import { printJson } from '../output';
import { EXIT } from '../spec';
import type { CommandContext } from './context';

/** A decision as `signet verify` prints it: with a hint when a flag would have changed it. */
export type VerifyResult = ImageDecision & { readonly hint?: string };

export async function verify(ctx: CommandContext): Promise<number> {
  const config = await loadConfigFile(ctx.configPath);
  const signet = createSignet(config, { logger: ctx.logger });
  const scope: VerifyScope = {
    namespace: ctx.flags.string('namespace'),
    cluster: ctx.flags.string('cluster'),
  };
  let results: VerifyResult[];
  try {
    // Each image within its own review deadline, all at once; identical work is shared.
    results = await Promise.all(
      ctx.args.map(async (image) => {
        const decision = await signet.verifier.verifyWithin(image, scope, 'IMAGE');
        const hint = scopeHint(signet.verifier.policies, decision, scope);
        return hint === undefined ? decision : { ...decision, hint };
      }),
    );
  } finally {
    signet.keys.close();
  }
  if (ctx.json) printJson(ctx.out, results.length === 1 ? results[0] : results);
  else ctx.out.write(results.map(decisionText).join('\n'));
  return results.every((r) => r.allowed) ? EXIT.ok : EXIT.failed;
}

/**
 * When no enabled policy selected the image in this scope but some cover the image elsewhere:
 * which namespaces (or clusters) they select, so the user sees the flag to pass.
 */
export function scopeHint(
  policies: PolicySet,
  decision: ImageDecision,
  scope: VerifyScope,
): string | undefined {
  if (decision.reason?.code !== 'NO_MATCHING_POLICY') return undefined;
  let name: string;
  try {
    name = repositoryName(parseReference(decision.image));
  } catch {
    return undefined;
  }
  const covering = policies.policies.filter((p) => matchesAny(p.images, name));
  if (covering.length === 0) return undefined;
  const cluster = scope.cluster ?? '';
  const namespace = scope.namespace ?? '';
  const inCluster = covering.filter((p) => matchesAny(p.clusters, cluster));
  if (inCluster.length > 0 && !inCluster.some((p) => matchesAny(p.namespaces, namespace))) {
    const namespaces = [...new Set(inCluster.flatMap((p) => p.policy.namespaces))];
    return `the policies covering ${name} select namespaces: ${namespaces.join(', ')}; pass --namespace`;
  }
  const clusters = [...new Set(covering.flatMap((p) => p.policy.clusters))];
  return `the policies covering ${name} select clusters: ${clusters.join(', ')}; pass --cluster`;
}

/** One decision for a terminal: verdict and image, then each policy and its witnesses. */
export function decisionText(decision: VerifyResult): string {
  const verdict = { allow: 'ALLOWED', warn: 'ALLOWED (warning)', deny: 'DENIED' }[decision.verdict];
  const lines = [`${verdict}  ${decision.image}`];
  const field = (name: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') lines.push(`  ${name.padEnd(10)} ${value}`);
  };
  field('digest', decision.digest);
  field('namespace', decision.namespace);
  field('cluster', decision.cluster);
  field('reason', decision.reason !== undefined ? decision.reason.code : undefined);
  field('message', decision.message);
  for (const warning of decision.warnings) field('warning', warning);
  field('hint', decision.hint);
  for (const policy of decision.policies) {
    const why = policy.reason !== undefined ? `: ${policy.reason.code}` : '';
    lines.push(
      `  policy ${policy.policy} (${policy.mode}): ${policy.effect}${why}${policy.cached ? ' (cached)' : ''}`,
    );
    policy.attestors.forEach((set, i) => {
      lines.push(
        `    attestors[${i}]: ${set.valid} valid of ${set.count} required${set.passed ? '' : ' (not met)'}`,
      );
      for (const witness of set.witnesses) {
        const detail = witness.valid
          ? 'valid'
          : `${witness.reason?.code ?? 'invalid'}: ${witness.reason?.message ?? ''}`;
        lines.push(`      ${witness.witness}: ${detail}`);
      }
    });
  }
  return `${lines.join('\n')}\n`;
}
