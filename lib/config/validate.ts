/**
 * A small validation toolkit for untyped input (parsed YAML or JSON). Readers check one field at a
 * path, record a `FieldIssue` when it is wrong and keep going, so a user sees every problem at
 * once; the caller throws one error at the end when any issue was found.
 */
import { isObject } from '../core/json';
import type { FieldIssue } from '../core/errors';

/** The path reported for a problem with the whole document. */
export const ROOT_PATH = '(root)';

/** Collects every problem found in one input. */
export class Issues {
  private readonly found: FieldIssue[] = [];

  add(path: string, message: string): void {
    this.found.push({ path: path === '' ? ROOT_PATH : path, message });
  }

  get list(): readonly FieldIssue[] {
    return this.found;
  }

  get count(): number {
    return this.found.length;
  }
}

/** A check on a value already known to have the right type: a problem, or undefined when it is fine. */
export type Check<T> = (value: T) => string | undefined;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** `parent.key`, `parent[3]`, or `parent["key with dots"]` for keys that are not plain names. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (!IDENTIFIER.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === '' ? key : `${parent}.${key}`;
}

/** The path one level up, or undefined at the root. */
export function parentPath(path: string): string | undefined {
  const match = /(?:\.[^.[\]]+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])$/.exec(path);
  if (match === null) return path === '' ? undefined : '';
  return path.slice(0, match.index);
}

