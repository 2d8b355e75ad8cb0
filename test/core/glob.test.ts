import { compileGlob, matchesAny, MAX_GLOB_LENGTH, validateGlob } from '../../lib/core/glob';

const matches = (pattern: string, input: string): boolean => compileGlob(pattern).test(input);

describe('compileGlob', () => {
  describe('with a literal pattern', () => {
    it('matches only the identical string', () => {
      expect(matches('team-a/app', 'team-a/app')).toBe(true);
      expect(matches('team-a/app', 'team-a/app2')).toBe(false);
      expect(matches('team-a/app', 'team-a')).toBe(false);
      expect(matches('team-a/app', '')).toBe(false);
    });

    it('treats regular-expression characters as themselves', () => {
      expect(matches('ghcr.io/x', 'ghcr.io/x')).toBe(true);
      expect(matches('ghcr.io/x', 'ghcrXio/x')).toBe(false);
      expect(matches('a+b(c)^$|', 'a+b(c)^$|')).toBe(true);
      expect(matches('a+b', 'aab')).toBe(false);
    });

    it('keeps its source pattern', () => {
      expect(compileGlob('team-a/*').pattern).toBe('team-a/*');
    });
  });

  describe('with "*"', () => {
    it('matches any run of characters inside one segment', () => {
      expect(matches('team-a/*', 'team-a/app')).toBe(true);
      expect(matches('team-*/app', 'team-b/app')).toBe(true);
      expect(matches('*/app', 'team-a/app')).toBe(true);
      expect(matches('team-a/app-*-prod', 'team-a/app-web-prod')).toBe(true);
    });

    it('matches the empty string', () => {
      expect(matches('team-a/app*', 'team-a/app')).toBe(true);
      expect(matches('team-a/*', 'team-a/')).toBe(true);
    });

    it('does not cross "/"', () => {
      expect(matches('team-a/*', 'team-a/sub/app')).toBe(false);
      expect(matches('*', 'team-a/app')).toBe(false);
      expect(matches('team-*', 'team-a/app')).toBe(false);
    });

    it('still requires the literal characters around it', () => {
      expect(matches('team-a/*-prod', 'team-a/app-dev')).toBe(false);
      expect(matches('*/app', 'team-a/api')).toBe(false);
    });
  });

  describe('with "?"', () => {
    it('matches exactly one character', () => {
      expect(matches('team-?/app', 'team-a/app')).toBe(true);
      expect(matches('team-?/app', 'team-/app')).toBe(false);
      expect(matches('team-?/app', 'team-ab/app')).toBe(false);
    });

    it('does not match "/"', () => {
      expect(matches('team-a?app', 'team-a/app')).toBe(false);
    });
  });

  describe('with "**"', () => {
    it('crosses "/"', () => {
      expect(matches('team-a/**', 'team-a/app')).toBe(true);
      expect(matches('team-a/**', 'team-a/sub/app')).toBe(true);
      expect(matches('**', 'registry.example.com/team-a/sub/app')).toBe(true);
      expect(matches('**/app', 'team-a/sub/app')).toBe(true);
      expect(matches('ghcr.io/**/app', 'ghcr.io/org/team/app')).toBe(true);
    });

    it('matches the empty string', () => {
      expect(matches('team-a/**', 'team-a/')).toBe(true);
      expect(matches('team-a/app**', 'team-a/app')).toBe(true);
    });

    it('still requires the literal characters around it', () => {
      expect(matches('team-a/**', 'team-b/app')).toBe(false);
      expect(matches('team-a/**', 'team-a')).toBe(false);
      expect(matches('**/app', 'team-a/api')).toBe(false);
    });

    it('combines with "*" and "?"', () => {
      expect(matches('team-?/**/*-prod', 'team-a/x/y/app-prod')).toBe(true);
      expect(matches('team-?/**/*-prod', 'team-a/x/y/app-dev')).toBe(false);
    });
  });

  describe('with a pathological pattern', () => {
    it('returns false for 30 "*a" segments against a 4,000-character input without hanging', () => {
      const pattern = '*a'.repeat(30);
      // Every prefix keeps every state alive; only the last character decides.
      const input = `${'a'.repeat(3_999)}b`;
      expect(input).toHaveLength(4_000);
      expect(matches(pattern, input)).toBe(false);
    });

    it('still matches when the input does match', () => {
      expect(matches('*a'.repeat(30), 'a'.repeat(4_000))).toBe(true);
    });

    it('returns false for repeated "**a" against a long non-matching input without hanging', () => {
      expect(matches('**a'.repeat(30), `${'a/'.repeat(2_000)}b`)).toBe(false);
    });
  });

  describe('when the pattern is invalid', () => {
    it.each([
      '',
      '***',
      'team-[ab]/app',
      'team-{a,b}/app',
      'team\\a',
      'team a',
      'x'.repeat(MAX_GLOB_LENGTH + 1),
    ])('throws for %j', (pattern) => {
      expect(() => compileGlob(pattern)).toThrow(Error);
    });
  });
});

describe('validateGlob', () => {
  it.each(['team-a/app', 'team-a/*', 'team-?/**', '**', 'ghcr.io/org/**/app-*', 'x'.repeat(MAX_GLOB_LENGTH)])(
    'accepts %j',
    (pattern) => {
      expect(validateGlob(pattern)).toBeUndefined();
    },
  );

  it.each([
    ['an empty pattern', ''],
    ['a pattern longer than the maximum', 'x'.repeat(MAX_GLOB_LENGTH + 1)],
    ['"***"', 'team-a/***'],
    ['a character class', 'team-[ab]/app'],
    ['braces', 'team-{a,b}/app'],
    ['a backslash', 'team\\*'],
    ['a space', 'team a/app'],
    ['a tab', 'team\ta/app'],
    ['a newline', 'team-a/app\n'],
  ])('rejects %s', (_name, pattern) => {
    const reason = validateGlob(pattern);
    expect(typeof reason).toBe('string');
    expect(reason?.length).toBeGreaterThan(0);
  });

  it('rejects a non-string', () => {
    expect(validateGlob(undefined as unknown as string)).toEqual(expect.any(String));
  });
});

describe('matchesAny', () => {
  const globs = ['team-a/*', 'team-b/**'].map(compileGlob);

  it('is true when one glob matches', () => {
    expect(matchesAny(globs, 'team-b/x/y')).toBe(true);
    expect(matchesAny(globs, 'team-a/app')).toBe(true);
  });

  it('is false when none matches', () => {
    expect(matchesAny(globs, 'team-a/x/y')).toBe(false);
  });

  it('is false for no globs', () => {
    expect(matchesAny([], 'team-a/app')).toBe(false);
  });
});
