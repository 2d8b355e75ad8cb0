import fc from 'fast-check';
import { ConfigError } from '../../lib/core/errors';
import { compilePattern, MAX_PATTERN_LENGTH, validatePattern } from '../../lib/sigstore/pattern';

const matches = (pattern: string, input: string): boolean => compilePattern(pattern).test(input);

const WORKFLOW =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';

describe('compilePattern', () => {
  describe('with the patterns keyless policies use', () => {
    it('matches a workflow identity by organisation and ref', () => {
      const pattern = String.raw`https://github\.com/sigstore-conformance/[^/]+/\.github/workflows/[^@]+@refs/heads/main`;
      expect(matches(pattern, WORKFLOW)).toBe(true);
      expect(matches(pattern, WORKFLOW.replace('refs/heads/main', 'refs/heads/evil'))).toBe(false);
      expect(matches(pattern, WORKFLOW.replace('sigstore-conformance', 'attacker'))).toBe(false);
    });

    it('matches release tags with counted repetitions and alternation', () => {
      const pattern = String.raw`.+@refs/(heads/main|tags/v\d+(\.\d+){0,2})`;
      expect(matches(pattern, 'x@refs/tags/v1.2.3')).toBe(true);
      expect(matches(pattern, 'x@refs/tags/v1')).toBe(true);
      expect(matches(pattern, 'x@refs/tags/v1.2.3.4')).toBe(false);
      expect(matches(pattern, 'x@refs/heads/main')).toBe(true);
    });

    it('matches e-mail subjects with classes', () => {
      expect(matches(String.raw`[a-z.]+@example\.com`, 'release.bot@example.com')).toBe(true);
      expect(matches(String.raw`[a-z.]+@example\.com`, 'release.bot@example.com.evil')).toBe(false);
      expect(matches(String.raw`[^@\s]+@(example|corp)\.com`, 'a@corp.com')).toBe(true);
    });
  });

  describe('when the pattern does not cover the whole subject', () => {
    it('does not match: the match is whole, as if anchored', () => {
      expect(matches(String.raw`https://github\.com/org/`, 'https://github.com/org/repo')).toBe(false);
      expect(matches('repo', 'https://github.com/org/repo')).toBe(false);
    });

    it('treats explicit anchors at the ends as no-ops', () => {
      expect(matches('^abc$', 'abc')).toBe(true);
      expect(matches(String.raw`\Aabc\z`, 'abc')).toBe(true);
      expect(matches('a^b', 'ab')).toBe(false);
    });
  });

  describe('with escapes and code points', () => {
    it('reads RE2 escapes', () => {
      expect(matches(String.raw`\d\D\w\W\s\S`, '1x_- x')).toBe(true);
      expect(matches(String.raw`\x41\x{1F600}`, 'A😀')).toBe(true);
      expect(matches(String.raw`a\.b\/c\-d`, 'a.b/c-d')).toBe(true);
      expect(matches(String.raw`[\]\-]+`, ']-]')).toBe(true);
    });

    it('steps over whole code points', () => {
      expect(matches('.', '😀')).toBe(true);
      expect(matches('..', '😀')).toBe(false);
      expect(matches('[😀-😂]', '😁')).toBe(true);
    });

    it('does not let "." match a newline', () => {
      expect(matches('a.b', 'a\nb')).toBe(false);
    });

    it('reads a "{" that starts no repetition as a literal, as RE2 does', () => {
      expect(matches('a{,2}', 'a{,2}')).toBe(true);
      expect(matches('a{x}', 'a{x}')).toBe(true);
    });
  });

  it('keeps its source', () => {
    expect(compilePattern('a+').source).toBe('a+');
  });
});

