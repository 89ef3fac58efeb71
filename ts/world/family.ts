// The shape every task family implements, and the instruction templates that make generated text
// parseable again (grading sees only text).
import type { KnowledgeBase } from './kb.ts';
import type { Rng } from './rng.ts';
import { escapeRegExp } from './text.ts';

/** Mistakes a responder may make; each family decides what they mean for its task. */
export interface Flaws {
  /** a wrong item, value or option */
  wrong?: boolean;
  /** a number off by one (or the nearest analogue: one letter too few) */
  offByOne?: boolean;
  /** a required part left out */
  missing?: boolean;
  /** answer bare (no sentence around it) */
  terse?: boolean;
  /** answer in a sentence that does not say what it is about ("The answer is 42." instead of "17 plus 25 is 42.") */
  vague?: boolean;
}

/** Task-specific feature scores in [0, 1] (the generic ones are computed in grade.ts). */
export interface CheckResult {
  correctness: number;
  completeness: number;
  format: number;
  /** answers stated about their subject (families with short answers only) */
  explanation?: number;
  politeness?: number;
}

export interface Rendered {
  instruction: string;
  input: string;
}

export interface Family<P = any> {
  readonly name: string;
  readonly description: string;
  /** relative share in the instruction mix */
  readonly weight: number;
  readonly templates: readonly Template[];
  sample(rng: Rng, kb: KnowledgeBase): P;
  render(p: P, kb: KnowledgeBase): Rendered;
  /** Params from a match of template `index` (null when the slots make no sense for this world). */
  fromMatch(index: number, groups: Record<string, string>, input: string, kb: KnowledgeBase): P | null;
  respond(p: P, kb: KnowledgeBase, rng: Rng, flaws: Flaws): string;
  check(p: P, kb: KnowledgeBase, output: string): CheckResult;
  /** ideal response length in whitespace tokens [lo, hi] */
  lengthRange(p: P): [number, number];
  /** whether answers are graded on explanation (stated about their subject); short-answer families */
  readonly explains?: boolean;
  /** whether the instruction asks for politeness (the politeness feature then counts) */
  asksPoliteness?(p: P): boolean;
}

export interface Template {
  text: string;
  /** what the input field holds ('' = no input) */
  input: string;
  re: RegExp;
  slots: string[];
}

const SLOT_PATTERNS: Record<string, string> = {
  n: 'two|three|four|five',
  cat: '[a-z]+',
  c1: '[a-z]+',
  c2: '[a-z]+',
  c3: '[a-z]+',
  person: '[A-Z][a-z]+',
  person2: '[A-Z][a-z]+',
  town: '[A-Z][a-z]+',
  a: '\\d+',
  b: '\\d+',
  word: '[a-z]+',
  word2: '[a-z]+',
  item: '[a-z]+',
  letter: '[a-z]',
  art: 'an|a',
};

export function template(text: string, input = ''): Template {
  const slots: string[] = [];
  let src = '';
  let last = 0;
  for (const m of text.matchAll(/\{(\w+)\}/g)) {
    const name = m[1];
    const pat = SLOT_PATTERNS[name];
    if (!pat) throw new Error(`template "${text}": unknown slot {${name}}`);
    src += escapeRegExp(text.slice(last, m.index)) + `(?<${name}>${pat})`;
    slots.push(name);
    last = m.index! + m[0].length;
  }
  src += escapeRegExp(text.slice(last));
  return { text, input, re: new RegExp(`^${src}$`), slots };
}

export function fill(t: Template, values: Record<string, string | number>): string {
  return t.text.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = values[k];
    if (v === undefined) throw new Error(`template "${t.text}": no value for {${k}}`);
    return String(v);
  });
}
