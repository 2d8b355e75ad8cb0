/**
 * Inputs for the fuzz tests: arbitrary JSON, hostile strings, and real fixtures mutated at a
 * random place (a value replaced, removed, or its type changed), so that most runs get past the
 * first checks of a parser and into its deeper branches.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { httpStatusOf, InputError } from '../../lib/core/errors';
import { pathsOf, type JsonPath } from '../events/helpers';

/** Runs per property: the brief asks for at least 10,000. */
export const RUNS = 10_000;

/** A parsed fixture from test/fixtures/<folder>. */
export function fixture(folder: 'events' | 'admission', name: string): unknown {
  return JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', folder, name), 'utf8')) as unknown;
}

/** Sets (or, for `undefined`, deletes) the value at `path` inside `doc`, in place; returns the new root. */
export function setIn(doc: unknown, path: JsonPath, value: unknown): unknown {
  if (path.length === 0) return value;
  let node: unknown = doc;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return doc;
    node = (node as Record<string | number, unknown>)[key];
  }
  if (typeof node !== 'object' || node === null) return doc;
  const last = path[path.length - 1] as string | number;
  if (value === undefined) {
    if (Array.isArray(node) && typeof last === 'number') node.splice(last, 1);
    else delete (node as Record<string | number, unknown>)[last];
  } else {
    (node as Record<string | number, unknown>)[last] = value;
  }
  return doc;
}

/**
 * Strings that have broken parsers before: empty, long, control characters, prototype keys,
 * lookalikes. `longest` bounds the long ones.
 */
export function hostileStrings(longest: number): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      '',
      ' ',
      '\u0000',
      '__proto__',
      'constructor',
      'toString',
      'null',
      'NaN',
      '-1',
      '1e309',
      'sha256:',
      `sha256:${'a'.repeat(64)}`,
      `sha256:${'A'.repeat(64)}`,
      `sha512:${'b'.repeat(128)}`,
      `sha256:${'a'.repeat(63)}`,
      'md5:0123456789abcdef0123456789abcdef',
      '127.0.0.1:5000',
      '127.0.0.1:0',
      '127.0.0.1:99999',
      '[::1]:5000',
      'localhost',
      'http://127.0.0.1:5000/v2/team-a/app/manifests/v1',
      'http://127.0.0.1:5000/v2/team-a/app/blobs/sha256:' + 'c'.repeat(64),
      'https://user:pass@host/v2/x/manifests/y',
      'javascript:alert(1)',
      'team-a/app',
      'Team-A/App',
      'a//b',
      '../../etc/passwd',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.dev.cosign.simplesigning.v1+json',
      'text/plain; charset=utf-8',
      'PUSH',
      'DELETE',
      'SUCCESS',
      'FAILURE',
      'push',
      'pull',
      'PUSH_ARTIFACT',
      'admission.k8s.io/v1',
      'AdmissionReview',
      'CREATE',
      'UPDATE',
      '\ud800',
      'é'.normalize('NFD'),
    ),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.nat({ max: longest }).map((n) => 'x'.repeat(n)),
  );
}

/** Hostile strings up to 5,000 characters: longer than any limit Signet sets on a field. */
export const hostileString: fc.Arbitrary<string> = hostileStrings(5000);

/** Any JSON value, small enough for ten thousand runs, with `strings` mixed in. */
export function jsonWith(strings: fc.Arbitrary<string>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { depthSize: 'small' },
    fc.jsonValue({ maxDepth: 4 }),
    strings,
    fc.constantFrom(null, true, false, 0, -1, 1.5, Number.MAX_SAFE_INTEGER, 1e308, [], {}),
    fc.array(strings, { maxLength: 4 }),
    fc.dictionary(strings, strings, { maxKeys: 4 }),
  );
}

/** Any JSON value, with hostile strings mixed in. */
export const anyJson: fc.Arbitrary<unknown> = jsonWith(hostileString);

/** A value to put in place of another: type changes, `strings`, nothing at all. */
export function replacementWith(strings: fc.Arbitrary<string>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: strings },
    { weight: 2, arbitrary: jsonWith(strings) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

const replacement = replacementWith(hostileString);

/**
 * One to three mutations of `base` at random places: a value replaced by another, or removed.
 * `values` are the replacements; by default hostile strings, arbitrary JSON and removal.
 */
export function mutated(base: unknown, values: fc.Arbitrary<unknown> = replacement): fc.Arbitrary<unknown> {
  return fc.array(fc.tuple(fc.nat(), values), { minLength: 1, maxLength: 3 }).map((mutations) => {
    let doc = structuredClone(base);
    for (const [at, value] of mutations) {
      const paths = pathsOf(doc);
      // Copies, so that one generated value never aliases another or the base.
      doc = setIn(doc, paths[at % paths.length] as JsonPath, structuredClone(value));
    }
    return doc;
  });
}

/**
 * Mutations of one of several fixtures; `plausible` values, when given, are used as often as
 * `others` (by default hostile strings, arbitrary JSON and removal).
 */
export function mutatedFixtures(
  bases: readonly unknown[],
  plausible?: fc.Arbitrary<unknown>,
  others: fc.Arbitrary<unknown> = replacement,
): fc.Arbitrary<unknown> {
  const values = plausible === undefined ? others : fc.oneof(others, plausible);
  return fc.oneof(...bases.map((base) => mutated(base, values)));
}

/**
 * Fails unless `error` is a caller's-fault rejection: an InputError of one of `codes`, answered
 * 4xx, naming a non-empty field.
 */
export function expectInputRejection(error: unknown, codes: readonly string[]): void {
  if (!(error instanceof InputError)) throw error;
  check(codes.includes(error.code), `unexpected code ${error.code}`, error);
  const status = httpStatusOf(error);
  check(status >= 400 && status < 500, `answered ${status}`, error);
  check(typeof error.field === 'string' && error.field.length > 0, 'names no field', error);
  check(error.message.length > error.field.length, 'says nothing beyond the field', error);
}

/**
 * A plain assertion: jest's `expect` costs more than the parsers under test, and these run
 * ten thousand times a property.
 */
export function check(condition: boolean, message: string, subject?: unknown): asserts condition {
  if (!condition) {
    const detail = subject instanceof Error ? `${subject.name}: ${subject.message}` : JSON.stringify(subject);
    throw new Error(`${message}${subject !== undefined ? ` (${detail?.slice(0, 500)})` : ''}`);
  }
}
