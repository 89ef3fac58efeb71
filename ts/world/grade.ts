// Gold quality: named feature scores in [0, 1] and their documented combination (docs/world.md).
import type { Family } from './family.ts';
import type { KnowledgeBase } from './kb.ts';
import { clamp01, fillerCount, rawTokens, repetition } from './text.ts';

export interface GoldScore {
  /** correctness, completeness, format, verbosity, fluency; politeness only where the task asks for it */
  features: Record<string, number>;
  /** weighted mean of the features, in [0, 1] */
  total: number;
  /** the task family, when the instruction was recognized */
  task?: string;
}

export const FEATURE_NAMES = ['correctness', 'completeness', 'explanation', 'format', 'verbosity', 'fluency', 'relevance', 'politeness'] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];

/** Gold weights; politeness counts only where the task asks for it. The total renormalizes. */
export const GOLD_WEIGHTS: Readonly<Record<FeatureName, number>> = {
  correctness: 0.4,
  completeness: 0.12,
  explanation: 0.12,
  format: 0.06,
  verbosity: 0.08,
  fluency: 0.1,
  relevance: 0.15,
  politeness: 0.15,
};

/** Relevance: each off-topic filler sentence costs 0.35. */
export function relevanceScore(output: string): number {
  return clamp01(1 - 0.35 * fillerCount(output));
}

/** 1 inside [lo, hi] words; linear below, exponential decay above (scale: hi words). */
export function verbosityScore(nWords: number, lo: number, hi: number): number {
  if (nWords === 0) return 0;
  if (nWords < lo) return nWords / lo;
  if (nWords <= hi) return 1;
  return Math.exp(-(nWords - hi) / Math.max(hi, 4));
}

/** Fluency: repetition costs most; an unfinished long sentence and junk characters cost a little. */
export function fluencyScore(output: string): number {
  const text = output.trim();
  if (!text) return 0;
  let s = 1 - 1.5 * repetition(text);
  const nWords = rawTokens(text).length;
  // a long single line that stops mid-sentence (lists and bare answers need no full stop)
  if (nWords >= 8 && !/[.!?]$/.test(text) && !text.includes('\n') && !text.includes(',')) s -= 0.15;
  const junk = (text.match(/[^A-Za-z0-9 ,.!?'"\-:;()+=*/%\n]/g) ?? []).length;
  s -= Math.min(0.5, junk / Math.max(8, text.length / 4));
  return clamp01(s);
}

export function combine(features: Record<string, number>, weights: Readonly<Record<string, number>> = GOLD_WEIGHTS): number {
  let num = 0;
  let den = 0;
  for (const [k, v] of Object.entries(features)) {
    const w = weights[k] ?? 0;
    num += w * v;
    den += w;
  }
  return den > 0 ? num / den : 0;
}

export function gradeTask<P>(family: Family<P>, params: P, kb: KnowledgeBase, output: string): GoldScore {
  const text = output.trim();
  const asksPoliteness = family.asksPoliteness?.(params) ?? false;
  if (!text) {
    const features: Record<string, number> = { correctness: 0, completeness: 0, format: 0, verbosity: 0, fluency: 0, relevance: 0 };
    if (family.explains) features.explanation = 0;
    if (asksPoliteness) features.politeness = 0;
    return { features, total: 0, task: family.name };
  }
  const c = family.check(params, kb, text);
  const [lo, hi] = family.lengthRange(params);
  const features: Record<string, number> = {
    correctness: clamp01(c.correctness),
    completeness: clamp01(c.completeness),
    format: clamp01(c.format),
    verbosity: verbosityScore(rawTokens(text).length, lo, hi),
    fluency: fluencyScore(text),
    relevance: relevanceScore(text),
  };
  if (c.explanation !== undefined) features.explanation = clamp01(c.explanation);
  if (asksPoliteness) features.politeness = clamp01(c.politeness ?? 0);
  return { features, total: combine(features), task: family.name };
}
