import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../lib/core/errors';
import { isDigest, isRegistryHost, isRepository, isTag } from '../../lib/core/reference';
import type { NormalizedEvents } from '../../lib/events/types';

export type JsonPath = readonly (string | number)[];

/** A fresh parsed copy of a fixture in test/fixtures/events, safe to mutate. */
export function fixture(name: string): unknown {
  return JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'events', name), 'utf8')) as unknown;
}

/** A deep copy of `body` with the value at `path` replaced (`undefined` deletes it). */
export function withValue(body: unknown, path: JsonPath, value: unknown): unknown {
  const copy = structuredClone(body);
  let node = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (last === undefined) return value;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

/** Every path to a value inside a (small, trusted) fixture, the root included. */
export function pathsOf(value: unknown, prefix: JsonPath = []): JsonPath[] {
  const paths: JsonPath[] = [prefix];
  if (Array.isArray(value)) value.forEach((item, index) => paths.push(...pathsOf(item, [...prefix, index])));
  else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) paths.push(...pathsOf(item, [...prefix, key]));
  }
  return paths;
}

/** The InputError `run` throws; fails the test when it returns or throws anything else. */
export function inputErrorOf(run: () => unknown): InputError {
  try {
    run();
  } catch (err) {
    if (err instanceof InputError) return err;
    throw new Error(`expected an InputError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected an InputError, nothing was thrown');
}

/**
 * The never-crash contract: `run` returns well-formed events, or throws an InputError with a
 * known code that names a field. Anything else (a TypeError, a RangeError) fails.
 */
export function expectResultOrInputError(run: () => NormalizedEvents): void {
  let result: NormalizedEvents;
  try {
    result = run();
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    expect(['EVENT_INVALID', 'UNSUPPORTED_MEDIA_TYPE']).toContain(err.code);
    expect(err.field.length).toBeGreaterThan(0);
    return;
  }
  for (const event of result.events) {
    expect(isRegistryHost(event.registry)).toBe(true);
    expect(isRepository(event.repository)).toBe(true);
    expect(isDigest(event.digest)).toBe(true);
    if (event.tag !== undefined) expect(isTag(event.tag)).toBe(true);
  }
  for (const ignored of result.ignored) {
    expect(typeof ignored.field).toBe('string');
    expect(typeof ignored.reason).toBe('string');
  }
}

/** `[[[...]]]` nested `depth` deep, built without recursion. */
export function deeplyNested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { nested: value };
  return value;
}
