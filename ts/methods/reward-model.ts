// Reward modelling on pairwise preferences (AlpacaFarm's RM: Bradley-Terry on a scalar head read at the
// last token of the Alpaca prompt + response), and the scorer that turns a reward model into a judge.
import { join } from 'node:path';
import type { Engine, Model } from '../engine/index.ts';
import { formatPrompt } from '../data/template.ts';
import type { PairScorer, Pair } from '../feedback/types.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { shuffled } from './sft.ts';

export interface RewardModelConfig {
  /** Peak learning rate (AlpacaFarm RM: 3e-6 on LLaMA-7B; tiny farm models want ~5e-4). */
  lr?: number;
  epochs?: number;
  /** Pairs per optimizer step. */
  batchSize?: number;
  warmupRatio?: number;
  weightDecay?: number;
  maxGradNorm?: number;
  seed?: number;
  onStep?: (s: { step: number; totalSteps: number; loss: number; accuracy: number }) => void;
}

export interface PreferenceRecord { instruction: string; input: string; output_1: string; output_2: string; preference: number }

export const REWARD_MODEL_DEFAULTS = { lr: 5e-4, epochs: 1, batchSize: 16, warmupRatio: 0.03, weightDecay: 0, maxGradNorm: 1, seed: 1 };

type Encoder = Pick<Tokenizer, 'encode' | 'eosId' | 'padId'>;

function encodePair(tok: Encoder, r: Pair) {
  const prompt = tok.encode(formatPrompt(r), { addBos: true });
  const out = (s: string) => [...tok.encode(s), ...(tok.eosId !== null ? [tok.eosId] : [])];
  return { prompt, output1: out(r.output_1), output2: out(r.output_2) };
}

/** Trains `model` (which needs scalar_head: true) in place; draws (preference 0) are skipped. */
export async function trainRewardModel(engine: Engine, model: Model, tokenizer: Encoder, records: PreferenceRecord[],
  config: RewardModelConfig = {}) {
  const c = { ...REWARD_MODEL_DEFAULTS, ...config };
  const data = records.filter((r) => r.preference >= 1 && r.preference <= 2).map((r) => ({ ...encodePair(tokenizer, r), preference: r.preference }));
  if (data.length === 0) throw new Error('trainRewardModel: no labelled pairs (preferences must be in [1, 2])');
  const totalSteps = Math.ceil(data.length / c.batchSize) * c.epochs;
  const optimizer = engine.createOptimizer(model, { lr: c.lr, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm,
    kind: 'cosine', warmupSteps: Math.floor(c.warmupRatio * totalSteps), totalSteps });
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  let step = 0, epochLoss = 0, epochCorrect = 0, epochPairs = 0;
  for (let epoch = 0; epoch < c.epochs; epoch++) {
    const order = shuffled(data.length, c.seed + epoch);
    epochLoss = 0; epochCorrect = 0; epochPairs = 0;
    for (let i = 0; i < order.length; i += c.batchSize) {
      const batch = order.slice(i, i + c.batchSize).map((k) => data[k]);
      const s = await engine.rewardStep(model, batch, optimizer, { padId });
      step++;
      epochLoss += s.loss * batch.length; epochCorrect += s.accuracy * batch.length; epochPairs += batch.length;
      c.onStep?.({ step, totalSteps, loss: s.loss, accuracy: s.accuracy });
    }
  }
  // pair-weighted means over the last epoch (the model changes during it: a training figure, not a held-out one)
  return { steps: step, lastEpochLoss: epochLoss / epochPairs, lastEpochAccuracy: epochCorrect / epochPairs, optimizer };
}

/** A PairScorer over a reward model: the rewards of output_1 and output_2 of each pair. */
export function rewardScorer(engine: Engine, model: Model, tokenizer: Encoder, opts: { batchSize?: number } = {}): PairScorer {
  if (!model.config.scalar_head) throw new Error('rewardScorer: the model has no scalar head (not a reward model)');
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  return {
    async score(pairs: Pair[]) {
      if (pairs.length === 0) return [];
      const seqs = pairs.flatMap((p) => {
        const e = encodePair(tokenizer, p);
        return [{ prompt: e.prompt, response: e.output1 }, { prompt: e.prompt, response: e.output2 }];
      });
      const r = await engine.scoreResponses(model, seqs, { batchSize: opts.batchSize ?? 32, padId });
      return pairs.map((_, i) => [r[2 * i], r[2 * i + 1]] as [number, number]);
    },
  };
}

/** Loads a reward model folder (config.json + model.safetensors with score.* + tokenizer.json) as a scorer. */
export async function loadRewardScorer(engine: Engine, dir: string): Promise<PairScorer> {
  const model = await engine.loadModel(dir);
  if (!model.config.scalar_head) throw new Error(`${dir}: not a reward model (no score.weight / scalar head in the checkpoint)`);
  return rewardScorer(engine, model, Tokenizer.load(join(dir, 'tokenizer.json')));
}
