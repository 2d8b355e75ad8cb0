/**
 * Globs over slash-separated names (repositories, image references): `*` and `?` stay inside one
 * segment, `**` crosses `/` (as in the Sigstore policy-controller). Matching simulates the
 * pattern as a set of states over the input, so its cost is bounded by pattern × input length
 * and no pattern can make it backtrack catastrophically.
 */

/** A compiled glob. */
export interface Glob {
  readonly pattern: string;
  test(input: string): boolean;
}

type Token =
  | { readonly $case: 'literal'; readonly char: string }
  | { readonly $case: 'any' } // ?
  | { readonly $case: 'star' } // *
  | { readonly $case: 'globstar' }; // **

export const MAX_GLOB_LENGTH = 512;

/** A reason the pattern is unusable, or undefined when it is a valid glob. */
export function validateGlob(pattern: string): string | undefined {
  if (typeof pattern !== 'string' || pattern.length === 0) return 'must be a non-empty glob';
  if (pattern.length > MAX_GLOB_LENGTH) return `must be at most ${MAX_GLOB_LENGTH} characters`;
  if (pattern.includes('***')) return '"***" is not a wildcard; use "**" to cross "/"';
  if (/[[\]{}\\]/.test(pattern)) return 'only the wildcards "*", "**" and "?" are supported';
  if (/\s/.test(pattern)) return 'must not contain whitespace';
  return undefined;
}

function tokenize(pattern: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (char === '*') {
      if (pattern[i + 1] === '*') {
        tokens.push({ $case: 'globstar' });
        i++;
      } else {
        tokens.push({ $case: 'star' });
      }
    } else if (char === '?') {
      tokens.push({ $case: 'any' });
    } else {
      tokens.push({ $case: 'literal', char });
    }
  }
  return tokens;
}

/** Compiles a glob; throws when `validateGlob` would reject it (callers validate config first). */
export function compileGlob(pattern: string): Glob {
  const problem = validateGlob(pattern);
  if (problem !== undefined) throw new Error(`invalid glob "${pattern}": ${problem}`);
  const tokens = tokenize(pattern);
  const literalOnly = tokens.every((t) => t.$case === 'literal');
  if (literalOnly) return { pattern, test: (input) => input === pattern };
  return { pattern, test: (input) => matchTokens(tokens, input) };
}

function matchTokens(tokens: readonly Token[], input: string): boolean {
  const n = tokens.length;
  // active[i]: the pattern can be at token i having consumed the input so far.
  let active = new Uint8Array(n + 1);
  let next = new Uint8Array(n + 1);
  active[0] = 1;
  closeOverStars(tokens, active);
  for (let pos = 0; pos < input.length; pos++) {
    const char = input[pos] as string;
    next.fill(0);
    let any = false;
    for (let i = 0; i < n; i++) {
      if (active[i] === 0) continue;
      const token = tokens[i] as Token;
      switch (token.$case) {
        case 'literal':
          if (token.char === char) {
            next[i + 1] = 1;
            any = true;
          }
          break;
        case 'any':
          if (char !== '/') {
            next[i + 1] = 1;
            any = true;
          }
          break;
        case 'star':
          if (char !== '/') {
            next[i] = 1;
            any = true;
          }
          break;
        case 'globstar':
          next[i] = 1;
          any = true;
          break;
      }
    }
    if (!any) return false;
    closeOverStars(tokens, next);
    [active, next] = [next, active];
  }
  return active[n] === 1;
}

/** Stars may match the empty string: a state at a star also stands after it. */
function closeOverStars(tokens: readonly Token[], states: Uint8Array): void {
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as Token;
    if (states[i] === 1 && (token.$case === 'star' || token.$case === 'globstar')) states[i + 1] = 1;
  }
}

/** True when any of the globs matches. */
export function matchesAny(globs: readonly Glob[], input: string): boolean {
  return globs.some((glob) => glob.test(input));
}
