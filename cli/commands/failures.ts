/** `signet failures [--id ID]...`: the local service's dead letters. */
import { loadConfigFile } from '../../lib/config/load';
import { failuresTable, listFailures } from '../journal-commands';
import { printJson } from '../output';
import { EXIT } from '../spec';
import type { CommandContext } from './context';

export async function failures(ctx: CommandContext): Promise<number> {
  const config = await loadConfigFile(ctx.configPath);
  const ids = ctx.flags.list('id') ?? [];
  const found = ids.length > 0 ? ids.flatMap((id) => listFailures(config, id)) : listFailures(config);
  if (ctx.json) printJson(ctx.out, found);
  else ctx.out.write(failuresTable(found));
  return EXIT.ok;
}
