// The human panel (stands in for crowdworkers): raters with their own feature weights drawn around a
// shared mean, their own liking for longer answers, and judgment noise. Calibrated in docs/world.md.
import { FEATURE_NAMES, GOLD_WEIGHTS, type GoldScore } from './grade.ts';
import { Rng, hashParts } from './rng.ts';
import { rawTokens } from './text.ts';
import type { World } from './index.ts';

export interface PanelPair {
  instruction: string;
  input: string;
  output_1: string;
  output_2: string;
}

/** 1 or 2: that output wins; 0: draw (identical outputs, or a tied majority). */
export type PanelPreference = 0 | 1 | 2;

export interface PanelOptions {
  seed?: number;
  /** raters in the pool */
  raters?: number;
  /** raters asked per pair by majority() (odd avoids ties) */
  size?: number;
  /** lognormal spread of each rater's feature weights around the shared mean (GOLD_WEIGHTS) */
  weightSpread?: number;
  /** mean standard deviation of a rater's judgment noise, in units of the gold total */
  noise?: number;
  /** mean utility bonus per doubling of the response length (words) */
  lengthBias?: number;
  /** spread of the length bonus between raters (some raters like concise answers) */
  lengthBiasSpread?: number;
  /** mean utility bonus for the output shown first */
  positionBias?: number;
  /** mean probability that a judgment skips checking the answer (correctness and completeness unseen) */
  lapse?: number;
}

export const PANEL_DEFAULTS: Readonly<Required<PanelOptions>> = {
  seed: 0,
  raters: 16,
  size: 5,
  weightSpread: 0.5,
  noise: 0.22,
  lengthBias: 0.095,
  lengthBiasSpread: 1,
  positionBias: 0.005,
  lapse: 0.27,
};

export interface Rater {
  index: number;
  weights: Record<string, number>;
  noise: number;
  lengthBias: number;
  positionBias: number;
  lapse: number;
}

export interface Panel {
  readonly options: Readonly<Required<PanelOptions>>;
  readonly raters: readonly Rater[];
  /** One rater's preference (deterministic in the panel seed, the rater and the pair). */
  rate(pair: PanelPair, raterIndex: number): PanelPreference;
  /** The raters majority() asks for this pair (a seeded choice of `size` distinct raters). */
  ratersFor(pair: PanelPair, size?: number): number[];
  /** Majority of `size` raters (default options.size); 0 on a tie or identical outputs. */
  majority(pair: PanelPair, size?: number): PanelPreference;
  /** Every vote majority() would count. */
  votes(pair: PanelPair, size?: number): PanelPreference[];
  /** Rater utility of one output (before noise); `skim` leaves out correctness and completeness. */
  utility(rater: Rater, score: GoldScore, output: string, skim?: boolean): number;
}

