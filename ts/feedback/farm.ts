// The farm world's feedback: the simulated pool, the human panel as an annotator, pairs to measure them on,
// and the measurement of the pool against the panel (the AlpacaFarm check: simulated annotators agree with
// the human majority about as well as humans agree with each other).
import { performance } from 'node:perf_hooks';
import { Rng, type World } from '../world/index.ts';
import { analyzeJudge, type JudgeMetrics, type ReferencePair } from './analysis.ts';
import { FARM_JUDGES, FarmJudge, GradeMemo, type FarmJudgeConfig } from './farm-judges.ts';
import { RewardModelJudge } from './model-judge.ts';
import { AnnotatorPool } from './pool.ts';
import type { AnnotateOptions, Annotation, Annotator, AnnotatorStats, AnnotatorWithStats, Pair, PairScorer } from './types.ts';
import { emptyStats, validatePairs } from './util.ts';

/** AlpacaFarm's default training-time flip probability. */
export const DEFAULT_FLIP_P = 0.25;
/** What a crowdworker comparison cost in AlpacaFarm: $0.30, and 9.2 minutes per 15 comparisons. */
export const HUMAN_PRICE_PER_PAIR = 0.3;
export const HUMAN_SECONDS_PER_PAIR = (9.2 * 60) / 15;

export interface FarmPoolOptions {
  seed?: number;
  /** Training-time noise (0 for evaluation). */
  flipP?: number;
  swap?: boolean;
  /** Judges to use (default FARM_JUDGES). */
  judges?: readonly FarmJudgeConfig[];
  /** A reward-model scorer from the engine: adds a model-based member to the pool. */
  scorer?: PairScorer;
  /** Name of the model-based member (default "reward-model"). */
  scorerName?: string;
  name?: string;
}

export function createFarmPool(world: World, opts: FarmPoolOptions = {}): AnnotatorPool {
  const memo = new GradeMemo(world);
  const seed = opts.seed ?? 0;
  const members: Annotator[] = (opts.judges ?? FARM_JUDGES).map((c) => new FarmJudge(c, memo, seed));
  if (opts.scorer) members.push(new RewardModelJudge(opts.scorer, { name: opts.scorerName ?? 'reward-model', temperature: 0.5, seed }));
  return new AnnotatorPool(members, { name: opts.name ?? (opts.flipP ? 'pool:train' : 'pool'), seed, flipP: opts.flipP ?? 0, swap: opts.swap ?? true });
}

/** One simulated judge by name, swapped like the pool does (a pool of one, no noise). */
export function createFarmJudge(world: World, name: string, seed = 0, swap = true): AnnotatorPool {
  const c = FARM_JUDGES.find((j) => j.name === name);
  if (!c) throw new Error(`unknown farm judge "${name}"; known: ${FARM_JUDGES.map((j) => j.name).join(', ')}`);
  return new AnnotatorPool([new FarmJudge(c, new GradeMemo(world), seed)], { name, seed, swap });
}

/**
 * The human panel as an annotator: the majority of the panel's raters for each pair (0 on a tie or identical
 * outputs), priced like AlpacaFarm's crowdworkers so that cost comparisons are meaningful.
 */
export class PanelAnnotator implements AnnotatorWithStats {
  readonly name: string;
  private readonly counters: AnnotatorStats = emptyStats();
  constructor(private readonly world: World, name = 'panel', private readonly size?: number) {
    this.name = name;
  }
  stats(): AnnotatorStats {
    return { ...this.counters };
  }
  async annotate(pairs: Pair[], opts: AnnotateOptions = {}): Promise<Annotation[]> {
    validatePairs(pairs);
    const unknown = unknownInstructions(this.world, pairs);
    if (unknown.count > 0) {
      const p = pairs[unknown.first];
      throw new Error(`the human panel judges only farm-world instructions, and ${unknown.count} of ${pairs.length} pairs are not tasks of farm world ${this.world.seed} ` +
        `(first: pair ${unknown.first + 1}, instruction ${JSON.stringify(p.instruction.length > 60 ? `${p.instruction.slice(0, 57)}...` : p.instruction)}). ` +
        'Were they written by another world seed? Pass the seed that wrote them: --world-seed on the command line (worldSeed in code); farm data records carry it as world_seed');
    }
    const t0 = performance.now();
    const out = pairs.map((p): Annotation => {
      const maj = this.world.panel.majority({ instruction: p.instruction, input: p.input ?? '', output_1: p.output_1, output_2: p.output_2 }, this.size);
      return { ...p, input: p.input ?? '', preference: maj, annotator: this.name, price_per_example: p.output_1 === p.output_2 ? 0 : HUMAN_PRICE_PER_PAIR, time_per_example: p.output_1 === p.output_2 ? 0 : HUMAN_SECONDS_PER_PAIR };
    });
    this.counters.pairs += pairs.length;
    this.counters.labelled += pairs.length;
    this.counters.cost += out.reduce((s, a) => s + (a.price_per_example ?? 0), 0);
    this.counters.seconds += (performance.now() - t0) / 1000;
    opts.onProgress?.(pairs.length, pairs.length);
    return out;
  }
}

