/**
 * The command line, read against `spec.ts`: which command, its arguments and its flags. Every
 * mistake is an `InputError('REQUEST_INVALID')` naming the flag or argument at fault and pointing
 * to `signet <command> --help`; Node's own `parseArgs` messages never reach the user.
 */
import { parseArgs } from 'node:util';
import { InputError } from '../lib/core/errors';
import { suggest } from '../lib/config/validate';
import { COMMANDS, GROUPS, TOP_LEVEL_FLAGS, commandNamed, type CommandSpec, type FlagSpec } from './spec';

/** The flags given, as parsed. */
export class Flags {
  constructor(private readonly values: ReadonlyMap<string, string | boolean | string[]>) {}

  string(name: string): string | undefined {
    const value = this.values.get(name);
    return typeof value === 'string' ? value : undefined;
  }

  boolean(name: string): boolean {
    return this.values.get(name) === true;
  }

  list(name: string): string[] | undefined {
    const value = this.values.get(name);
    return Array.isArray(value) ? value : undefined;
  }

  has(name: string): boolean {
    return this.values.has(name);
  }
}

/** What the command line asks for. */
export type Invocation =
  /** Run a command. */
  | { readonly $case: 'run'; readonly command: CommandSpec; readonly args: string[]; readonly flags: Flags }
  /** Print help: the overview (no topic), a group's subcommands, or one command. */
  | { readonly $case: 'help'; readonly topic: CommandSpec | string | undefined }
  | { readonly $case: 'version' }
  /** No command at all: the overview, as a usage error. */
  | { readonly $case: 'no-command' };

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

/** Every flag of every command, so that a flag's value is read as such whatever the command. */
const ALL_FLAGS: readonly FlagSpec[] = [...COMMANDS.flatMap((c) => c.flags), ...TOP_LEVEL_FLAGS];

const helpHint = (command: string | undefined): string =>
  command === undefined ? 'see `signet --help`' : `see \`signet ${command} --help\``;

const usageError = (field: string, message: string): InputError =>
  new InputError('REQUEST_INVALID', field, message);

/** Reads `argv` (without `node` and the script). Throws InputError on any mistake. */
export function parseCommandLine(argv: readonly string[]): Invocation {
  const { words, optionTokens } = tokenize(argv, ALL_FLAGS);
  const wantsHelp = optionTokens.some((t) => t.name === 'help');

  const [first, second] = words;
  if (first === undefined) {
    if (wantsHelp) return { $case: 'help', topic: undefined };
    checkFlags(optionTokens, TOP_LEVEL_FLAGS, undefined);
    return optionTokens.some((t) => t.name === 'version') ? { $case: 'version' } : { $case: 'no-command' };
  }
  if (first === 'help') {
    const topic = words.slice(1).join(' ');
    if (topic !== '') return { $case: 'help', topic: resolveTopic(topic) };
    return { $case: 'help', topic: wantsHelp ? commandNamed('help') : undefined };
  }

  const group = GROUPS.get(first);
  let command: CommandSpec | undefined;
  let args: string[];
  if (group !== undefined) {
    if (second === undefined) {
      if (wantsHelp) return { $case: 'help', topic: first };
      throw usageError(first, `needs a subcommand: ${group.join(' or ')}; ${helpHint(first)}`);
    }
    command = commandNamed(`${first} ${second}`);
    if (command === undefined) {
      const close = suggest(second, group);
      throw usageError(
        first,
        `unknown subcommand "${second}"${close !== undefined ? ` (did you mean "${close}"?)` : ''}: use ${group.join(' or ')}; ${helpHint(first)}`,
      );
    }
    args = words.slice(2);
  } else {
    command = commandNamed(first);
    if (command === undefined || command.name === 'help') {
      const names = [...COMMANDS.map((c) => c.name.split(' ')[0] as string)];
      const close = suggest(first, names);
      throw usageError(
        'command',
        `unknown command "${first}"${close !== undefined ? ` (did you mean "${close}"?)` : ''}; ${helpHint(undefined)}`,
      );
    }
    args = words.slice(1);
  }
  if (wantsHelp) return { $case: 'help', topic: command };
  // A flag name two commands type differently (`findings --all`, `sign --all PATTERN`) is read
  // again with the type of the command it was given to.
  const own = command.flags;
  if (own.some((f) => ALL_FLAGS.some((g) => g.name === f.name && g.type !== f.type))) {
    const again = tokenize(argv, [...ALL_FLAGS, ...own]);
    args = again.words.slice(words.length - args.length);
    checkFlags(again.optionTokens, own, command.name);
    checkArgs(args, command);
    return { $case: 'run', command, args, flags: flagValues(again.optionTokens, own) };
  }
  checkFlags(optionTokens, own, command.name);
  checkArgs(args, command);
  return { $case: 'run', command, args, flags: flagValues(optionTokens, own) };
}

