/**
 * The config loader on test/fixtures/config/mixed.yaml (the richest config) mutated in place: a value (scalar, list or mapping)
 * replaced by another written in YAML flow style, or removed; lines dropped, repeated, swapped or
 * re-indented. Mutations edit the file's text at the positions of its nodes, so each run costs
 * one parse and the result keeps the file's comments and layout around the edit. Either the
 * config loads and holds together, or ConfigError CONFIG_INVALID lists every problem by field.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { isMap, isNode, isPair, isSeq, parseDocument } from 'yaml';
import { hostileStrings, jsonWith, RUNS } from './arbitraries';
import { loadOrList } from './load-config';

const EXAMPLE = readFileSync(join(__dirname, '..', 'fixtures', 'config', 'mixed.yaml'), 'utf8');

/** Where every value of the example sits in its text: [start, end) of each node. */
function valueRanges(text: string): readonly (readonly [number, number])[] {
  const ranges: [number, number][] = [];
  const visit = (node: unknown): void => {
    if (isNode(node) && node.range) ranges.push([node.range[0], node.range[1]]);
    if (isMap(node) || isSeq(node)) {
      for (const item of node.items as unknown[]) {
        if (isPair(item)) visit(item.value);
        else visit(item);
      }
    }
  };
  visit(parseDocument(text).contents);
  return ranges;
}

const RANGES = valueRanges(EXAMPLE);
const LINES = EXAMPLE.split('\n');

/** Values a mutation may put in a config: plausible settings, wrong types, wrong names. */
const PLAUSIBLE = fc.constantFrom<unknown>(
  'release',
  'release-ec',
  'kms-release',
  'partner',
  'nobody',
  'file://keys/other.pem',
  'awskms:///alias/other',
  'awskms://127.0.0.1:4566/alias/other',
  'awskms:///arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  'RSA_PKCS1_SHA_256',
  'ECDSA_SHA_384',
  'RSASSA_PSS_SHA_512',
  'simple',
  'default',
  'manual',
  'enforce',
  'audit',
  'deny',
  'allow',
  'warn',
  '*',
  '**',
  ['*'],
  ['team-a', 'team-a'],
  [],
  {},
  0,
  -1,
  65536,
  3,
  true,
  'true',
  null,
  [{ count: 5, witnesses: ['release'] }],
  [{ count: 0, witnesses: [] }],
  { host: '127.0.0.1:5000', insecure: true },
  { host: 'registry.example.com', auth: { username: 'u', passwordEnv: 'NOPE' } },
);

/** A replacement as YAML flow text; `undefined` removes the value (leaving `key:`, i.e. null). */
const replacement: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: PLAUSIBLE.map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: jsonWith(hostileStrings(200)).map((v) => JSON.stringify(v) ?? '') },
  { weight: 1, arbitrary: hostileStrings(200) },
);

type Edit =
  | { readonly $case: 'value'; readonly at: number; readonly text: string }
  | {
      readonly $case: 'line';
      readonly at: number;
      readonly kind: 'drop' | 'repeat' | 'swap' | 'indent' | 'dedent';
    };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ $case: fc.constant('value' as const), at: fc.nat(), text: replacement }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      $case: fc.constant('line' as const),
      at: fc.nat(),
      kind: fc.constantFrom(
        'drop' as const,
        'repeat' as const,
        'swap' as const,
        'indent' as const,
        'dedent' as const,
      ),
    }),
  },
);

/** Applies value edits (non-overlapping, last first, so earlier offsets stay right), then line edits. */
function apply(edits: readonly Edit[]): string {
  let text = EXAMPLE;
  const values = edits
    .filter((e): e is Extract<Edit, { $case: 'value' }> => e.$case === 'value')
    .map((e) => ({ range: RANGES[e.at % RANGES.length] as readonly [number, number], text: e.text }))
    .sort((a, b) => b.range[0] - a.range[0]);
  let floor = Infinity;
  for (const { range, text: replacementText } of values) {
    if (range[1] > floor) continue;
    text = text.slice(0, range[0]) + replacementText + text.slice(range[1]);
    floor = range[0];
  }
  const lines = text === EXAMPLE ? [...LINES] : text.split('\n');
  for (const e of edits) {
    if (e.$case !== 'line') continue;
    const i = e.at % lines.length;
    const line = lines[i] as string;
    switch (e.kind) {
      case 'drop':
        lines.splice(i, 1);
        break;
      case 'repeat':
        lines.splice(i, 0, line);
        break;
      case 'swap':
        lines[i] = lines[(i + 1) % lines.length] as string;
        lines[(i + 1) % lines.length] = line;
        break;
      case 'indent':
        lines[i] = `  ${line}`;
        break;
      case 'dedent':
        lines[i] = line.replace(/^ {1,2}/, '');
        break;
    }
  }
  return lines.join('\n');
}

describe('parseConfig on a mutated mixed.yaml', () => {
  it('loads it unchanged', () => {
    expect(loadOrList(EXAMPLE)).toBe('loaded');
  });

  it('loads or lists every problem, reaching both outcomes', () => {
    const seen = { loaded: 0, invalid: 0 };
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
        seen[loadOrList(apply(edits))]++;
      }),
      { numRuns: RUNS },
    );
    expect(seen.loaded).toBeGreaterThan(RUNS / 100);
    expect(seen.invalid).toBeGreaterThan(RUNS / 100);
  });
});