describe('validatePattern', () => {
  it.each([
    ['nothing in it', ''],
    ['an unclosed group', '(a'],
    ['an unmatched ")"', 'a)'],
    ['an unclosed class', '[a'],
    ['nothing to repeat', '*a'],
    ['a repeated repetition', 'a**'],
    ['a backreference', String.raw`(a)\1`],
    ['a lookahead', '(?=a)'],
    ['flags', '(?i)a'],
    ['a word boundary', String.raw`\bword\b`],
    ['a POSIX class', '[[:alpha:]]'],
    ['a reversed range', '[z-a]'],
    ['a count over the RE2 limit', 'a{1001}'],
    ['too large a program', '(a{1000}){1000}'],
    ['a repeated anchor', '^*'],
    ['too many characters', 'a'.repeat(MAX_PATTERN_LENGTH + 1)],
    ['too deep a nesting', '('.repeat(200) + ')'.repeat(200)],
  ])('rejects a pattern with %s', (_reason, pattern) => {
    expect(validatePattern(pattern)).toEqual(expect.any(String));
  });

  it('accepts named and non-capturing groups', () => {
    expect(validatePattern('(?:a)(?P<x>b)(?<y>c)')).toBeUndefined();
    expect(matches('(?:a)(?P<x>b)(?<y>c)', 'abc')).toBe(true);
  });

  it('makes compilePattern throw ConfigError CONFIG_INVALID', () => {
    expect(() => compilePattern('(a')).toThrowWithCode(ConfigError, 'CONFIG_INVALID');
  });
});

describe('on patterns that make a backtracking engine explode', () => {
  // Each would take exponential (or high-polynomial) time in JavaScript's RegExp on the input.
  const PATHOLOGICAL: readonly [string, (n: number) => string][] = [
    ['(a+)+$', (n) => 'a'.repeat(n) + 'b'],
    ['(a|a)*b', (n) => 'a'.repeat(n)],
    ['(a*)*b', (n) => 'a'.repeat(n)],
    ['(a|aa)+c', (n) => 'a'.repeat(n)],
    [String.raw`(\w+\s?)*$`, (n) => 'word '.repeat(n / 5) + '!'],
    ['(.*a){20}', (n) => 'a'.repeat(n)],
    ['(x+x+)+y', (n) => 'x'.repeat(n)],
  ];

  describe.each(PATHOLOGICAL)('%s', (source, input) => {
    const pattern = compilePattern(source);

    it('costs at most 2 × program size steps per code point', () => {
      for (const n of [100, 1000, 10_000]) {
        const text = input(n);
        expect(pattern.run(text).steps).toBeLessThanOrEqual(2 * pattern.size * (text.length + 1));
      }
    });

    it('grows linearly with the subject: 8 times the input, at most 8 times the steps (+1%)', () => {
      const small = pattern.run(input(1000)).steps;
      const large = pattern.run(input(8000)).steps;
      expect(large).toBeLessThanOrEqual(8 * small * 1.01);
    });
  });
});

describe('against JavaScript RegExp on small inputs', () => {
  // Patterns over a tiny alphabet, where both engines must agree (RegExp is safe at this size).
  const atom = fc.constantFrom('a', 'b', '.', '[ab]', '[^a]', String.raw`\d`, '1');
  const pattern: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      atom,
      fc.tuple(tie('node'), tie('node')).map(([a, b]) => a + b),
      fc.tuple(tie('node'), tie('node')).map(([a, b]) => `(?:${a}|${b})`),
      fc
        .tuple(tie('node'), fc.constantFrom('*', '+', '?', '{2}', '{1,3}', '{0,}'))
        .map(([a, q]) => `(?:${a})${q}`),
    ),
  })).node;
  const subject = fc.stringMatching(/^[ab1c]{0,8}$/);

  it('gives the same answer as ^(?:pattern)$', () => {
    fc.assert(
      fc.property(pattern, subject, (source, text) => {
        expect(matches(source, text)).toBe(new RegExp(`^(?:${source})$`, 'u').test(text));
      }),
      { numRuns: 500 },
    );
  });
});