/** The positional words and option tokens of `argv`, each flag read with the last type `flags` give its name. */
function tokenize(
  argv: readonly string[],
  flags: readonly FlagSpec[],
): { words: string[]; optionTokens: Extract<Token, { kind: 'option' }>[] } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const flag of flags) {
    options[flag.name] = {
      type: flag.type,
      ...(flag.short !== undefined ? { short: flag.short } : {}),
      ...(flag.multiple === true ? { multiple: true } : {}),
    };
  }
  // Not strict: unknown flags and missing values are reported by the caller, by name, with the command's help.
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  return {
    words: tokens.flatMap((t) => (t.kind === 'positional' ? [t.value] : [])),
    optionTokens: tokens.filter((t): t is Extract<Token, { kind: 'option' }> => t.kind === 'option'),
  };
}

/** The command or group `signet help TOPIC` is about. */
function resolveTopic(topic: string): CommandSpec | string {
  const command = commandNamed(topic);
  if (command !== undefined) return command;
  if (GROUPS.has(topic)) return topic;
  const names = [...COMMANDS.map((c) => c.name), ...GROUPS.keys()];
  const close = suggest(topic, names);
  throw usageError(
    'help',
    `no command "${topic}"${close !== undefined ? ` (did you mean "${close}"?)` : ''}; ${helpHint(undefined)}`,
  );
}

function checkFlags(
  tokens: readonly Extract<Token, { kind: 'option' }>[],
  flags: readonly FlagSpec[],
  command: string | undefined,
): void {
  const where = command === undefined ? '`signet`' : `\`signet ${command}\``;
  for (const token of tokens) {
    const flag = flags.find((f) => f.name === token.name);
    if (flag === undefined) {
      const close = suggest(
        token.name,
        flags.map((f) => f.name),
      );
      const owners = COMMANDS.filter((c) => c.flags.some((f) => f.name === token.name)).map(
        (c) => `signet ${c.name}`,
      );
      const about =
        close !== undefined
          ? ` (did you mean --${close}?)`
          : owners.length > 0
            ? ` (it is a flag of ${owners.join(', ')})`
            : '';
      throw usageError(token.rawName, `is not a flag of ${where}${about}; ${helpHint(command)}`);
    }
    const shown = flag.value !== undefined ? `--${flag.name} ${flag.value}` : `--${flag.name}`;
    if (flag.type === 'boolean' && token.inlineValue === true) {
      throw usageError(token.rawName, `takes no value (write ${shown}); ${helpHint(command)}`);
    }
    if (flag.type === 'string') {
      if (token.value === undefined) {
        throw usageError(token.rawName, `needs a value: ${shown}; ${helpHint(command)}`);
      }
      // `--config --json`: the next flag was taken for the value. A value starting with a dash
      // can still be given as `--flag=-value`.
      if (token.inlineValue === false && token.value.startsWith('-') && token.value !== '-') {
        throw usageError(
          token.rawName,
          `needs a value: ${shown} (got the flag "${token.value}"); ${helpHint(command)}`,
        );
      }
    }
  }
}

function checkArgs(args: readonly string[], command: CommandSpec): void {
  const variadic = command.args.some((a) => a.variadic === true);
  command.args.forEach((arg, i) => {
    if (arg.required && args[i] === undefined) {
      throw usageError(
        arg.name,
        `is required: signet ${command.usage[0] ?? command.name}; ${helpHint(command.name)}`,
      );
    }
  });
  if (!variadic && args.length > command.args.length) {
    const extra = args[command.args.length] as string;
    throw usageError(
      command.name,
      `takes ${command.args.length === 0 ? 'no arguments' : command.args.map((a) => a.name).join(' ')}, got an extra "${extra}"; ${helpHint(command.name)}`,
    );
  }
}

function flagValues(
  tokens: readonly Extract<Token, { kind: 'option' }>[],
  flags: readonly FlagSpec[],
): Flags {
  const values = new Map<string, string | boolean | string[]>();
  for (const token of tokens) {
    const flag = flags.find((f) => f.name === token.name);
    if (flag === undefined) continue;
    if (flag.type === 'boolean') values.set(flag.name, true);
    else if (flag.multiple === true) {
      const list = values.get(flag.name);
      values.set(flag.name, [...(Array.isArray(list) ? list : []), token.value ?? '']);
    } else values.set(flag.name, token.value ?? '');
  }
  return new Flags(values);
}