export function createPanel(world: World, opts: PanelOptions = {}): Panel {
  const options = { ...PANEL_DEFAULTS, ...opts } as Required<PanelOptions>;
  if (!(options.raters >= 1) || !Number.isInteger(options.raters)) throw new Error(`panel: raters must be a positive integer, got ${options.raters}`);
  if (!(options.size >= 1) || !Number.isInteger(options.size) || options.size > options.raters) {
    throw new Error(`panel: size must be an integer in [1, raters=${options.raters}], got ${options.size}`);
  }
  const rng = Rng.from(world.seed, 'panel', options.seed);
  const raters: Rater[] = [];
  for (let i = 0; i < options.raters; i++) {
    const weights: Record<string, number> = {};
    for (const f of FEATURE_NAMES) weights[f] = Math.exp(options.weightSpread * rng.normal());
    raters.push({
      index: i,
      weights,
      noise: Math.exp(0.3 * rng.normal()),
      lengthBias: 1 + options.lengthBiasSpread * rng.normal(),
      positionBias: 1 + rng.normal(),
      lapse: Math.exp(0.4 * rng.normal()),
    });
  }
  // Pin the pool's means to the shared mean so that a small pool does not drift with the seed; the
  // raters still differ from each other by the drawn spread.
  const mean = (get: (r: Rater) => number) => raters.reduce((a, r) => a + get(r), 0) / raters.length;
  for (const f of FEATURE_NAMES) {
    const m = mean((r) => r.weights[f]);
    for (const r of raters) r.weights[f] *= GOLD_WEIGHTS[f] / m;
  }
  const mNoise = mean((r) => r.noise), mLen = mean((r) => r.lengthBias), mPos = mean((r) => r.positionBias), mLapse = mean((r) => r.lapse);
  for (const r of raters) {
    r.noise *= options.noise / mNoise;
    r.lengthBias = options.lengthBias * (1 + (r.lengthBias - mLen));
    r.positionBias = options.positionBias * (1 + (r.positionBias - mPos));
    r.lapse = Math.min(1, (r.lapse * options.lapse) / mLapse);
  }

  const logLength = (output: string) => Math.log2(1 + rawTokens(output).length);
  const utilityOf = (rater: Rater, score: GoldScore, logLen: number, skim: boolean): number => {
    let num = 0;
    let den = 0;
    for (const k in score.features) {
      if (skim && (k === 'correctness' || k === 'completeness')) continue;
      const w = rater.weights[k] ?? 0;
      num += w * score.features[k];
      den += w;
    }
    return (den > 0 ? num / den : 0) + rater.lengthBias * logLen;
  };
  const utility = (rater: Rater, score: GoldScore, output: string, skim = false) => utilityOf(rater, score, logLength(output), skim);

  const grades = new Map<string, GoldScore>();
  const gradeCached = (pair: PanelPair, output: string): GoldScore => {
    const key = `${pair.instruction}\u0000${pair.input}\u0000${output}`;
    let g = grades.get(key);
    if (!g) {
      if (grades.size > 50_000) grades.clear();
      g = world.grade(pair.instruction, pair.input, output);
      grades.set(key, g);
    }
    return g;
  };

  // One content hash per pair; each rater's noise derives from it (cheap for majority votes).
  const pairHash = (pair: PanelPair) => hashParts(world.seed, 'judge', options.seed, pair.instruction, pair.input, pair.output_1, pair.output_2);

  const rateWith = (pair: PanelPair, raterIndex: number, base: number, g1: GoldScore, g2: GoldScore): PanelPreference => {
    const rater = raters[raterIndex];
    if (!rater) throw new Error(`panel: rater index ${raterIndex} out of range [0, ${raters.length})`);
    const r = new Rng(hashParts(base, raterIndex));
    const eps = r.normal();
    const skim = r.chance(rater.lapse);
    const u1 = utilityOf(rater, g1, logLength(pair.output_1), skim);
    const u2 = utilityOf(rater, g2, logLength(pair.output_2), skim);
    const d = u1 - u2 + rater.positionBias + rater.noise * eps;
    return d > 0 ? 1 : 2;
  };

  const rate = (pair: PanelPair, raterIndex: number): PanelPreference => {
    if (!raters[raterIndex]) throw new Error(`panel: rater index ${raterIndex} out of range [0, ${raters.length})`);
    if (pair.output_1 === pair.output_2) return 0;
    return rateWith(pair, raterIndex, pairHash(pair), gradeCached(pair, pair.output_1), gradeCached(pair, pair.output_2));
  };

  const ratersFor = (pair: PanelPair, size = options.size): number[] => {
    if (size > raters.length) throw new Error(`panel: asked for ${size} raters, the pool has ${raters.length}`);
    const r = new Rng(hashParts(pairHash(pair), 'assign'));
    return r.sample(raters.map((x) => x.index), size);
  };

  const votes = (pair: PanelPair, size = options.size): PanelPreference[] => {
    const who = ratersFor(pair, size);
    if (pair.output_1 === pair.output_2) return who.map(() => 0);
    const base = pairHash(pair);
    const g1 = gradeCached(pair, pair.output_1), g2 = gradeCached(pair, pair.output_2);
    return who.map((i) => rateWith(pair, i, base, g1, g2));
  };

  const majority = (pair: PanelPair, size = options.size): PanelPreference => {
    if (pair.output_1 === pair.output_2) return 0;
    let one = 0;
    let two = 0;
    for (const v of votes(pair, size)) { if (v === 1) one++; else if (v === 2) two++; }
    return one > two ? 1 : two > one ? 2 : 0;
  };

  return { options, raters, rate, ratersFor, majority, votes, utility };
}
