// The feedback layer: one annotator interface (types.ts) and a registry that builds any annotator from a
// short spec string, as used by `farm annotate --annotator SPEC`, evaluation and the methods.
//
//   pool | pool:eval     the farm pool without label noise (evaluation)
//   pool:train           the farm pool with training-time flips, p = 0.25 unless opts.flipP says otherwise
//   <judge name>         one simulated judge of the farm pool (farmJudgeNames()), position-swapped
//   panel | human        the farm world's human panel (majority of its raters)
//   openai:MODEL         an LLM judge behind an OpenAI-compatible endpoint (FARM_JUDGE_BASE_URL / OPENAI_BASE_URL,
//                        key in FARM_JUDGE_API_KEY / OPENAI_API_KEY)
//   model:DIR            a reward model judge; needs the engine's scorer (registerScorerLoader or opts.scorer)
//   longest | shortest | first | second | random   reference baselines
import { createWorld, type World } from '../world/index.ts';
import { BASELINES, BaselineJudge, type BaselineKind } from './baselines.ts';
import { AnnotationCache, defaultCachePath } from './cache.ts';
import { checkOptionKeys } from '../engine/options.ts';
import { createFarmJudge, createFarmPool, DEFAULT_FLIP_P, PanelAnnotator } from './farm.ts';
import { farmJudgeNames } from './farm-judges.ts';
import { HttpJudge, type HttpJudgeOptions } from './http.ts';
import { RewardModelJudge } from './model-judge.ts';
import { AnnotatorPool } from './pool.ts';
import type { Annotator, AnnotatorStats, AnnotatorWithStats, PairScorer } from './types.ts';

export * from './types.ts';
export { AnnotatorPool, routeIndex, isSwapped, noiseDraw, swapBack, type PoolOptions } from './pool.ts';
export { AnnotationCache, defaultCachePath, pairKey, type CacheStats } from './cache.ts';
export { HttpJudge, JudgeConfigError, type HttpJudgeOptions } from './http.ts';
export { loadTemplate, parseTemplate, renderMessages, parseAnswers, type PromptTemplate } from './prompts.ts';
export { PRICE_TABLE, lookupPrice, costOf, type Price } from './pricing.ts';
export { RewardModelJudge, type RewardModelJudgeOptions } from './model-judge.ts';
export { BaselineJudge, BASELINES } from './baselines.ts';
export { FARM_JUDGES, FarmJudge, farmJudgeNames, type FarmJudgeConfig } from './farm-judges.ts';
export { createFarmPool, createFarmJudge, PanelAnnotator, unknownInstructions, farmPairs, panelReferences, measurePoolAgainstPanel, DEFAULT_FLIP_P, HUMAN_PRICE_PER_PAIR, HUMAN_SECONDS_PER_PAIR, type PoolVsPanel } from './farm.ts';
export { analyzeJudge, groupReferences, containsList, metricsToLeaderboardRow, type JudgeMetrics, type ReferencePair } from './analysis.ts';
export { readPairsFile, validatePairs, summarize } from './util.ts';
export { hashFields, contentKey } from './hash.ts';

export interface CreateAnnotatorOptions {
  /** Seed of routing, position swaps, noise and simulated judges' sampling (default 0). */
  seed?: number;
  /** The farm world to judge in (else createWorld({ seed: worldSeed })). */
  world?: World;
  /**
   * Seed of the world that wrote the instructions; farm annotators (pools, farm judges, the panel) need it or
   * `world`: a wrong world judges its instructions on surface cues only (farm records carry it as world_seed).
   */
  worldSeed?: number;
  /** Flip probability for pools (default 0; 0.25 for pool:train). */
  flipP?: number;
  /** Swap outputs randomly and swap labels back (default true). */
  swap?: boolean;
  /** Disk cache for HTTP judges: an open cache, a path, or null for none (default: defaultCachePath()). */
  cache?: AnnotationCache | string | null;
  /** Options of HTTP judges (batch size, temperature, limits, ...). */
  http?: Partial<HttpJudgeOptions>;
  /** The engine's reward scoring for model:DIR and for a model-based pool member. */
  scorer?: PairScorer;
}

export type ScorerLoader = (dir: string) => Promise<PairScorer>;
let scorerLoader: ScorerLoader | null = null;

/** Lets the engine layer (issue #4) provide reward scoring for `model:DIR` without this layer importing it. */
export function registerScorerLoader(loader: ScorerLoader | null): void {
  scorerLoader = loader;
}

const OPTION_KEYS = ['seed', 'world', 'worldSeed', 'flipP', 'swap', 'cache', 'http', 'scorer'];
const HTTP_KEYS = ['model', 'name', 'baseUrl', 'apiKey', 'template', 'batchSize', 'temperature', 'maxTokens', 'logitBias', 'soft', 'timeoutMs', 'maxRetries',
  'backoffBaseMs', 'backoffMaxMs', 'concurrency', 'rpm', 'price', 'cache', 'extraBody', 'log', 'cacheSalt', 'random'];

