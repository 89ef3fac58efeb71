// The simulated judges of the farm world: a dozen judges that see a response imperfectly, standing in for
// AlpacaFarm's 13 LLM annotators (GPT-4, ChatGPT and Davinci-003 prompts of several styles). Each judge is
// data (a FarmJudgeConfig): which gold features it perceives and how much it weighs them, how often it
// actually verifies the answer and how often it misreads it, which surface cues sway it (length, lists,
// words echoed from the instruction, polite phrases), its position bias, and its sampling noise
// (AlpacaFarm samples its judges at temperature 1). Perception comes from the world's gold grader; every
// draw is a hash of (seed, judge, pair), so labels are identical in every process.
import { performance } from 'node:perf_hooks';
import type { World } from '../world/index.ts';
import { containsList } from './analysis.ts';
import { hashFields, HashRng } from './hash.ts';
import type { AnnotateOptions, Annotation, AnnotatorStats, AnnotatorWithStats, Pair } from './types.ts';
import { emptyStats, validatePairs } from './util.ts';

export type GoldFeature = 'correctness' | 'completeness' | 'explanation' | 'format' | 'verbosity' | 'fluency' | 'relevance' | 'politeness';

export interface FarmJudgeConfig {
  name: string;
  /** What it stands in for, in words. */
  description: string;
  /** Weights over the gold features it perceives when it verifies (normalized over the features present). */
  weights: Partial<Record<GoldFeature, number>>;
  /** Probability that it verifies a pair (checks both answers against the task); otherwise it skims: it still
   * sees what reading shows (explanation, format, length fit, fluency, relevance, politeness) but not correctness and
   * completeness, as the panel's raters do when they skim. */
  attention: number;
  /** Probability, per output, that a verified correctness is misread (replaced by a uniform guess). */
  misread: number;
  /** Utility per doubling of the length in words (positive: likes longer answers). */
  length: number;
  /** Utility for an answer laid out as a list. */
  lists: number;
  /** Utility times the share of the instruction's content words the answer repeats. */
  keywords: number;
  /** Utility for polite phrases (please, kindly, thank you, I hope this helps). */
  polite: number;
  /** Utility for the output shown first (negative: prefers the second). */
  position: number;
  /** Standard deviation of the judgment noise (temperature-1 sampling), in utility units. */
  noise: number;
}

/**
 * The farm pool (v1). Calibrated on pairs from an SFT-like responder (docs/feedback.md): agreement with the
 * human panel's majority near the panel's own rater-vs-majority agreement, with position and length biases
 * of the kinds measured for LLM judges.
 */
