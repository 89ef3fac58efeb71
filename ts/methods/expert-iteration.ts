// Expert iteration (AlpacaFarm): best-of-n outputs of the policy on the unlabeled instructions, then supervised
// fine-tuning of the policy on those choices. AlpacaFarm runs one round (best-of-16, SFT from the SFT model);
// more rounds repeat the two steps with the improved policy.
import type { Engine, Model } from '../engine/index.ts';
import type { AlpacaExample } from '../data/template.ts';
import { bestOfN, type BestOfNConfig, type BestOfNMetrics } from './best-of-n.ts';
import { sft, type SftConfig } from './sft.ts';
import { resolveConfig, type MethodTokenizer, type RewardSource } from './common.ts';

export interface ExpertIterationConfig {
  /** Rounds of (best-of-n, SFT) (AlpacaFarm: 1). */
  rounds: number;
  /** Best-of-n settings (AlpacaFarm: n 16, temperature 1.0, top-p 0.9); see BestOfNConfig. */
  bestOfN: Partial<BestOfNConfig>;
  /** SFT settings for training on the choices (AlpacaFarm: its SFT recipe); see SftConfig. */
  sft: SftConfig;
  /** Keep only choices whose reward is at least this (−∞ = keep all, as AlpacaFarm). */
  minReward: number;
  /** Called after each round. */
  onRound?: (r: ExpertIterationRound) => void;
}

export const EXPERT_ITERATION_DEFAULTS: Readonly<ExpertIterationConfig> = Object.freeze({
  rounds: 1, bestOfN: {}, sft: {}, minReward: -Infinity,
});

export interface ExpertIterationRound {
  round: number;
  bestOfN: BestOfNMetrics;
  /** Choices kept for SFT (after minReward). */
  kept: number;
  sft: { steps: number; finalLoss: number; meanLossLastEpoch: number; seconds: number };
}

export interface ExpertIterationResult {
  rounds: ExpertIterationRound[];
  /** The choices of the last round (instruction, input, output, reward), what the policy was last trained on. */
  data: { instruction: string; input: string; output: string; reward: number }[];
}

/** Trains `policy` in place: `rounds` × (best-of-n on `records` with `reward`, then SFT on the argmax outputs). */
export async function expertIteration(engine: Engine, policy: Model, reward: RewardSource, tokenizer: MethodTokenizer,
  records: AlpacaExample[], config: Partial<ExpertIterationConfig> = {}): Promise<ExpertIterationResult> {
  const c = resolveConfig('expert iteration', EXPERT_ITERATION_DEFAULTS as ExpertIterationConfig, config, { int: [['rounds', 1]] });
  if (typeof c.minReward !== 'number' || Number.isNaN(c.minReward)) throw new Error(`expert iteration config minReward must be a number, got ${c.minReward}`);
  if (records.length === 0) throw new Error('expertIteration: no records');
  const rounds: ExpertIterationRound[] = [];
  let data: ExpertIterationResult['data'] = [];
  for (let round = 0; round < c.rounds; round++) {
    const seed = (c.bestOfN.seed ?? 1) + round;  // fresh samples each round
    const bon = await bestOfN(engine, policy, reward, tokenizer, records, { ...c.bestOfN, seed, generator: 'expert-iteration' });
    data = bon.outputs.filter((o) => o.reward >= c.minReward)
      .map((o) => ({ instruction: o.instruction, input: o.input, output: o.output, reward: o.reward }));
    if (data.length === 0) throw new Error(`expertIteration round ${round + 1}: no choice has reward >= minReward ${c.minReward}`);
    const s = await sft(engine, policy, tokenizer, data, { ...c.sft, seed: (c.sft.seed ?? 1) + round });
    const r: ExpertIterationRound = {
      round: round + 1, bestOfN: bon.metrics, kept: data.length,
      sft: { steps: s.steps, finalLoss: s.finalLoss, meanLossLastEpoch: s.meanLossLastEpoch, seconds: s.seconds },
    };
    rounds.push(r);
    c.onRound?.(r);
  }
  return { rounds, data };
}
