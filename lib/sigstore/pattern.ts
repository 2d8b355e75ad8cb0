/**
 * Subject patterns (`subjectRegExp`) matched in time linear in the subject's length.
 *
 * JavaScript's RegExp backtracks: `(a+)+$` against a long run of `a`s takes exponential time, and
 * a pattern comes from configuration while the subject comes from a certificate anyone can mint.
 * So patterns are parsed (RE2 syntax, see `pattern-syntax.ts`), compiled to a Thompson NFA, and
 * run as a set of states (a Pike VM without captures): every input code point advances each live
 * state at most once, so a match costs at most `2 × program size × (subject length + 1)` steps,
 * whatever the pattern. Counted repetitions are expanded, and the program size is capped.
 *
 * A pattern must match the WHOLE subject, as if written `^(?:pattern)$`. Go's `MatchString`
 * (cosign, Kyverno, policy-controller) searches instead; a pattern written for them without
 * anchors may therefore match fewer subjects here, never more: the difference fails closed.
 */
import { ConfigError } from '../core/errors';
import { parsePattern, PatternSyntaxError, type CodePointSet, type PatternNode } from './pattern-syntax';

/** A compiled subject pattern. */
export interface SubjectPattern {
  readonly source: string;
  /** Instructions in the compiled program (bounds the cost per input code point). */
  readonly size: number;
  /** True when the pattern matches the whole of `input`. */
  test(input: string): boolean;
  /** `test`, with the number of automaton steps it took (for tests and benchmarks). */
  run(input: string): PatternRun;
}

/** The outcome of one match, with its cost in automaton steps. */
export interface PatternRun {
  readonly matched: boolean;
  readonly steps: number;
}

/** Longest pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 1024;
/** Largest compiled program accepted, in instructions (counted repetitions multiply). */
export const MAX_PROGRAM_SIZE = 20_000;

type Instruction =
  | { readonly op: 'set'; readonly set: CodePointSet } // consume one code point in `set`, go on to pc+1
  | { readonly op: 'split'; readonly to: number; alt: number } // try both `to` and `alt`
  | { readonly op: 'jump'; to: number }
  | { readonly op: 'assert'; readonly at: 'begin' | 'end' } // go on to pc+1 at the subject's start/end
  | { readonly op: 'match' };

/** Why `source` cannot be a subject pattern, or undefined when it can. */
export function validatePattern(source: string): string | undefined {
  if (typeof source !== 'string' || source.length === 0) return 'must be a non-empty regular expression';
  if (source.length > MAX_PATTERN_LENGTH) return `must be at most ${MAX_PATTERN_LENGTH} characters`;
  try {
    compileProgram(parsePattern(source));
    return undefined;
  } catch (err) {
    if (err instanceof PatternSyntaxError) return err.message;
    throw err;
  }
}

/** Compiles a subject pattern; throws ConfigError CONFIG_INVALID when `validatePattern` would reject it. */
export function compilePattern(source: string): SubjectPattern {
  const problem = validatePattern(source);
  if (problem !== undefined) {
    throw new ConfigError('CONFIG_INVALID', `subject pattern ${JSON.stringify(source)}: ${problem}`);
  }
  const program = compileProgram(parsePattern(source));
  const run = (input: string): PatternRun => simulate(program, input);
  return { source, size: program.length, run, test: (input) => run(input).matched };
}

/** The number of instructions `node` compiles to, computed before anything is emitted. */
function sizeOf(node: PatternNode): number {
  switch (node.$case) {
    case 'empty':
      return 0;
    case 'set':
    case 'assert':
      return 1;
    case 'concat':
      return node.items.reduce((sum, item) => sum + sizeOf(item), 0);
    case 'alternate':
      return node.items.reduce((sum, item) => sum + sizeOf(item) + 2, -2);
    case 'repeat': {
      const inner = sizeOf(node.node);
      const optional = node.max === undefined ? inner + 2 : (node.max - node.min) * (inner + 1);
      return node.min * inner + optional;
    }
  }
}

