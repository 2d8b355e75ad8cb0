/**
 * Loads Signet's YAML configuration into a fully-specified `SignetConfig`. Every problem in the
 * file is collected and thrown at once as one `ConfigError('CONFIG_INVALID')` whose `issues` list
 * each bad field by path; the message lists them one per line with their line in the file.
 * Loading never reads key files: they may not exist until `signet keys generate` or the first run.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { ConfigError, type FieldIssue } from '../core/errors';
import { buildConfig } from './build';
import type { SignetConfig } from './types';
import { childPath, Issues, parentPath, ROOT_PATH } from './validate';

/** Where configuration text came from and what it may refer to. */
export interface ParseOptions {
  /** The file the text was read from (named in errors; recorded as `config.source`). */
  readonly source?: string;
  /** Relative paths (key files, dataDir) resolve against this directory. */
  readonly baseDir: string;
  /** Environment for `passwordEnv`, `bearerTokenEnv` and the default AWS region; `process.env` if absent. */
  readonly env?: NodeJS.ProcessEnv;
}

/** The path reported for YAML syntax errors (the message carries line and column). */
export const YAML_PATH = '(yaml)';

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Reads and parses a configuration file; relative paths in it resolve against its directory. */
export async function loadConfigFile(
  file: string,
  options: { readonly env?: NodeJS.ProcessEnv } = {},
): Promise<SignetConfig> {
  const source = path.resolve(file);
  let text: string;
  try {
    const stat = await fs.stat(source);
    if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (stat.size > MAX_CONFIG_BYTES) throw new Error(`is larger than ${MAX_CONFIG_BYTES} bytes`);
    text = await fs.readFile(source, 'utf8');
  } catch (err) {
    throw new ConfigError(
      'CONFIG_UNREADABLE',
      `cannot read the configuration file ${source}: ${readProblem(err)}`,
      {
        cause: err,
      },
    );
  }
  return parseConfig(text, { source, baseDir: path.dirname(source), env: options.env });
}

function readProblem(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'it does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

/** Parses configuration text; throws ConfigError CONFIG_INVALID listing every problem. */
export function parseConfig(text: string, options: ParseOptions): SignetConfig {
  const source = options.source === undefined ? undefined : path.resolve(options.source);
  const baseDir = path.resolve(options.baseDir);
  const env = options.env ?? process.env;
  const issues = new Issues();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });

  for (const problem of [...doc.errors, ...doc.warnings]) {
    const pos = lineCounter.linePos(problem.pos[0]);
    const message =
      problem.code === 'MULTIPLE_DOCS'
        ? 'the file must hold one YAML document (remove the second "---")'
        : problem.message.split('\n', 1)[0];
    issues.add(YAML_PATH, `line ${pos.line}, column ${pos.col}: ${message}`);
  }
  for (const key of collectionKeys(doc.contents)) {
    const pos = lineCounter.linePos(key.range?.[0] ?? 0);
    issues.add(
      YAML_PATH,
      `line ${pos.line}, column ${pos.col}: a mapping key must be a plain value, not a list, map or alias`,
    );
  }
  if (issues.count > 0) throw invalid(source, issues.list, new Map());

  let document: unknown;
  try {
    document = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    issues.add(YAML_PATH, err instanceof Error ? err.message : String(err));
    throw invalid(source, issues.list, new Map());
  }
  const config = buildConfig(document, { source, baseDir, env }, issues);
  if (issues.count > 0) throw invalid(source, issues.list, sourceLines(doc, lineCounter));
  return config;
}

/** Mapping keys that are not plain values (`? [a, b] : c`, `*alias : c`, `!!binary`): no config field is one. */
function collectionKeys(root: unknown): Node[] {
  const found: Node[] = [];
  const visit = (node: unknown): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const plain = isScalar(pair.key) && (typeof pair.key.value !== 'object' || pair.key.value === null);
        if (isNode(pair.key) && !plain) found.push(pair.key);
        else visit(pair.value);
      }
    } else if (isSeq(node)) {
      node.items.forEach(visit);
    }
  };
  visit(root);
  return found;
}

/** The line of every mapping key and list item, by the path the validator reports. */
function sourceLines(doc: Document, lineCounter: LineCounter): Map<string, number> {
  const lines = new Map<string, number>();
  const lineOf = (node: unknown): number | undefined =>
    isNode(node) && node.range !== undefined && node.range !== null
      ? lineCounter.linePos(node.range[0]).line
      : undefined;
  const visit = (node: unknown, at: string): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const keyPath = childPath(at, key);
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
  let at: string | undefined = issuePath === ROOT_PATH ? undefined : issuePath;
  while (at !== undefined && at !== '') {
    const line = lines.get(at);
    if (line !== undefined) return line;
    at = parentPath(at);
  }
  return undefined;
}

function invalid(
  source: string | undefined,
  issues: readonly FieldIssue[],
  lines: ReadonlyMap<string, number>,
): ConfigError {
  const where = source ?? 'the configuration';
  const heading = `${where} is invalid (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}):`;
  const body = issues.map((issue) => {
    const line = lineFor(issue.path, lines);
    return `  ${issue.path}${line === undefined ? '' : ` (line ${line})`}: ${issue.message}`;
  });
  return new ConfigError('CONFIG_INVALID', [heading, ...body].join('\n'), { issues });
}