/** A short description of a value for messages: `"yes"`, `42`, `a list`, `a mapping`, `null`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  return String(value);
}

/** Optimal string alignment distance (Levenshtein with adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => (d[i] as number[])[j] as number;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

const squash = (s: string): string => s.toLowerCase().replace(/[-_\s]/g, '');

/** The candidate closest to `word` (a likely typo of it), or undefined when none is close. */
export function suggest(word: string, candidates: Iterable<string>, maxDistance = 3): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (squash(candidate) === squash(word)) return candidate;
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    const allowed = Math.min(maxDistance, candidate.length <= 4 ? 1 : candidate.length <= 8 ? 2 : 3);
    if (distance <= allowed && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** `; did you mean "x"?` when a candidate is close, else the empty string. */
export function didYouMean(word: string, candidates: Iterable<string>, maxDistance?: number): string {
  const close = suggest(word, candidates, maxDistance);
  return close === undefined ? '' : `; did you mean "${close}"?`;
}

/** Options for list readers. */
export interface ListOptions {
  /** Absent is an issue (otherwise absent reads as the fallback, or an empty list). */
  readonly required?: boolean;
  /** An empty list is an issue. */
  readonly nonEmpty?: boolean;
}

/**
 * One mapping of the input. Reading it checks its keys against the ones the caller knows, so a
 * misspelt key is reported (with a suggestion) instead of silently ignored. A key whose value is
 * `null` (`key:` with nothing after it) reads as absent.
 */
export class ObjectReader {
  private constructor(
    readonly issues: Issues,
    readonly path: string,
    readonly value: Readonly<Record<string, unknown>>,
  ) {}

  /** A reader over `value`, or undefined (and an issue) when it is not a mapping. */
  static of(
    issues: Issues,
    path: string,
    value: unknown,
    knownKeys: readonly string[],
  ): ObjectReader | undefined {
    if (!isObject(value)) {
      issues.add(path, `must be a mapping (key: value), got ${describeValue(value)}`);
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (!knownKeys.includes(key)) {
        issues.add(childPath(path, key), `unknown key "${key}"${didYouMean(key, knownKeys)}`);
      }
    }
    return new ObjectReader(issues, path, value);
  }

  /** The path of one key of this mapping. */
  at(key: string): string {
    return childPath(this.path, key);
  }

  /** The raw value of a key; undefined when absent or null. */
  get(key: string): unknown {
    if (!Object.prototype.hasOwnProperty.call(this.value, key)) return undefined;
    const value = this.value[key];
    return value === null ? undefined : value;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Records an issue at one key of this mapping. */
  issue(key: string, message: string): void {
    this.issues.add(this.at(key), message);
  }

  optionalString(key: string, check?: Check<string>): string | undefined {
    return readString(this.issues, this.at(key), this.get(key), false, check);
  }

  requiredString(key: string, check?: Check<string>): string | undefined {
    return readString(this.issues, this.at(key), this.get(key), true, check);
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.get(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.issue(key, `must be true or false, got ${describeValue(value)}`);
      return fallback;
    }
    return value;
  }

  int(key: string, fallback: number, range: { readonly min?: number; readonly max?: number } = {}): number {
    const value = this.get(key);
    if (value === undefined) return fallback;
    const { min = 0, max = Number.MAX_SAFE_INTEGER } = range;
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
      this.issue(key, `must be a whole number, got ${describeValue(value)}`);
      return fallback;
    }
    if (value < min || value > max) {
      this.issue(key, `must be between ${min} and ${max}, got ${value}`);
      return fallback;
    }
    return value;
  }

  /** A number (fractions allowed, e.g. seconds), within `range`. */
  number(
    key: string,
    fallback: number,
    range: { readonly min?: number; readonly max?: number } = {},
  ): number {
    const value = this.get(key);
    if (value === undefined) return fallback;
    const { min = 0, max = Number.MAX_SAFE_INTEGER } = range;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.issue(key, `must be a number, got ${describeValue(value)}`);
      return fallback;
    }
    if (value < min || value > max) {
      this.issue(key, `must be between ${min} and ${max}, got ${value}`);
      return fallback;
    }
    return value;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    return this.requiredOneOf(key, allowed, false) ?? fallback;
  }

  requiredOneOf<T extends string>(key: string, allowed: readonly T[], required = true): T | undefined {
    const value = readString(this.issues, this.at(key), this.get(key), required);
    if (value === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(value)) {
      const list = allowed.map((a) => `"${a}"`).join(', ');
      this.issue(key, `must be one of ${list}, got ${describeValue(value)}${didYouMean(value, allowed)}`);
      return undefined;
    }
    return value as T;
  }

  /** A list whose items are read by `readItem`; items that fail are left out (their issues recorded). */
  list<T>(
    key: string,
    readItem: (value: unknown, path: string) => T | undefined,
    options: ListOptions = {},
  ): T[] | undefined {
    const value = this.get(key);
    const path = this.at(key);
    if (value === undefined) {
      if (options.required === true) this.issues.add(path, 'is required');
      return undefined;
    }
    if (!Array.isArray(value)) {
      this.issues.add(path, `must be a list, got ${describeValue(value)}`);
      return undefined;
    }
    if (options.nonEmpty === true && value.length === 0) this.issues.add(path, 'must not be empty');
    const items: T[] = [];
    value.forEach((item: unknown, i) => {
      const read = readItem(item, childPath(path, i));
      if (read !== undefined) items.push(read);
    });
    return items;
  }

  /** A list of strings, each passing `check`. */
  stringList(
    key: string,
    options: ListOptions & { readonly check?: Check<string> } = {},
  ): string[] | undefined {
    return this.list(key, (item, path) => readString(this.issues, path, item, true, options.check), options);
  }

  /** A mapping of strings to strings (YAML numbers and booleans must be quoted). */
  stringMap(key: string, checkKey?: Check<string>): Record<string, string> {
    const value = this.get(key);
    const path = this.at(key);
    const result: Record<string, string> = {};
    if (value === undefined) return result;
    if (!isObject(value)) {
      this.issues.add(path, `must be a mapping of strings, got ${describeValue(value)}`);
      return result;
    }
    for (const [name, item] of Object.entries(value)) {
      const itemPath = childPath(path, name);
      const keyProblem = name === '' ? 'keys must not be empty' : checkKey?.(name);
      if (keyProblem !== undefined) {
        this.issues.add(itemPath, keyProblem);
      } else if (typeof item !== 'string') {
        this.issues.add(itemPath, `must be a string (quote it), got ${describeValue(item)}`);
      } else {
        Object.defineProperty(result, name, {
          value: item,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
    return result;
  }
}

/** Reads a non-empty string at `path`. */
export function readString(
  issues: Issues,
  path: string,
  value: unknown,
  required: boolean,
  check?: Check<string>,
): string | undefined {
  if (value === undefined || value === null) {
    if (required) issues.add(path, 'is required');
    return undefined;
  }
  if (typeof value !== 'string') {
    issues.add(path, `must be a string, got ${describeValue(value)}`);
    return undefined;
  }
  if (value.trim() === '') {
    issues.add(path, 'must not be empty');
    return undefined;
  }
  const problem = check?.(value);
  if (problem !== undefined) {
    issues.add(path, problem);
    return undefined;
  }
  return value;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads a secret given either inline (`key`) or by environment variable name (`envKey`). */
export function readSecret(
  r: ObjectReader,
  key: string,
  envKey: string,
  env: NodeJS.ProcessEnv,
): string | undefined {
  if (r.has(key) && r.has(envKey)) {
    r.issue(envKey, `give either ${key} or ${envKey}, not both`);
    return undefined;
  }
  if (r.has(key)) return r.requiredString(key);
  const name = r.optionalString(envKey, (n) =>
    ENV_NAME.test(n) ? undefined : `"${n}" is not an environment variable name`,
  );
  if (name === undefined) return undefined;
  const value = env[name];
  if (value === undefined || value === '') {
    r.issue(envKey, `environment variable ${name} is not set`);
    return undefined;
  }
  return value;
}

/** A rule or policy name: at most 128 characters, no control characters. */
export const checkName: Check<string> = (name) =>
  name.length > 128
    ? 'must be at most 128 characters'
    : [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
      ? 'must not contain control characters'
      : undefined;
