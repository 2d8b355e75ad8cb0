/**
 * The syntax of subject patterns: a subset of RE2 (Go's `regexp`, which cosign, Kyverno and the
 * policy-controller use for `subjectRegExp`) parsed into a tree. Only constructs that a finite
 * automaton can match are accepted: no backreferences, no lookaround, no flags. See `pattern.ts`
 * for how the tree is matched in linear time.
 */

/** A set of Unicode code points as sorted, disjoint, inclusive ranges. */
export type CodePointSet = readonly (readonly [number, number])[];

/** A parsed pattern. A tagged union: switch on `$case`. */
export type PatternNode =
  | { readonly $case: 'empty' }
  | { readonly $case: 'set'; readonly set: CodePointSet }
  | { readonly $case: 'concat'; readonly items: readonly PatternNode[] }
  | { readonly $case: 'alternate'; readonly items: readonly PatternNode[] }
  | {
      readonly $case: 'repeat';
      readonly node: PatternNode;
      readonly min: number;
      /** Undefined for no upper bound (`*`, `+`, `{n,}`). */
      readonly max: number | undefined;
    }
  | { readonly $case: 'assert'; readonly at: 'begin' | 'end' };

/** A pattern Signet cannot accept, with the offset (in UTF-16 units) where the problem is. */
export class PatternSyntaxError extends Error {
  override readonly name = 'PatternSyntaxError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
  }
}

/** RE2's limit on a counted repetition (`x{1001}` is an error there too). */
export const MAX_REPEAT = 1000;
const MAX_NESTING = 100;
const MAX_CODE_POINT = 0x10ffff;

const range = (lo: number, hi: number): readonly [number, number] => [lo, hi];
const ch = (c: string): number => c.codePointAt(0) as number;
const DIGIT: CodePointSet = [range(ch('0'), ch('9'))];
const WORD: CodePointSet = [
  range(ch('0'), ch('9')),
  range(ch('A'), ch('Z')),
  range(ch('_'), ch('_')),
  range(ch('a'), ch('z')),
];
// RE2's \s is ASCII only: tab, newline, form feed, carriage return, space.
const SPACE: CodePointSet = [range(9, 10), range(12, 13), range(32, 32)];
const ANY_BUT_NEWLINE: CodePointSet = [range(0, 9), range(11, MAX_CODE_POINT)];

