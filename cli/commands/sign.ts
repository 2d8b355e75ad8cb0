/** `signet sign IMAGE [--rule NAME]`: signs an image already in the registry. */
import { loadConfigFile } from '../../lib/config/load';
import { parseReference } from '../../lib/core/reference';
import { ensureLocalKeys } from '../../lib/keys/provision';
import { reportFailed, type SigningReport } from '../../lib/signing/pipeline';
import { createSignet } from '../../lib/signet';
import { printJson, table } from '../output';
import { EXIT } from '../spec';
import type { CommandContext } from './context';

export async function sign(ctx: CommandContext): Promise<number> {
  const ref = parseReference(ctx.args[0] as string, 'IMAGE');
  const config = await loadConfigFile(ctx.configPath);
  await ensureLocalKeys(config, ctx.logger);
  const signet = createSignet(config, { logger: ctx.logger });
  let report: SigningReport;
  try {
    report = await signet.pipeline.signImage(ref, ctx.flags.string('rule'));
  } finally {
    signet.keys.close();
  }
  if (ctx.json) printJson(ctx.out, report);
  else ctx.out.write(signReport(report));
  return signExitCode(report);
}

/** 1 when a rule failed, 3 when nothing was attempted, else 0. */
export function signExitCode(report: SigningReport): number {
  if (reportFailed(report)) return EXIT.failed;
  if (report.skipped !== undefined) return EXIT.nothingToDo;
  return EXIT.ok;
}

/** The report for a terminal: the image, then one row per rule and digest. */
export function signReport(report: SigningReport): string {
  if (report.skipped !== undefined) return `nothing to do for ${report.image}: ${report.skipped}\n`;
  const failed = reportFailed(report);
  const rows = report.outcomes.map((o) => [
    o.rule,
    o.witness,
    o.status,
    o.digest === report.digest ? '' : o.digest,
    o.status === 'failed' ? `${o.errorCode ?? 'INTERNAL'}: ${o.error ?? ''}` : o.signatureRef,
  ]);
  const children = rows.some((r) => r[3] !== '');
  const header = ['RULE', 'WITNESS', 'STATUS', ...(children ? ['CHILD'] : []), 'SIGNATURE / ERROR'];
  const body = rows.map((r) => (children ? r : [r[0], r[1], r[2], r[4]]) as string[]);
  return `${failed ? 'FAILED' : 'SIGNED'}  ${report.image}\n${table(header, body)}`;
}