function compileProgram(node: PatternNode): Instruction[] {
  const size = sizeOf(node) + 1;
  if (size > MAX_PROGRAM_SIZE) {
    throw new PatternSyntaxError(
      `compiles to ${size} instructions, more than ${MAX_PROGRAM_SIZE}: use fewer or smaller counted repetitions`,
      0,
    );
  }
  const program: Instruction[] = [];
  emit(node, program);
  program.push({ op: 'match' });
  return program;
}

/** Appends the instructions of `node`; control falls through to the instruction after them. */
function emit(node: PatternNode, program: Instruction[]): void {
  switch (node.$case) {
    case 'empty':
      return;
    case 'set':
      program.push({ op: 'set', set: node.set });
      return;
    case 'assert':
      program.push({ op: 'assert', at: node.at });
      return;
    case 'concat':
      for (const item of node.items) emit(item, program);
      return;
    case 'alternate': {
      const exits: { to: number }[] = [];
      node.items.forEach((item, i) => {
        if (i === node.items.length - 1) {
          emit(item, program);
          return;
        }
        const split: Instruction & { op: 'split' } = { op: 'split', to: program.length + 1, alt: -1 };
        program.push(split);
        emit(item, program);
        const exit: Instruction & { op: 'jump' } = { op: 'jump', to: -1 };
        program.push(exit);
        exits.push(exit);
        split.alt = program.length;
      });
      for (const exit of exits) exit.to = program.length;
      return;
    }
    case 'repeat':
      emitRepeat(node.node, node.min, node.max, program);
      return;
  }
}

function emitRepeat(node: PatternNode, min: number, max: number | undefined, program: Instruction[]): void {
  for (let i = 0; i < min; i++) emit(node, program);
  if (max === undefined) {
    // loop: split(body, out); body; jump loop
    const loop = program.length;
    const split: Instruction & { op: 'split' } = { op: 'split', to: loop + 1, alt: -1 };
    program.push(split);
    emit(node, program);
    program.push({ op: 'jump', to: loop });
    split.alt = program.length;
    return;
  }
  // up to (max - min) optional copies, each of which may skip straight to the end
  const splits: (Instruction & { op: 'split' })[] = [];
  for (let i = min; i < max; i++) {
    const split: Instruction & { op: 'split' } = { op: 'split', to: program.length + 1, alt: -1 };
    program.push(split);
    splits.push(split);
    emit(node, program);
  }
  for (const split of splits) split.alt = program.length;
}

function contains(set: CodePointSet, cp: number): boolean {
  let lo = 0;
  let hi = set.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [from, to] = set[mid] as readonly [number, number];
    if (cp < from) hi = mid - 1;
    else if (cp > to) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Runs the program over `input` as a set of states; each state is visited once per position. */
function simulate(program: readonly Instruction[], input: string): PatternRun {
  const codePoints = Array.from(input, (c) => c.codePointAt(0) as number);
  const end = codePoints.length;
  const seen = new Int32Array(program.length).fill(-1);
  let steps = 0;
  const stack: number[] = [];

  // Follows jumps, splits and assertions from `start` at `position`, collecting the states that
  // consume input (or match) into `into`. `seen` makes each state count once per position.
  const addState = (into: number[], start: number, position: number): void => {
    stack.push(start);
    while (stack.length > 0) {
      const pc = stack.pop() as number;
      if (seen[pc] === position) continue;
      seen[pc] = position;
      steps++;
      const inst = program[pc] as Instruction;
      switch (inst.op) {
        case 'jump':
          stack.push(inst.to);
          break;
        case 'split':
          stack.push(inst.alt, inst.to);
          break;
        case 'assert':
          if (inst.at === 'begin' ? position === 0 : position === end) stack.push(pc + 1);
          break;
        case 'set':
        case 'match':
          into.push(pc);
          break;
      }
    }
  };

  let current: number[] = [];
  addState(current, 0, 0);
  for (let position = 0; position < end && current.length > 0; position++) {
    const cp = codePoints[position] as number;
    const next: number[] = [];
    for (const pc of current) {
      steps++;
      const inst = program[pc] as Instruction;
      if (inst.op === 'set' && contains(inst.set, cp)) addState(next, pc + 1, position + 1);
    }
    current = next;
  }
  // Only a state that reached `match` after the last code point counts: the match is whole.
  const matched = current.some((pc) => program[pc]?.op === 'match');
  return { matched, steps };
}
