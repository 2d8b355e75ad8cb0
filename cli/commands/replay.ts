/** `signet replay --queue URL` (the AWS dead-letter queue) and `signet replay --local` (the journal). */
import { loadConfigFile } from '../../lib/config/load';
import { InputError } from '../../lib/core/errors';
import { failuresTable, replayLocal, type LocalReplaySummary } from '../journal-commands';
import { printJson, table } from '../output';
import { replayCommand, replayDeadLetters, replayExitCode, type ReplaySummary } from '../replay';
import { EXIT } from '../spec';
import type { CommandContext } from './context';

/** Flags that only mean something with `--queue`. */
const QUEUE_ONLY = ['max', 'dry-run', 'endpoint', 'registry-host'] as const;

export async function replay(ctx: CommandContext): Promise<number> {
  const { flags } = ctx;
  if (flags.boolean('local')) {
    for (const name of ['queue', ...QUEUE_ONLY]) {
      if (flags.has(name)) {
        throw new InputError(
          'REQUEST_INVALID',
          `--${name}`,
          name === 'queue'
            ? '--local replays the local journal; it takes no --queue'
            : '--local replays the local journal; this flag is for --queue',
        );
      }
    }
    const config = await loadConfigFile(ctx.configPath);
    const summary = await replayLocal(config, flags.list('id'), ctx.logger);
    if (ctx.json) printJson(ctx.out, summary);
    else ctx.out.write(localText(summary));
    if (summary.failed.length > 0) return EXIT.failed;
    return summary.requeued.length === 0 ? EXIT.nothingToDo : EXIT.ok;
  }
  if (flags.has('id')) {
    throw new InputError('REQUEST_INVALID', '--id', 'selects local dead letters: use it with --local');
  }
  // Every option is checked before the config or the queue is read.
  const command = replayCommand({
    queue: flags.string('queue'),
    max: flags.string('max'),
    'dry-run': flags.boolean('dry-run'),
    endpoint: flags.string('endpoint'),
    'registry-host': flags.string('registry-host'),
  });
  const config = await loadConfigFile(ctx.configPath);
  const summary = await replayDeadLetters(command, { config, logger: ctx.logger });
  if (ctx.json) printJson(ctx.out, summary);
  else ctx.out.write(queueText(summary));
  if (summary.received === 0 && summary.error === undefined) return EXIT.nothingToDo;
  return replayExitCode(summary);
}

function localText(summary: LocalReplaySummary): string {
  if (summary.requeued.length === 0) return 'nothing to do: no dead letters to replay\n';
  if (summary.mode === 'requeued') {
    return (
      `requeued ${summary.requeued.length} dead letter(s) into the running service, which signs them ` +
      `within seconds (\`signet failures\` shows any that fail again): ${summary.requeued.join(', ')}\n`
    );
  }
  const signed = `signed ${summary.signed.length} of ${summary.requeued.length} dead letter(s)`;
  if (summary.failed.length === 0) return `${signed}\n`;
  return `${signed}; failed again:\n${failuresTable(summary.failed)}`;
}

function queueText(summary: ReplaySummary): string {
  const counts = [
    `received ${summary.received}`,
    `replayed ${summary.replayed}`,
    `signed ${summary.signed}`,
    `already signed ${summary.alreadySigned}`,
    `failed ${summary.failed}`,
    `malformed ${summary.malformed}`,
    `unmatched ${summary.unmatched}`,
    `left ${summary.left}`,
  ].join(', ');
  const head = `${summary.queue}${summary.dryRun ? ' (dry run)' : ''}: ${counts}\n`;
  const error = summary.error !== undefined ? `stopped early: ${summary.error}\n` : '';
  if (summary.messages.length === 0) return `${head}${error}`;
  const rows = summary.messages.map((m) => [
    m.messageId,
    m.result,
    m.deleted ? 'yes' : 'no',
    [
      ...(m.images ?? []),
      ...(m.failures ?? []),
      ...(m.reason !== undefined ? [m.reason] : []),
      ...(m.field !== undefined ? [`${m.field}: ${m.error ?? ''}`] : m.error !== undefined ? [m.error] : []),
    ].join('; '),
  ]);
  return `${head}${error}${table(['MESSAGE', 'RESULT', 'DELETED', 'DETAIL'], rows)}`;
}
