// Judge analysis in the manner of alpaca_eval's evaluator table: agreement with the majority of reference
// raters, bias, variance across repeated runs, P(prefer longer), P(prefer lists), P(prefer first), price and
// time per 1000 pairs. Preferences are scored with the absolute rule on [0, 1] (label - 1, draws 0.5), so a
// soft label of 1.5 earns half a point; the majority of an even number of votes may have two medians, and the
// score is then the mean over both (alpaca_eval samples one of them; the expectation is the same).
import { contentKey } from './hash.ts';
import type { Annotation, Pair, Preference } from './types.ts';

/** A pair with the labels of several reference raters (humans, the panel). */
export interface ReferencePair extends Pair {
  /** One label per rater: 1, 2, 0 (draw) or a soft value in [1, 2]; null entries are ignored. */
  preferences: Preference[];
}

export interface JudgeMetrics {
  annotator: string;
  /** Pairs present in both the runs and the references. */
  n_pairs: number;
  n_runs: number;
  /** Reference raters per pair (the most common count). */
  n_references: number;
  /** Labels the judge gave (summed over runs). */
  n_parsed: number;
  /**
   * alpaca_eval's "Human agreement" (%): each run's label against the majority of all reference raters;
   * for the reference raters themselves (`isReference`), each rater against the majority of the others.
   */
  human_agreement: number;
  /** Each run against the majority of every leave-one-out subset of the references (%): the same footing as
   * a rater against the majority of the other raters, so directly comparable with `reference_agreement`. */
  agreement_loo: number | null;
  /** The references' own leave-one-out agreement: a rater against the majority of the others (%). */
  reference_agreement: number | null;
  /** 100 x disagreement of the majority over runs with the majority of the references. Needs several runs. */
  bias: number | null;
  /** 100 x disagreement of one run with the majority of the other runs. Needs several runs. */
  variance: number | null;
  p_prefer_longer: number | null;
  p_prefer_lists: number | null;
  p_prefer_first: number | null;
  price_per_1000: number;
  seconds_per_1000: number;
}

export interface AnalyzeOptions {
  /** Name to report (default: the annotator field of the first run). */
  annotator?: string;
  /** Length difference (characters) above which one output counts as longer (alpaca_eval: 30). */
  lengthDelta?: number;
  /** The runs ARE the reference raters (analysis of the humans row): agreement is leave-one-out. */
  isReference?: boolean;
}

export function pairIdentity(p: Pair): string {
  return contentKey(p.instruction, p.input ?? '', p.output_1, p.output_2);
}

/** Label on [0, 1]: 1 -> 0, 2 -> 1, draw (0) -> 0.5, soft s -> s - 1; null stays null. */
export function toUnit(p: Preference | undefined): number | null {
  if (p === null || p === undefined || !Number.isFinite(p)) return null;
  if (p === 0) return 0.5;
  if (p < 1 || p > 2) throw new Error(`preference ${p} outside {0} U [1, 2]`);
  return p - 1;
}

/** The median(s) of values on [0, 1]: one value, or the two middle values when the count is even. */
export function medians(values: number[]): number[] {
  if (values.length === 0) return [];
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? [s[m]] : [s[m - 1], s[m]];
}

/** Expected absolute-rule score of prediction medians vs target medians. */
export function agreementScore(pred: number[], target: number[]): number {
  let tot = 0;
  for (const p of pred) for (const t of target) tot += 1 - Math.abs(p - t);
  return tot / (pred.length * target.length);
}

/** A rough list detector: a line starting with a bullet, a number or a letter followed by "." or ")". */
export function containsList(text: string): boolean {
  return /(^|\n)[ \t]*(?:[-*\u2022+]|\d{1,3}[.)]|[a-zA-Z][.)])[ \t]+\S/.test(text);
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Leave-one-out agreement of raters: each rater's label against the median of the others' labels. */
function looWithin(labels: number[]): number | null {
  if (labels.length < 2) return null;
  const scores: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const others = labels.filter((_, j) => j !== i);
    scores.push(agreementScore([labels[i]], medians(others)));
  }
  return mean(scores);
}

/**
 * Analyzes a judge: `runs` holds one array of annotations per repeated run (same pairs, any order);
 * `references` the rater labels of the same pairs. Pairs missing from the references are ignored.
 */