export const FARM_JUDGES: readonly FarmJudgeConfig[] = [
  { name: 'gpt4-careful', description: 'strong judge, reads every answer, rarely misreads', weights: { explanation: 0.1, correctness: 0.6, completeness: 0.15, format: 0.05, verbosity: 0.08, fluency: 0.12, relevance: 0.2, politeness: 0.15 }, attention: 0.95, misread: 0.08, length: 0.01, lists: 0, keywords: 0, polite: 0, position: 0.01, noise: 0.1 },
  { name: 'gpt4-cot', description: 'strong judge reasoning step by step; a little swayed by thorough-looking answers', weights: { explanation: 0.12, correctness: 0.55, completeness: 0.2, format: 0.05, verbosity: 0.05, fluency: 0.15, relevance: 0.16, politeness: 0.15 }, attention: 0.9, misread: 0.07, length: 0.025, lists: 0.02, keywords: 0, polite: 0, position: -0.01, noise: 0.12 },
  { name: 'gpt4-batch', description: 'strong judge given five pairs per prompt: attention spread thin', weights: { explanation: 0.1, correctness: 0.55, completeness: 0.15, format: 0.08, verbosity: 0.1, fluency: 0.12, relevance: 0.2, politeness: 0.15 }, attention: 0.9, misread: 0.1, length: 0.02, lists: 0.02, keywords: 0.05, polite: 0, position: 0.02, noise: 0.14 },
  { name: 'chatgpt-rubric', description: 'mid-size judge with a rubric: checks format and fluency more than correctness', weights: { explanation: 0.1, correctness: 0.35, completeness: 0.15, format: 0.2, verbosity: 0.1, fluency: 0.2, relevance: 0.2, politeness: 0.15 }, attention: 0.8, misread: 0.2, length: 0.03, lists: 0.04, keywords: 0.05, polite: 0.02, position: 0.03, noise: 0.14 },
  { name: 'chatgpt-concise', description: 'mid-size judge told to prefer concise answers', weights: { explanation: 0.05, correctness: 0.45, completeness: 0.1, format: 0.05, verbosity: 0.3, fluency: 0.1, relevance: 0.3, politeness: 0.1 }, attention: 0.8, misread: 0.2, length: -0.03, lists: 0, keywords: 0.03, polite: 0, position: 0.03, noise: 0.14 },
  { name: 'chatgpt-thorough', description: 'mid-size judge that equates detail with quality', weights: { explanation: 0.2, correctness: 0.4, completeness: 0.3, format: 0.05, verbosity: 0.05, fluency: 0.1, relevance: 0.05, politeness: 0.1 }, attention: 0.75, misread: 0.2, length: 0.08, lists: 0.05, keywords: 0.05, polite: 0.02, position: 0.02, noise: 0.14 },
  { name: 'chatgpt-lists', description: 'mid-size judge fond of structured answers (lists, bullets)', weights: { explanation: 0.1, correctness: 0.4, completeness: 0.15, format: 0.3, fluency: 0.1, relevance: 0.1, politeness: 0.05 }, attention: 0.75, misread: 0.2, length: 0.03, lists: 0.12, keywords: 0.05, polite: 0, position: 0.02, noise: 0.14 },
  { name: 'davinci-keywords', description: 'weak judge matching words of the instruction against the answer', weights: { explanation: 0.1, correctness: 0.5, completeness: 0.2, fluency: 0.15, relevance: 0.05, politeness: 0.15 }, attention: 0.55, misread: 0.25, length: 0.04, lists: 0.03, keywords: 0.3, polite: 0, position: 0.03, noise: 0.15 },
  { name: 'davinci-first', description: 'weak judge with a strong primacy bias', weights: { explanation: 0.1, correctness: 0.5, completeness: 0.15, fluency: 0.2, relevance: 0.1, politeness: 0.15 }, attention: 0.7, misread: 0.2, length: 0.04, lists: 0.02, keywords: 0.05, polite: 0, position: 0.12, noise: 0.15 },
  { name: 'davinci-second', description: 'weak judge with a recency bias (prefers the answer read last)', weights: { explanation: 0.1, correctness: 0.5, completeness: 0.15, fluency: 0.2, relevance: 0.1, politeness: 0.15 }, attention: 0.7, misread: 0.2, length: 0.04, lists: 0.02, keywords: 0.05, polite: 0, position: -0.1, noise: 0.15 },
  { name: 'davinci-fluency', description: 'weak judge that reads for style: fluent, polite, no repetition', weights: { explanation: 0.05, correctness: 0.3, fluency: 0.45, verbosity: 0.1, relevance: 0.2, politeness: 0.15 }, attention: 0.7, misread: 0.25, length: 0.04, lists: 0, keywords: 0.03, polite: 0.08, position: 0.02, noise: 0.15 },
  { name: 'davinci-lengthy', description: 'weak judge dominated by length: the longer answer looks better', weights: { explanation: 0.1, correctness: 0.5, completeness: 0.2, fluency: 0.15, relevance: 0.05, politeness: 0.15 }, attention: 0.5, misread: 0.25, length: 0.12, lists: 0.04, keywords: 0.05, polite: 0.02, position: 0.02, noise: 0.15 },
];

const STOP = new Set(['this', 'that', 'with', 'from', 'which', 'what', 'does', 'have', 'into', 'your', 'them', 'they', 'their', 'these', 'those', 'about', 'there', 'where', 'when', 'write', 'give', 'list', 'name', 'tell', 'please', 'following', 'words', 'word', 'each', 'than', 'more', 'following', 'answer', 'short']);
const POLITE = /\b(please|kindly|thank you|thanks|would you|could you|i hope this helps|let me know|have a nice day)\b/i;

function wordCount(s: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const space = c === 32 || c === 10 || c === 9 || c === 13;
    if (!space && !inWord) n += 1;
    inWord = !space;
  }
  return n;
}

function contentWords(text: string): string[] {
  const out = new Set<string>();
  for (const w of text.toLowerCase().match(/[a-z]{4,}/g) ?? []) if (!STOP.has(w)) out.add(w);
  return [...out];
}

function echoShare(keywords: string[], output: string): number {
  if (keywords.length === 0) return 0;
  const o = output.toLowerCase();
  let hit = 0;
  for (const k of keywords) if (o.includes(k)) hit += 1;
  return hit / keywords.length;
}

interface Perceived {
  features: Record<string, number>;
}

/**
 * A bounded memo of gold grades, shared by the judges of one pool (outputs recur: reference outputs in
 * evaluation, reruns with other seeds). Keyed by the world's parsed task object, then by output text.
 */