/** Sorts and merges ranges into a canonical set. */
export function normalize(ranges: readonly (readonly [number, number])[]): CodePointSet {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** Every code point not in `set`. */
export function complement(set: CodePointSet): CodePointSet {
  const out: (readonly [number, number])[] = [];
  let next = 0;
  for (const [lo, hi] of normalize(set)) {
    if (lo > next) out.push(range(next, lo - 1));
    next = hi + 1;
  }
  if (next <= MAX_CODE_POINT) out.push(range(next, MAX_CODE_POINT));
  return out;
}

const CLASS_ESCAPES: Readonly<Record<string, CodePointSet>> = {
  d: DIGIT,
  D: complement(DIGIT),
  w: WORD,
  W: complement(WORD),
  s: SPACE,
  S: complement(SPACE),
};
const CONTROL_ESCAPES: Readonly<Record<string, number>> = { t: 9, n: 10, v: 11, f: 12, r: 13, a: 7 };
const ASCII_PUNCTUATION = /^[!-/:-@[-`{-~]$/;

/** Parses `source`; throws PatternSyntaxError for anything outside the accepted subset. */
export function parsePattern(source: string): PatternNode {
  const parser = new Parser(source);
  const node = parser.alternation(0);
  if (!parser.done()) throw new PatternSyntaxError('unmatched ")"', parser.pos);
  return node;
}

class Parser {
  pos = 0;
  constructor(private readonly src: string) {}

  done(): boolean {
    return this.pos >= this.src.length;
  }

  private peek(offset = 0): string | undefined {
    return this.src[this.pos + offset];
  }

  /** The next whole code point (a surrogate pair counts as one). */
  private take(): number {
    const cp = this.src.codePointAt(this.pos) as number;
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }

  private fail(message: string, at = this.pos): never {
    throw new PatternSyntaxError(message, at);
  }

  alternation(depth: number): PatternNode {
    if (depth > MAX_NESTING) this.fail(`groups nest deeper than ${MAX_NESTING}`);
    const items = [this.concatenation(depth)];
    while (this.peek() === '|') {
      this.pos++;
      items.push(this.concatenation(depth));
    }
    return items.length === 1 ? (items[0] as PatternNode) : { $case: 'alternate', items };
  }

  private concatenation(depth: number): PatternNode {
    const items: PatternNode[] = [];
    while (!this.done() && this.peek() !== '|' && this.peek() !== ')') {
      const start = this.pos;
      const atom = this.atom(depth);
      items.push(this.repetitions(atom, start));
    }
    if (items.length === 0) return { $case: 'empty' };
    return items.length === 1 ? (items[0] as PatternNode) : { $case: 'concat', items };
  }

  /** Applies the quantifiers that follow an atom; one per atom, as in RE2. */
  private repetitions(atom: PatternNode, start: number): PatternNode {
    const bounds = this.quantifier();
    if (bounds === undefined) return atom;
    if (atom.$case === 'assert') this.fail('a repeated anchor matches nothing new', start);
    if (this.peek() === '?') this.pos++; // lazy: the same set of matches
    if (this.quantifierAhead()) this.fail('a repetition of a repetition is not allowed');
    return { $case: 'repeat', node: atom, min: bounds.min, max: bounds.max };
  }

  private quantifierAhead(): boolean {
    const c = this.peek();
    if (c === '*' || c === '+' || c === '?') return true;
    return c === '{' && this.countedBounds(false) !== undefined;
  }

  private quantifier(): { min: number; max: number | undefined } | undefined {
    switch (this.peek()) {
      case '*':
        this.pos++;
        return { min: 0, max: undefined };
      case '+':
        this.pos++;
        return { min: 1, max: undefined };
      case '?':
        this.pos++;
        return { min: 0, max: 1 };
      case '{':
        return this.countedBounds(true);
      default:
        return undefined;
    }
  }

  /** `{n}`, `{n,}` or `{n,m}`; anything else after `{` is a literal `{`, as in RE2. */
  private countedBounds(consume: boolean): { min: number; max: number | undefined } | undefined {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
    if (m === null) return undefined;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? undefined : Number(m[3]);
    if (min > MAX_REPEAT || (max !== undefined && max > MAX_REPEAT)) {
      this.fail(`a counted repetition may not exceed ${MAX_REPEAT}`);
    }
    if (max !== undefined && max < min) this.fail(`the repetition {${min},${max}} is empty`);
    if (consume) this.pos += m[0].length;
    return { min, max };
  }

  private atom(depth: number): PatternNode {
    const start = this.pos;
    const c = this.peek() as string;
    switch (c) {
      case '(':
        return this.group(depth);
      case '[':
        return { $case: 'set', set: this.bracket() };
      case '.':
        this.pos++;
        return { $case: 'set', set: ANY_BUT_NEWLINE };
      case '^':
        this.pos++;
        return { $case: 'assert', at: 'begin' };
      case '$':
        this.pos++;
        return { $case: 'assert', at: 'end' };
      case '\\':
        return this.escape(false);
      case '*':
      case '+':
      case '?':
        return this.fail(`"${c}" has nothing to repeat`, start);
      case '{':
        if (this.countedBounds(false) !== undefined) this.fail('a counted repetition has nothing to repeat');
        this.pos++;
        return { $case: 'set', set: [range(ch('{'), ch('{'))] };
      default: {
        const cp = this.take();
        return { $case: 'set', set: [range(cp, cp)] };
      }
    }
  }

  private group(depth: number): PatternNode {
    const open = this.pos;
    this.pos++;
    if (this.peek() === '?') {
      const named = /^\?P?<[A-Za-z_][A-Za-z0-9_]*>/.exec(this.src.slice(this.pos));
      if (this.peek(1) === ':') this.pos += 2;
      else if (named !== null) this.pos += named[0].length;
      else this.fail('flags and lookaround ("(?i)", "(?=", "(?!") are not supported');
    }
    const inner = this.alternation(depth + 1);
    if (this.peek() !== ')') this.fail('missing ")"', open);
    this.pos++;
    return inner;
  }

  /** An escape outside (`inClass` false) or inside a bracket expression. */
  private escape(inClass: boolean): PatternNode & { $case: 'set' | 'assert' } {
    const start = this.pos;
    this.pos++;
    if (this.done()) this.fail('trailing "\\"', start);
    const c = this.peek() as string;
    const classSet = CLASS_ESCAPES[c];
    if (classSet !== undefined) {
      this.pos++;
      return { $case: 'set', set: classSet };
    }
    const control = CONTROL_ESCAPES[c];
    if (control !== undefined) {
      this.pos++;
      return { $case: 'set', set: [range(control, control)] };
    }
    if (!inClass && (c === 'A' || c === 'z')) {
      this.pos++;
      return { $case: 'assert', at: c === 'A' ? 'begin' : 'end' };
    }
    if (c === 'x') return this.hexEscape(start);
    if (ASCII_PUNCTUATION.test(c)) {
      this.pos++;
      const cp = ch(c);
      return { $case: 'set', set: [range(cp, cp)] };
    }
    return this.fail(`the escape "\\${c}" is not supported`, start);
  }

  private hexEscape(start: number): PatternNode & { $case: 'set' } {
    const m = /^x(?:\{([0-9A-Fa-f]{1,6})\}|([0-9A-Fa-f]{2}))/.exec(this.src.slice(this.pos));
    if (m === null) this.fail('"\\x" needs two hex digits or {hex}', start);
    const cp = parseInt((m[1] ?? m[2]) as string, 16);
    if (cp > MAX_CODE_POINT) this.fail('code point out of range', start);
    this.pos += m[0].length;
    return { $case: 'set', set: [range(cp, cp)] };
  }

  /** `[...]` or `[^...]`; `]` first is literal, `-` first or last is literal. */
  private bracket(): CodePointSet {
    const open = this.pos;
    this.pos++;
    const negated = this.peek() === '^';
    if (negated) this.pos++;
    const ranges: (readonly [number, number])[] = [];
    let first = true;
    while (this.peek() !== ']' || first) {
      if (this.done()) this.fail('missing "]"', open);
      if (this.src.startsWith('[:', this.pos)) this.fail('POSIX classes ("[:alpha:]") are not supported');
      first = false;
      const lo = this.classAtom();
      if (this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== undefined) {
        const dash = this.pos;
        this.pos++;
        const hi = this.classAtom();
        if (lo.length !== 1 || hi.length !== 1 || lo[0]?.[0] !== lo[0]?.[1] || hi[0]?.[0] !== hi[0]?.[1]) {
          this.fail('a range needs a single character at each end', dash);
        }
        const from = (lo[0] as readonly [number, number])[0];
        const to = (hi[0] as readonly [number, number])[0];
        if (to < from) this.fail('a range ends before it starts', dash);
        ranges.push(range(from, to));
      } else {
        ranges.push(...lo);
      }
    }
    this.pos++;
    const set = normalize(ranges);
    return negated ? complement(set) : set;
  }

  private classAtom(): CodePointSet {
    if (this.peek() === '\\') {
      const escaped = this.escape(true);
      if (escaped.$case !== 'set') this.fail('an anchor cannot stand in a bracket expression');
      return escaped.set;
    }
    const cp = this.take();
    return [range(cp, cp)];
  }
}
