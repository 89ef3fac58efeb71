// Text helpers shared by the checkers and the responders.
import { NUMBER_WORDS } from './kb.ts';

/** Lower-case word tokens (letters only). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z]+/g) ?? [];
}

/** Whitespace-separated tokens as written (for word counts). */
export function rawTokens(text: string): string[] {
  return text.split(/\s+/).filter((t) => t.length > 0);
}

const NUMBER_WORD_INDEX = new Map(NUMBER_WORDS.map((w, i) => [w, i]));

/** Numbers in reading order: digits (with an optional minus sign) and the words zero..twelve. */
export function numbers(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/-?\d+|[A-Za-z]+/g)) {
    const t = m[0];
    if (/^-?\d+$/.test(t)) out.push(Number(t));
    else {
      const v = NUMBER_WORD_INDEX.get(t.toLowerCase());
      if (v !== undefined) out.push(v);
    }
  }
  return out;
}

export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (!a.length) return b.length;
  if (!b.length) return a.length;
  let prev = new Array<number>(b.length + 1);
  let cur = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

/** 1 - normalized edit distance, in [0, 1]. */
export function similarity(a: string, b: string): number {
  const n = Math.max(a.length, b.length);
  return n === 0 ? 1 : 1 - levenshtein(a, b) / n;
}

export function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * How repetitive a text is, in [0, 1]: the larger of the share of repeated word trigrams and the share of
 * sentences that repeat an earlier one. Lists of distinct items score 0.
 */
export function repetition(text: string): number {
  const w = words(text);
  let tri = 0;
  if (w.length >= 4) {
    const seen = new Set<string>();
    let rep = 0;
    for (let i = 0; i + 2 < w.length; i++) {
      const k = `${w[i]} ${w[i + 1]} ${w[i + 2]}`;
      if (seen.has(k)) rep++;
      else seen.add(k);
    }
    tri = rep / (w.length - 2);
    // repeated word pairs catch repeated list items ("milk, tea, milk, tea")
    const pairs = new Set<string>();
    let repPairs = 0;
    for (let i = 0; i + 1 < w.length; i++) {
      const k = `${w[i]} ${w[i + 1]}`;
      if (pairs.has(k)) repPairs++;
      else pairs.add(k);
    }
    tri = Math.max(tri, (0.8 * repPairs) / (w.length - 1));
  }
  const s = sentences(text).map((x) => x.toLowerCase());
  const dup = s.length > 1 ? (s.length - new Set(s).size) / s.length : 0;
  // Repeated single words in a row ("the the") are a fluency fault too.
  let stutter = 0;
  for (let i = 1; i < w.length; i++) if (w[i] === w[i - 1]) stutter++;
  return Math.min(1, Math.max(tri, dup) + (w.length ? stutter / w.length : 0));
}

export function capitalize(s: string): string {
  return s.length ? s[0].toUpperCase() + s.slice(1) : s;
}

export function joinList(items: readonly string[], style: 'comma' | 'and' | 'lines' | 'bullets'): string {
  if (style === 'lines') return items.join('\n');
  if (style === 'bullets') return items.map((x) => `- ${x}`).join('\n');
  if (style === 'and' && items.length > 1) return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
  return items.join(', ');
}

export function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** Escape a literal for use inside a RegExp. */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Off-topic sentences that responders pad answers with (the world's own inventory: a model trained on its
 * demonstrations learns exactly these). Gold counts them against relevance; friendly closings are not filler.
 */
export const FILLER_SENTENCES: readonly string[] = [
  'There are many things to think about here.',
  'This is a common question on the farm.',
  'Many people ask about this.',
  'It is always a good idea to think carefully.',
  'Life on the farm is busy in the spring.',
  'Some people like to check these things twice.',
];

const FILLER_WORDS = FILLER_SENTENCES.map((f) => words(f));

/** Sentences of `text` that read as filler: most of their words are those of one filler sentence. */
export function fillerCount(text: string): number {
  let n = 0;
  for (const s of sentences(text)) {
    const w = words(s);
    if (w.length < 3) continue;
    for (const f of FILLER_WORDS) {
      let hit = 0;
      for (const x of w) if (f.includes(x)) hit++;
      if (hit / Math.max(w.length, f.length) >= 0.6) { n++; break; }
    }
  }
  return n;
}