export function analyzeJudge(runs: Annotation[][], references: ReferencePair[], opts: AnalyzeOptions = {}): JudgeMetrics {
  if (runs.length === 0) throw new Error('analyzeJudge: no runs');
  const refByKey = new Map<string, number[]>();
  for (const r of references) {
    const labels = r.preferences.map(toUnit).filter((x): x is number => x !== null);
    if (labels.length) refByKey.set(pairIdentity(r), labels);
  }
  // Per pair: the labels of each run (null where the judge failed).
  const byKey = new Map<string, { pair: Pair; labels: Array<number | null> }>();
  runs.forEach((run, r) => {
    for (const a of run) {
      const k = pairIdentity(a);
      if (!refByKey.has(k)) continue;
      let e = byKey.get(k);
      if (!e) {
        e = { pair: a, labels: new Array(runs.length).fill(null) };
        byKey.set(k, e);
      }
      e.labels[r] = toUnit(a.preference);
    }
  });

  const human: number[] = [];
  const loo: number[] = [];
  const refLoo: number[] = [];
  const bias: number[] = [];
  const variance: number[] = [];
  const refCounts = new Map<number, number>();
  let parsed = 0;
  for (const [k, e] of byKey) {
    const ref = refByKey.get(k) as number[];
    refCounts.set(ref.length, (refCounts.get(ref.length) ?? 0) + 1);
    const rl = looWithin(ref);
    if (rl !== null) refLoo.push(rl);
    const got = e.labels.filter((x): x is number => x !== null);
    parsed += got.length;
    if (got.length === 0) continue;
    if (opts.isReference) {
      const l = looWithin(got);
      if (l !== null) human.push(l);
    } else {
      const target = medians(ref);
      human.push(mean(got.map((g) => agreementScore([g], target))));
      if (ref.length >= 2) {
        const s: number[] = [];
        for (const g of got) for (let i = 0; i < ref.length; i++) s.push(agreementScore([g], medians(ref.filter((_, j) => j !== i))));
        loo.push(mean(s));
      }
      if (got.length >= 2) bias.push(1 - agreementScore(medians(got), target));
    }
    const v = looWithin(got);
    if (v !== null) variance.push(1 - v);
  }

  // Bias statistics over unique pairs, from the first run that labelled each pair (as alpaca_eval drops duplicates).
  const lengthDelta = opts.lengthDelta ?? 30;
  let longer = 0;
  let longerN = 0;
  let lists = 0;
  let listsN = 0;
  for (const [, e] of byKey) {
    const u = e.labels.find((x) => x !== null);
    if (u === undefined || u === null || u === 0.5) continue;
    const best = u < 0.5 ? e.pair.output_1 : e.pair.output_2;
    const worse = u < 0.5 ? e.pair.output_2 : e.pair.output_1;
    if (Math.abs(best.length - worse.length) > lengthDelta) {
      longerN += 1;
      if (best.length > worse.length) longer += 1;
    }
    const lb = containsList(best);
    const lw = containsList(worse);
    if (lb !== lw) {
      listsN += 1;
      if (lb) lists += 1;
    }
  }
  let firstSum = 0;
  let firstN = 0;
  let price = 0;
  let time = 0;
  let counted = 0;
  for (const run of runs) {
    for (const a of run) {
      const u = toUnit(a.preference);
      if (u !== null) {
        firstSum += 1 - u;
        firstN += 1;
      }
      price += a.price_per_example ?? 0;
      time += a.time_per_example ?? 0;
      counted += 1;
    }
  }
  let nRefs = 0;
  let best = -1;
  for (const [c, cnt] of refCounts) if (cnt > best) [nRefs, best] = [c, cnt];
  const pct = (xs: number[]) => (xs.length ? 100 * mean(xs) : null);
  return {
    annotator: opts.annotator ?? runs[0][0]?.annotator ?? 'unknown',
    n_pairs: byKey.size,
    n_runs: runs.length,
    n_references: nRefs,
    n_parsed: parsed,
    human_agreement: pct(human) ?? NaN,
    agreement_loo: opts.isReference ? pct(human) : pct(loo),
    reference_agreement: pct(refLoo),
    bias: opts.isReference ? 0 : pct(bias),
    variance: pct(variance),
    p_prefer_longer: longerN ? longer / longerN : null,
    p_prefer_lists: listsN ? lists / listsN : null,
    p_prefer_first: firstN ? firstSum / firstN : null,
    price_per_1000: counted ? (1000 * price) / counted : 0,
    seconds_per_1000: counted ? (1000 * time) / counted : 0,
  };
}

/**
 * Groups flat records into reference pairs: several records of the same pair (alpaca_eval cross-annotations)
 * become several raters; a record may also carry a `preferences` array directly.
 */
export function groupReferences(records: Array<Pair & { preference?: Preference; preferences?: Preference[] }>): ReferencePair[] {
  const byKey = new Map<string, ReferencePair>();
  for (const r of records) {
    const k = pairIdentity(r);
    let e = byKey.get(k);
    if (!e) {
      e = { instruction: r.instruction, input: r.input ?? '', output_1: r.output_1, output_2: r.output_2, preferences: [] };
      byKey.set(k, e);
    }
    if (Array.isArray(r.preferences)) e.preferences.push(...r.preferences);
    else if (r.preference !== undefined) e.preferences.push(r.preference);
  }
  return [...byKey.values()];
}

/** Rows in the column names of alpaca_eval's evaluators_leaderboard.csv. */
export function metricsToLeaderboardRow(m: JudgeMetrics): Record<string, number | string | null> {
  return {
    '': m.annotator,
    'Human agreement': m.human_agreement,
    'Price [$/1000 examples]': m.price_per_1000,
    'Time [seconds/1000 examples]': m.seconds_per_1000,
    Bias: m.bias,
    Variance: m.variance,
    'Proba. prefer longer': m.p_prefer_longer,
    'Proba. prefer lists': m.p_prefer_lists,
    'Proba. prefer 1': m.p_prefer_first,
    '# parsed': m.n_parsed,
  };
}
