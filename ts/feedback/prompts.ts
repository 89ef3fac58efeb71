// Judge prompt templates stored as files (prompts/*.txt) and the parser of the judge's answers.
// A template file is plain text cut into sections by lines "@@ NAME": system, user, pair (one block per pair
// when "{pairs}" appears in user), input (rendered into {input_section} when the pair has an input) and
// parse (a regular expression with a named group "answer" matching a or b, optionally "index").
import { readFileSync, existsSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pair } from './types.ts';

export interface PromptTemplate {
  /** Short name (file name without extension). */
  name: string;
  system: string;
  user: string;
  pair: string;
  input: string;
  /** Source of the answer regex (compiled with flags gi). */
  parse: string;
  /** Whether several pairs fit in one request (user contains {pairs}). */
  batched: boolean;
  /** The file text, for identifying the template in cache keys. */
  text: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export const PROMPTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'prompts');
const DEFAULT_PARSE = String.raw`Output\s*\(\s*(?<answer>[ab])\s*\)`;

/** Resolves a template by name ('pairwise_batch') in prompts/, or by path. */
export function resolveTemplatePath(nameOrPath: string): string {
  if (nameOrPath.includes('/') || nameOrPath.endsWith('.txt')) {
    const p = isAbsolute(nameOrPath) ? nameOrPath : resolve(nameOrPath);
    if (!existsSync(p)) throw new Error(`prompt template not found: ${p}`);
    return p;
  }
  const p = join(PROMPTS_DIR, `${nameOrPath}.txt`);
  if (!existsSync(p)) throw new Error(`unknown prompt template "${nameOrPath}" (no ${p})`);
  return p;
}

export function loadTemplate(nameOrPath: string): PromptTemplate {
  const path = resolveTemplatePath(nameOrPath);
  return parseTemplate(readFileSync(path, 'utf8'), basename(path).replace(/\.txt$/, ''));
}

export function parseTemplate(text: string, name = 'inline'): PromptTemplate {
  const sections: Record<string, string[]> = {};
  let current: string | null = null;
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    const m = /^@@\s*(\w+)\s*$/.exec(line);
    if (m) {
      current = m[1].toLowerCase();
      if (sections[current]) throw new Error(`template ${name}: section "${current}" appears twice`);
      sections[current] = [];
      continue;
    }
    if (current === null) continue; // header comments
    sections[current].push(line);
  }
  const get = (k: string) => {
    const lines = sections[k] ?? [];
    while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
    return lines.join('\n');
  };
  const known = new Set(['system', 'user', 'pair', 'input', 'parse']);
  for (const k of Object.keys(sections)) if (!known.has(k)) throw new Error(`template ${name}: unknown section "@@ ${k}"`);
  const user = get('user');
  if (!user) throw new Error(`template ${name}: missing "@@ user" section`);
  const batched = user.includes('{pairs}');
  const pair = get('pair');
  if (batched && !pair) throw new Error(`template ${name}: user uses {pairs} but there is no "@@ pair" section`);
  if (!batched && !/\{output_1\}/.test(user)) throw new Error(`template ${name}: user has neither {pairs} nor {output_1}`);
  const parse = get('parse').trim() || DEFAULT_PARSE;
  let re: RegExp;
  try {
    re = new RegExp(parse, 'gi');
  } catch (err) {
    throw new Error(`template ${name}: bad parse regex: ${(err as Error).message}`);
  }
  if (!/\(\?<answer>/.test(re.source) && !/\((?!\?)/.test(re.source)) {
    throw new Error(`template ${name}: parse regex needs a group (named "answer" or the first group)`);
  }
  return { name, system: get('system'), user, pair, input: get('input') || 'Input: {input}', parse, batched, text };
}

/** Single-pass substitution: text inside values is never substituted again. */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? values[key] : whole));
}

function pairValues(t: PromptTemplate, p: Pair, index: number): Record<string, string> {
  const inputSection = p.input ? fill(t.input, { input: p.input }) : '';
  return {
    index: String(index),
    instruction: p.instruction,
    input: p.input,
    input_section: inputSection,
    output_1: p.output_1,
    output_2: p.output_2,
  };
}

/** Drops a line that holds only {input_section} when the pair has no input, then fills the placeholders. */
function fillPair(template: string, values: Record<string, string>): string {
  const t = values.input_section ? template : template.replace(/^[ \t]*\{input_section\}[ \t]*\n/gm, '');
  return fill(t, values);
}

/** The chat messages of one request for `pairs` (one pair unless the template is batched). */
export function renderMessages(t: PromptTemplate, pairs: Pair[]): ChatMessage[] {
  if (pairs.length === 0) throw new Error('renderMessages: no pairs');
  if (!t.batched && pairs.length !== 1) throw new Error(`template ${t.name} takes one pair per request, got ${pairs.length}`);
  let user: string;
  if (t.batched) {
    const blocks = pairs.map((p, i) => fillPair(t.pair, pairValues(t, p, i + 1)));
    user = fill(t.user, { pairs: blocks.join('\n\n'), n: String(pairs.length) });
  } else {
    user = fillPair(t.user, { ...pairValues(t, pairs[0], 1), n: '1' });
  }
  const messages: ChatMessage[] = [];
  if (t.system) messages.push({ role: 'system', content: fill(t.system, { n: String(pairs.length) }) });
  messages.push({ role: 'user', content: user });
  return messages;
}

export type ParseResult = { ok: true; preferences: number[] } | { ok: false; error: string };

/**
 * Reads n answers from a completion. Answers "a" -> 1, "b" -> 2 (in the order shown to the judge).
 * With an "index" group, answers are placed by index (each of 1..n exactly once); otherwise by order of
 * appearance. Any other count than n gives no labels at all: a shifted batch must not yield wrong labels.
 */
export function parseAnswers(t: PromptTemplate, completion: string, n: number): ParseResult {
  const re = new RegExp(t.parse, 'gi');
  const found: Array<{ index: number | null; pref: number }> = [];
  for (const m of completion.matchAll(re)) {
    const letter = (m.groups?.answer ?? m[1] ?? '').toLowerCase();
    if (letter !== 'a' && letter !== 'b') continue;
    const idx = m.groups?.index !== undefined ? Number(m.groups.index) : null;
    found.push({ index: idx, pref: letter === 'a' ? 1 : 2 });
  }
  const indexed = found.length > 0 && found.every((f) => f.index !== null);
  if (indexed) {
    const prefs = new Array<number>(n).fill(0);
    for (const f of found) {
      const i = f.index as number;
      if (i < 1 || i > n) return { ok: false, error: `answer for request ${i} outside 1..${n}` };
      if (prefs[i - 1] !== 0) return { ok: false, error: `two answers for request ${i}` };
      prefs[i - 1] = f.pref;
    }
    const missing = prefs.findIndex((p) => p === 0);
    if (missing >= 0 || found.length !== n) return { ok: false, error: `expected ${n} answers, got ${found.length}` };
    return { ok: true, preferences: prefs };
  }
  if (found.length !== n) return { ok: false, error: `expected ${n} answers, got ${found.length}` };
  return { ok: true, preferences: found.map((f) => f.pref) };
}