const worlds = new Map<number, World>();
function worldFor(opts: CreateAnnotatorOptions, spec: string): World {
  if (opts.world) {
    if (opts.worldSeed !== undefined && opts.worldSeed !== opts.world.seed) throw new Error(`annotator "${spec}": worldSeed ${opts.worldSeed} disagrees with the world passed (seed ${opts.world.seed})`);
    return opts.world;
  }
  const seed = opts.worldSeed;
  if (seed === undefined) {
    throw new Error(`annotator "${spec}" judges farm-world instructions and needs the seed of the world that wrote them: --world-seed on the command line ` +
      '(worldSeed or world in code); farm data records carry it as world_seed');
  }
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`worldSeed must be a non-negative integer, got ${seed}`);
  let w = worlds.get(seed);
  if (!w) worlds.set(seed, (w = createWorld({ seed })));
  return w;
}

/** Whether a spec judges in the farm world (and so needs the world seed that wrote the instructions). */
export function usesFarmWorld(spec: string): boolean {
  const s = spec.trim();
  return ['pool', 'pool:eval', 'pool:train', 'panel', 'human', 'humans'].includes(s) || farmJudgeNames().includes(s);
}

/** Every spec the registry knows by name (HTTP and model judges take a parameter). */
export function annotatorNames(): string[] {
  return ['pool', 'pool:eval', 'pool:train', 'panel', 'human', ...farmJudgeNames(), ...BASELINES, 'openai:MODEL', 'model:DIR'];
}

/** Gives any annotator a stats() (zeros where it keeps none). */
function withStats(a: Annotator): AnnotatorWithStats {
  if (typeof (a as AnnotatorWithStats).stats === 'function') return a as AnnotatorWithStats;
  const zero: AnnotatorStats = { pairs: 0, labelled: 0, failed: 0, cacheHits: 0, requests: 0, retries: 0, promptTokens: 0, completionTokens: 0, cost: 0, seconds: 0 };
  return Object.assign(Object.create(a), { stats: () => ({ ...zero }) }) as AnnotatorWithStats;
}

/** Builds an annotator from a spec (see the top of this file). Unknown specs give an Error listing the known ones. */
export async function createAnnotator(spec: string, opts: CreateAnnotatorOptions = {}): Promise<AnnotatorWithStats> {
  checkOptionKeys('annotator options', opts, OPTION_KEYS);
  checkOptionKeys('annotator options: http', opts.http, HTTP_KEYS);
  const s = spec.trim();
  const seed = opts.seed ?? 0;
  const swap = opts.swap ?? true;
  if (s === 'pool' || s === 'pool:eval' || s === 'pool:train') {
    const flipP = opts.flipP ?? (s === 'pool:train' ? DEFAULT_FLIP_P : 0);
    return createFarmPool(worldFor(opts, s), { seed, flipP, swap, scorer: opts.scorer, name: s === 'pool:eval' ? 'pool' : s });
  }
  if (s === 'panel' || s === 'human' || s === 'humans') return new PanelAnnotator(worldFor(opts, s), s);
  if (farmJudgeNames().includes(s)) {
    const judge = createFarmJudge(worldFor(opts, s), s, seed, swap);
    return opts.flipP ? new AnnotatorPool(judge.members, { name: s, seed, swap, flipP: opts.flipP }) : judge;
  }
  if ((BASELINES as readonly string[]).includes(s)) return new BaselineJudge(s as BaselineKind, seed);
  if (s.startsWith('openai:')) {
    const model = s.slice('openai:'.length);
    if (!model) throw new Error('annotator "openai:" needs a model name, e.g. openai:gpt-4o-mini');
    const cache = opts.cache === null ? null : opts.cache instanceof AnnotationCache ? opts.cache : AnnotationCache.open(opts.cache ?? defaultCachePath());
    const judge = new HttpJudge({ ...opts.http, model, cache });
    const wrapped = swap || opts.flipP ? new AnnotatorPool([judge], { name: judge.name, seed, swap, flipP: opts.flipP ?? 0 }) : judge;
    return wrapped as AnnotatorWithStats;
  }
  if (s.startsWith('model:')) {
    const dir = s.slice('model:'.length);
    if (!dir) throw new Error('annotator "model:" needs a directory, e.g. model:runs/rm');
    let scorer = opts.scorer;
    if (!scorer) {
      if (!scorerLoader) throw new Error(`annotator "${s}": reward-model judges need the engine's reward scoring (issue #4); pass opts.scorer or call registerScorerLoader()`);
      scorer = await scorerLoader(dir);
    }
    const judge = new RewardModelJudge(scorer, { name: s, seed });
    return swap || opts.flipP ? (new AnnotatorPool([judge], { name: s, seed, swap, flipP: opts.flipP ?? 0 }) as AnnotatorWithStats) : judge;
  }
  throw new Error(`unknown annotator "${spec}"; known: ${annotatorNames().join(', ')}`);
}

export { withStats };
