/** The help texts, all rendered from `spec.ts`. */
import { COMMANDS, EXIT, GROUPS, TOP_LEVEL_FLAGS, type CommandSpec, type FlagSpec } from './spec';

const indent = (text: string, by = '  '): string =>
  text
    .split('\n')
    .map((line) => (line === '' ? line : `${by}${line}`))
    .join('\n');

/** Help lines stay within this width (the right column wraps). */
const WIDTH = 100;

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

function columns(rows: readonly (readonly [string, string])[], gap = 2): string {
  const width = Math.max(...rows.map(([left]) => left.length));
  const room = Math.max(30, WIDTH - 2 - width - gap);
  return rows
    .flatMap(([left, right]) =>
      wrap(right, room).map((part, i) => `${(i === 0 ? left : '').padEnd(width + gap)}${part}`.trimEnd()),
    )
    .join('\n');
}

const flagLabel = (flag: FlagSpec): string =>
  `${flag.short !== undefined ? `-${flag.short}, ` : ''}--${flag.name}${flag.value !== undefined ? ` ${flag.value}` : ''}`;

/** `signet --help`: every command in one screen. */
export function overview(): string {
  const rows = COMMANDS.map((c): [string, string] => [c.name, c.summary]);
  return [
    'Usage: signet <command> [arguments] [flags]',
    '',
    'Signs container images on push and answers Kubernetes admission checks.',
    '',
    'Commands:',
    indent(columns(rows)),
    '',
    'Flags:',
    indent(columns(TOP_LEVEL_FLAGS.map((f): [string, string] => [flagLabel(f), f.help]))),
    '',
    'Exit codes (every command):',
    indent(exitCodeTable()),
    '',
    'Run `signet <command> --help` (or `signet help <command>`) for its flags, an example and its exit codes.',
    '',
  ].join('\n');
}

/** The exit codes every command shares. */
function exitCodeTable(): string {
  return columns([
    [String(EXIT.ok), 'done'],
    [String(EXIT.failed), 'denied or failed'],
    [String(EXIT.usage), 'usage or configuration error'],
    [String(EXIT.nothingToDo), 'nothing to do'],
  ]);
}

/** `signet keys --help`: the subcommands of a group. */
export function groupHelp(group: string): string {
  const subcommands = (GROUPS.get(group) ?? []).flatMap((sub) => {
    const command = COMMANDS.find((c) => c.name === `${group} ${sub}`);
    return command === undefined ? [] : [command];
  });
  return [
    `Usage: signet ${group} <${(GROUPS.get(group) ?? []).join('|')}> [flags]`,
    '',
    'Commands:',
    indent(columns(subcommands.map((c): [string, string] => [c.name, c.summary]))),
    '',
    `Run \`signet ${group} <command> --help\` for its flags, an example and its exit codes.`,
    '',
  ].join('\n');
}

/** `signet <command> --help`: synopsis, description, arguments, flags, output, examples, exit codes. */
export function commandHelp(command: CommandSpec): string {
  const sections = [
    `Usage:\n${indent(command.usage.map((u) => `signet ${u}`).join('\n'))}`,
    command.description,
  ];
  if (command.args.length > 0) {
    sections.push(
      `Arguments:\n${indent(columns(command.args.map((a): [string, string] => [`${a.name}${a.variadic === true ? '...' : ''}`, a.help])))}`,
    );
  }
  sections.push(
    `Flags:\n${indent(columns(command.flags.map((f): [string, string] => [flagLabel(f), f.help])))}`,
    `Output:\n${indent(wrap(command.output, WIDTH - 2).join('\n'))}`,
    `Examples:\n${indent(command.examples.join('\n'))}`,
    `Exit codes:\n${indent(columns(command.exitCodes.map(([code, meaning]): [string, string] => [String(code), meaning])))}`,
  );
  return `${sections.join('\n\n')}\n`;
}