/** How many pairs' instructions are not tasks of `world` (farm judges see only surface cues of those; the panel refuses them). */
export function unknownInstructions(world: World, pairs: readonly { instruction: string; input?: string }[]): { count: number; first: number } {
  let count = 0, first = -1;
  pairs.forEach((p, i) => {
    if (world.parse(p.instruction, p.input ?? '') === null) {
      count++;
      if (first < 0) first = i;
    }
  });
  return { count, first };
}

export interface FarmPairsOptions {
  n: number;
  seed?: number;
  /** Quality of the SFT-like responder that writes both outputs (0..1, default 0.6). */
  quality?: number;
  verbosity?: number;
  terseness?: number;
  /** Keep pairs with identical outputs (default false: resample, and skip the task if they stay equal). */
  keepIdentical?: boolean;
}

/**
 * Pairs like AlpacaFarm's preference data: two samples from one SFT-like policy for each instruction, so
 * that the outputs are of realistic, mixed quality and often close.
 */
export function farmPairs(world: World, opts: FarmPairsOptions): Pair[] {
  const seed = opts.seed ?? 0;
  const policy = world.responder({ name: 'sft-like', seed, quality: opts.quality ?? 0.6, verbosity: opts.verbosity ?? 0.35, terseness: opts.terseness ?? 0.25 });
  const rng = Rng.from(seed, 'feedback-pairs');
  const out: Pair[] = [];
  const seen = new Set<string>();
  for (let tries = 0; out.length < opts.n && tries < opts.n * 20; tries++) {
    const t = world.sampleTask(rng);
    const a = policy.respondTask(t, 0);
    let b = policy.respondTask(t, 1);
    for (let s = 2; s < 6 && b === a && !opts.keepIdentical; s++) b = policy.respondTask(t, s);
    if (a === b && !opts.keepIdentical) continue;
    const key = `${t.instruction}\u0000${t.input}\u0000${a}\u0000${b}`;
    if (seen.has(key)) continue; // the task space is finite: the same task may be drawn twice
    seen.add(key);
    out.push({ instruction: t.instruction, input: t.input, output_1: a, output_2: b });
  }
  return out;
}

/** The panel's votes on each pair, as reference raters for analyzeJudge. */
export function panelReferences(world: World, pairs: Pair[], size?: number): ReferencePair[] {
  return pairs.map((p) => ({ ...p, input: p.input ?? '', preferences: world.panel.votes({ instruction: p.instruction, input: p.input ?? '', output_1: p.output_1, output_2: p.output_2 }, size) }));
}

export interface PoolVsPanel {
  pairs: number;
  panelSize: number;
  /** The panel's own leave-one-out agreement: a rater against the majority of the other raters (%). */
  panelAgreement: number;
  /** The pool against the majority of the panel, on the same footing (leave-one-out subsets, %). */
  poolAgreement: number;
  /** The pool against the majority of all raters (alpaca_eval's "Human agreement" for a judge, %). */
  poolAgreementFull: number;
  pool: JudgeMetrics;
  panel: JudgeMetrics;
  members: JudgeMetrics[];
}

/** Measures the evaluation pool (and each member) against the panel on `pairs`, with `runs` seeds for variance. */
export async function measurePoolAgainstPanel(world: World, pairs: Pair[], opts: { runs?: number; seed?: number; judges?: readonly FarmJudgeConfig[] } = {}): Promise<PoolVsPanel> {
  const runs = opts.runs ?? 2;
  const seed = opts.seed ?? 0;
  const refs = panelReferences(world, pairs);
  const poolRuns: Annotation[][] = [];
  for (let r = 0; r < runs; r++) poolRuns.push(await createFarmPool(world, { seed: seed + r, judges: opts.judges }).annotate(pairs));
  const pool = analyzeJudge(poolRuns, refs, { annotator: 'pool' });
  // The panel row: every rater of a pair is one "run", analysed leave-one-out as alpaca_eval does for humans.
  const perRater: Annotation[][] = [];
  for (const r of refs) r.preferences.forEach((v, i) => (perRater[i] ??= []).push({ instruction: r.instruction, input: r.input, output_1: r.output_1, output_2: r.output_2, preference: v, annotator: 'panel', price_per_example: HUMAN_PRICE_PER_PAIR, time_per_example: HUMAN_SECONDS_PER_PAIR }));
  const panel = analyzeJudge(perRater, refs, { annotator: 'panel', isReference: true });
  const members: JudgeMetrics[] = [];
  for (const c of opts.judges ?? FARM_JUDGES) {
    const memberRuns: Annotation[][] = [];
    for (let r = 0; r < runs; r++) memberRuns.push(await createFarmJudge(world, c.name, seed + r).annotate(pairs));
    members.push(analyzeJudge(memberRuns, refs, { annotator: c.name }));
  }
  return {
    pairs: pool.n_pairs,
    panelSize: pool.n_references,
    panelAgreement: panel.human_agreement,
    poolAgreement: pool.agreement_loo ?? NaN,
    poolAgreementFull: pool.human_agreement,
    pool,
    panel,
    members,
  };
}
