/**
 * How the CLI prints: JSON for scripts, aligned tables for a terminal, config problems as
 * `FILE:LINE: path: message` (the form editors and CI annotate).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { YAML_PATH } from '../lib/config/load';
import { ROOT_PATH, childPath, parentPath } from '../lib/config/validate';
import type { FieldIssue } from '../lib/core/errors';

/** A stream the CLI writes to (`process.stdout`, or a test's capture). */
export type Out = Pick<NodeJS.WritableStream, 'write'> & { readonly isTTY?: boolean };

/** True when `stream` is a terminal (a person reads it); a pipe or a file is read by a program. */
export const isTerminal = (stream: Out): boolean => stream.isTTY === true;

export function printJson(out: Out, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Columns aligned on their widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** `file` relative to the working directory when it lies under it, else as it is. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), path.resolve(file));
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

/** A config problem located in its file. */
export interface LocatedIssue extends FieldIssue {
  readonly line: number | undefined;
  readonly column?: number;
}

/**
 * The line of each issue's path in `file` (the mapping key or list item it names, else its
 * nearest parent's), found the way `lib/config/load.ts` finds them for its messages. YAML syntax
 * problems carry their line and column in the message already.
 */
export function locateIssues(file: string, issues: readonly FieldIssue[]): LocatedIssue[] {
  let lines: ReadonlyMap<string, number> = new Map();
  try {
    lines = pathLines(readFileSync(file, 'utf8'));
  } catch {
    // Unreadable now: the issues are still worth printing, without lines.
  }
  return issues.map((issue) => {
    if (issue.path === YAML_PATH) {
      const at = /^line (\d+), column (\d+): (.*)$/s.exec(issue.message);
      if (at !== null) {
        return { path: issue.path, message: at[3] ?? '', line: Number(at[1]), column: Number(at[2]) };
      }
    }
    return { ...issue, line: lineFor(issue.path, lines) };
  });
}

/** A heading naming the file and the count, then `formatIssues`. */
export function invalidConfigText(file: string, code: string, issues: readonly LocatedIssue[]): string {
  const count = `${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}`;
  return `signet: ${code}: ${displayPath(file)} is invalid (${count})\n${formatIssues(file, issues)}`;
}

/** `FILE:LINE: path: message`, one per issue (`FILE: path: message` when the line is unknown). */
export function formatIssues(file: string, issues: readonly LocatedIssue[]): string {
  const shown = displayPath(file);
  return issues
    .map((issue) => {
      const where = [shown, issue.line, issue.column].filter((part) => part !== undefined).join(':');
      return `${where}: ${issue.path}: ${issue.message}\n`;
    })
    .join('');
}

/**
 * The file a `ConfigError` from `loadConfigFile` is about: its message starts
 * `<absolute path> is invalid (N problems):`.
 */
export function invalidConfigFile(message: string): string | undefined {
  return /^(.+) is invalid \(\d+ problems?\):/.exec(message)?.[1];
}

function pathLines(text: string): Map<string, number> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const lines = new Map<string, number>();
  const lineOf = (node: unknown): number | undefined =>
    isNode(node) && node.range !== undefined && node.range !== null
      ? lineCounter.linePos(node.range[0]).line
      : undefined;
  const visit = (node: unknown, at: string): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const keyPath = childPath(at, isScalar(pair.key) ? String(pair.key.value) : String(pair.key));
        const line = lineOf(pair.key) ?? lineOf(pair.value);
        if (line !== undefined) lines.set(keyPath, line);
        visit(pair.value, keyPath);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const itemPath = childPath(at, i);
        const line = lineOf(item);
        if (line !== undefined) lines.set(itemPath, line);
        visit(item, itemPath);
      });
    }
  };
  visit(doc.contents, '');
  return lines;
}

function lineFor(issuePath: string, lines: ReadonlyMap<string, number>): number | undefined {
  // Paths may carry a note after the field (`witnesses[0] (release)`); the field is what has a line.
  let at: string | undefined = issuePath === ROOT_PATH ? undefined : issuePath.replace(/ \(.*\)$/, '');
  while (at !== undefined && at !== '') {
    const line = lines.get(at);
    if (line !== undefined) return line;
    at = parentPath(at);
  }
  return undefined;
}

/**
 * How the person at the terminal runs this CLI, for commands we suggest: `signet` when it was
 * installed as a command, else `node <path to bin/signet.js>`.
 */
export function invocation(script = process.argv[1]): string {
  if (script === undefined || path.basename(script) === 'signet') return 'signet';
  return `node ${displayPath(script)}`;
}