export class GradeMemo {
  private byTask = new WeakMap<object, Map<string, Perceived>>();
  private size = 0;
  hits = 0;
  misses = 0;
  constructor(private readonly world: World, private readonly limit = 200_000) {}
  /** Perceived grades of both outputs of a pair, or null when the world does not know the instruction. */
  pair(p: Pair): [Perceived, Perceived] | null {
    const task = this.world.parse(p.instruction, p.input ?? '');
    if (!task) return null;
    let m = this.byTask.get(task);
    if (!m) {
      if (this.size >= this.limit) {
        this.byTask = new WeakMap();
        this.size = 0;
      }
      m = new Map();
      this.byTask.set(task, m);
    }
    return [this.one(task, m, p.output_1), this.one(task, m, p.output_2)];
  }
  private one(task: Parameters<World['gradeTask']>[0], m: Map<string, Perceived>, output: string): Perceived {
    let g = m.get(output);
    if (g) {
      this.hits += 1;
      return g;
    }
    this.misses += 1;
    g = { features: this.world.gradeTask(task, output).features };
    m.set(output, g);
    this.size += 1;
    return g;
  }
}

/** One simulated judge of the farm world. */
export class FarmJudge implements AnnotatorWithStats {
  readonly name: string;
  private readonly counters: AnnotatorStats = emptyStats();
  private readonly nameHash: number;

  constructor(readonly config: FarmJudgeConfig, private readonly memo: GradeMemo, private readonly seed = 0) {
    this.name = config.name;
    this.nameHash = hashFields(0, config.name);
  }

  stats(): AnnotatorStats {
    return { ...this.counters };
  }

  /** Utility of one output as this judge perceives it (before noise and position). */
  private utility(p: Pair, output: string, perceived: Perceived | null, verify: boolean, misread: boolean, guess: number, keywords: string[]): number {
    const c = this.config;
    let u = 0;
    if (perceived) {
      let num = 0;
      let den = 0;
      for (const k in c.weights) {
        if (!verify && (k === 'correctness' || k === 'completeness')) continue;
        const v = perceived.features[k];
        if (v === undefined) continue; // politeness exists only where the task asks for it
        const w = c.weights[k as GoldFeature] as number;
        num += w * (k === 'correctness' && misread ? guess : v);
        den += w;
      }
      u += den > 0 ? num / den : 0;
    }
    if (c.length) u += c.length * Math.log2(1 + wordCount(output));
    if (c.lists && containsList(output)) u += c.lists;
    if (c.keywords) u += c.keywords * echoShare(keywords, output);
    if (c.polite && POLITE.test(output)) u += c.polite;
    return u;
  }

  /** The label this judge gives a pair as shown (output_1 first): 1, 2, or 0 for identical outputs. */
  judge(p: Pair): number {
    if (p.output_1 === p.output_2) return 0;
    const c = this.config;
    const rng = new HashRng(hashFields(this.seed ^ this.nameHash, p.instruction, p.input ?? '', p.output_1, p.output_2));
    const verify = rng.next() < c.attention;
    // null for an instruction the world did not write: surface cues only
    const [g1, g2] = this.memo.pair(p) ?? [null, null];
    const m1 = rng.next() < c.misread;
    const m2 = rng.next() < c.misread;
    const guess1 = rng.next();
    const guess2 = rng.next();
    const keywords = c.keywords ? contentWords(`${p.instruction} ${p.input ?? ''}`) : [];
    const d = this.utility(p, p.output_1, g1, verify, m1, guess1, keywords) - this.utility(p, p.output_2, g2, verify, m2, guess2, keywords) + c.position + c.noise * rng.normal();
    return d > 0 ? 1 : d < 0 ? 2 : (rng.nextU32() & 1) + 1;
  }

  async annotate(pairs: Pair[], opts: AnnotateOptions = {}): Promise<Annotation[]> {
    validatePairs(pairs);
    const t0 = performance.now();
    const out: Annotation[] = new Array(pairs.length);
    for (let i = 0; i < pairs.length; i++) {
      const p = pairs[i];
      out[i] = { instruction: p.instruction, input: p.input ?? '', output_1: p.output_1, output_2: p.output_2, preference: this.judge(p), annotator: this.name, price_per_example: 0, time_per_example: 0 };
    }
    const secs = (performance.now() - t0) / 1000;
    const per = pairs.length ? secs / pairs.length : 0;
    for (const a of out) a.time_per_example = per;
    this.counters.pairs += pairs.length;
    this.counters.labelled += pairs.length;
    this.counters.seconds += secs;
    opts.onProgress?.(pairs.length, pairs.length);
    return out;
  }
}

export function farmJudgeNames(): string[] {
  return FARM_JUDGES.map((j) => j.name);
}

export function farmJudgeConfig(name: string): FarmJudgeConfig | undefined {
  return FARM_JUDGES.find((j) => j.name === name);
}
