/**
 * The `signet` CLI. `main` runs one command line in process and resolves to its exit status
 * (`spec.ts`: 0 done, 1 denied or failed, 2 usage or configuration error, 3 nothing to do); it
 * throws Signet's errors, and `reportError` prints them the way a user can act on them.
 */
import { version } from '../package.json';
import { ConfigError, InputError, SignetError, describeError } from '../lib/core/errors';
import { jsonLogger, type LogLevel } from '../lib/core/logger';
import { parseCommandLine } from './args';
import type { Command } from './commands/context';
import { commandHelp, groupHelp, overview } from './help';
import { invalidConfigFile, invalidConfigText, isTerminal, locateIssues, type Out } from './output';
import { EXIT, LOG_LEVELS } from './spec';

/**
 * The implementation of every command of `spec.ts`, by name, loaded when it runs: `--help` and
 * `--version` do not wait for the AWS SDK and the rest of Signet to load.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  serve: async () => (await import('./commands/serve')).serve,
  sign: async () => (await import('./commands/sign')).sign,
  verify: async () => (await import('./commands/verify')).verify,
  audit: async () => (await import('./commands/audit')).audit,
  replay: async () => (await import('./commands/replay')).replay,
  failures: async () => (await import('./commands/failures')).failures,
  ledger: async () => (await import('./commands/ledger')).ledger,
  findings: async () => (await import('./commands/ledger')).findings,
  'keys generate': async () => (await import('./commands/keys')).keysGenerate,
  'keys export': async () => (await import('./commands/keys')).keysExport,
  'keys rotate': async () => (await import('./commands/keys')).keysRotate,
  'config check': async () => (await import('./commands/config')).configCheck,
};

/** Runs one command line; resolves to the exit status, rejects with the error to report. */
export async function main(
  argv: readonly string[],
  out: Out = process.stdout,
  err: Out = process.stderr,
): Promise<number> {
  const invocation = parseCommandLine(argv);
  switch (invocation.$case) {
    case 'version':
      out.write(`${version}\n`);
      return EXIT.ok;
    case 'help': {
      const { topic } = invocation;
      out.write(
        topic === undefined ? overview() : typeof topic === 'string' ? groupHelp(topic) : commandHelp(topic),
      );
      return EXIT.ok;
    }
    case 'no-command':
      err.write(overview());
      return EXIT.usage;
    case 'run':
      break;
  }
  const { command, args, flags } = invocation;
  const load = COMMANDS[command.name];
  if (load === undefined) throw new Error(`signet ${command.name} has no implementation`);
  const level = flags.string('log-level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw withHelp(
      new InputError(
        'REQUEST_INVALID',
        '--log-level',
        `must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`,
      ),
      command.name,
    );
  }
  const json = flags.boolean('json') || (command.jsonWhenPiped && !isTerminal(out));
  // Logs go to the process's stderr (tests that pass their own `err` still see them there), but
  // `serve` without a terminal runs in a container, whose log collector reads stdout.
  const logTo = command.name === 'serve' && json ? out : process.stderr;
  const logger = jsonLogger(level as LogLevel, (line) => logTo.write(`${line}\n`));
  const configPath = flags.string('config') ?? process.env['SIGNET_CONFIG'] ?? 'signet.yaml';
  try {
    const run = await load();
    return await run({ args, flags, out, err, logger, configPath, json });
  } catch (error) {
    throw withHelp(error, command.name);
  }
}

/** A usage mistake found by a command (a bad flag value) points to that command's help too. */
function withHelp(error: unknown, command: string): unknown {
  if (!(error instanceof InputError) || error.code !== 'REQUEST_INVALID') return error;
  const hint = `see \`signet ${command} --help\``;
  if (error.message.includes('--help')) return error;
  const prefix = `${error.field}: `;
  const message = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  return new InputError(error.code, error.field, `${message}; ${hint}`, { cause: error });
}

/**
 * Prints an error the way a user can act on it and returns the exit status: configuration
 * problems one per line as `FILE:LINE: path: message`, every Signet error with its code.
 */
export function reportError(error: unknown, err: Out = process.stderr): number {
  if (error instanceof ConfigError && error.issues.length > 0) {
    const file = invalidConfigFile(error.message);
    if (file !== undefined) {
      err.write(invalidConfigText(file, error.code, locateIssues(file, error.issues)));
    } else {
      err.write(`signet: ${error.code}: ${error.message.split('\n', 1)[0] ?? ''}\n`);
      for (const issue of error.issues) err.write(`  ${issue.path}: ${issue.message}\n`);
    }
    return EXIT.usage;
  }
  if (error instanceof SignetError) {
    err.write(`signet: ${error.code}: ${error.message}\n`);
    return error instanceof ConfigError || error instanceof InputError ? EXIT.usage : EXIT.failed;
  }
  err.write(`signet: ${describeError(error)}\n`);
  return EXIT.failed;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.exitCode = reportError(error);
    },
  );
}
