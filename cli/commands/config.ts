/** `signet config check [FILE]`: validate a configuration, check its rules against their keys, advise. */
import * as path from 'node:path';
import { checkConfig } from '../../lib/config/check';
import { loadConfigFile } from '../../lib/config/load';
import type { SignetConfig } from '../../lib/config/types';
import { ConfigError } from '../../lib/core/errors';
import { inspectKeys } from '../../lib/keys/preflight';
import { createSignet } from '../../lib/signet';
import { formatIssues, invalidConfigText, locateIssues, printJson, type LocatedIssue } from '../output';
import { EXIT } from '../spec';
import type { CommandContext } from './context';

/** What `signet config check --json` prints. */
export interface ConfigCheckResult {
  readonly file: string;
  readonly valid: boolean;
  /** How many of each section the configuration has (when it loaded). */
  readonly summary?: { registries: number; witnesses: number; signingRules: number; policies: number };
  /** Each problem with its line in the file. */
  readonly issues: readonly LocatedIssue[];
  readonly warnings: readonly string[];
  /** Keys that could not be checked now (a key file still to be generated, KMS unreachable). */
  readonly unchecked: readonly { readonly witness: string; readonly reason: string }[];
}

export async function configCheck(ctx: CommandContext): Promise<number> {
  const file = ctx.args[0] ?? ctx.configPath;
  const absolute = path.resolve(file);
  let config: SignetConfig;
  try {
    config = await loadConfigFile(file);
  } catch (error) {
    if (!(error instanceof ConfigError) || error.issues.length === 0) throw error;
    const issues = locateIssues(absolute, error.issues);
    if (ctx.json) printJson(ctx.out, { file, valid: false, issues, warnings: [], unchecked: [] });
    else ctx.err.write(invalidConfigText(file, error.code, issues));
    return EXIT.usage;
  }
  const { warnings } = checkConfig(config);
  // The keys too: a rule whose algorithm does not fit its key cannot sign anything.
  const signet = createSignet(config, { logger: ctx.logger });
  let keys;
  try {
    keys = await inspectKeys(config, signet.keys, { missingFiles: 'skip' });
  } finally {
    signet.keys.close();
  }
  const issues = locateIssues(absolute, keys.issues);
  const summary = {
    registries: config.registries.length,
    witnesses: config.witnesses.length,
    signingRules: config.signingRules.length,
    policies: config.policies.length,
  };
  const result: ConfigCheckResult = {
    file,
    valid: issues.length === 0,
    summary,
    issues,
    warnings,
    unchecked: keys.unchecked.map(({ witness, reason }) => ({ witness, reason })),
  };
  if (ctx.json) {
    printJson(ctx.out, result);
    return result.valid ? EXIT.ok : EXIT.usage;
  }
  for (const warning of warnings) ctx.err.write(`warning: ${warning}\n`);
  for (const { witness, reason } of result.unchecked)
    ctx.err.write(`warning: witness "${witness}": key not checked: ${reason}\n`);
  if (!result.valid) {
    ctx.err.write(`${file}: the configuration cannot work with its keys\n${formatIssues(file, issues)}`);
    return EXIT.usage;
  }
  ctx.out.write(
    `${file}: OK (${summary.registries} registries, ${summary.witnesses} witnesses, ` +
      `${summary.signingRules} signing rules, ${summary.policies} policies)\n`,
  );
  return EXIT.ok;
}
