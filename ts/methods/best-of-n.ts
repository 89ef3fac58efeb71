// Best-of-n (AlpacaFarm): sample n responses per instruction from a policy, score each with a reward model,
// keep the argmax. A decoding method for evaluation outputs, and the data step of expert iteration.
//
// Randomness: sample j of instruction i is drawn from the RNG stream (seed, i, j), so results do not depend on
// promptBatchSize, and the first sample of best-of-n is exactly the sample best-of-1 would return.
import type { Engine, Model } from '../engine/index.ts';
import type { AlpacaExample } from '../data/template.ts';
import {
  batches, ConfigError, encodePrompt, mean, NO_CONTROL, resolveConfig, sampleCandidates, since, toRewardFn, withStep,
  type MethodTokenizer, type PromptControl, type RewardSource,
} from './common.ts';

export interface BestOfNConfig {
  /** n, samples per instruction (AlpacaFarm: 16; their sweep goes up to 1024). */
  n: number;
  /** T, sampling temperature (AlpacaFarm: 1.0). */
  temperature: number;
  /** p of nucleus sampling (AlpacaFarm: 0.9; 1 = off). */
  topP: number;
  /** k of top-k sampling (0 = off). */
  topK: number;
  /** Cap on new tokens per sample (AlpacaFarm: 300). */
  maxNewTokens: number;
  /** Instructions sampled and scored together: bounds memory to promptBatchSize × n samples. */
  promptBatchSize: number;
  /** Sequences per reward-model forward pass. */
  scoreBatchSize: number;
  /** Sampling seed. */
  seed: number;
  /** Name written to the outputs' `generator` field (default `best-of-<n>`). */
  generator?: string;
  /** Keep every sample and its reward in the result (memory: instructions × n). */
  keepCandidates: boolean;
  /** Called after each batch of instructions. */
  onProgress?: (p: { done: number; total: number }) => void;
  /** Control tokens of a conditioned policy (its checkpoint's conditioning.json); rewards see the plain prompt. */
  control?: PromptControl;
}

export const BEST_OF_N_HELP: Record<'n' | 'temperature' | 'topP' | 'topK' | 'maxNewTokens' | 'promptBatchSize' | 'scoreBatchSize' | 'seed', string> = {
  n: 'samples per instruction (AlpacaFarm 16; sweeps to 1024)',
  temperature: 'sampling temperature (AlpacaFarm 1.0)',
  topP: 'nucleus p (AlpacaFarm 0.9; 1 = off)',
  topK: 'top-k (0 = off)',
  maxNewTokens: 'cap on new tokens per sample (AlpacaFarm 300)',
  promptBatchSize: 'instructions sampled and scored together (memory: x n samples)',
  scoreBatchSize: 'sequences per reward-model forward pass',
  seed: 'sampling seed',
};

export const BEST_OF_N_DEFAULTS: Readonly<BestOfNConfig> = Object.freeze({
  n: 16, temperature: 1, topP: 0.9, topK: 0, maxNewTokens: 300, promptBatchSize: 32, scoreBatchSize: 32, seed: 1, keepCandidates: false,
});

/** One chosen output, in alpaca_eval's model_outputs format plus its reward. */
export interface BestOfNOutput {
  instruction: string;
  input: string;
  output: string;
  generator: string;
  /** Reward of the chosen sample. */
  reward: number;
  /** Index (0..n-1) of the chosen sample. */
  index: number;
  /** Its token ids (EOS included when it stopped). */
  tokens: number[];
  finishReason: string;
}

export interface BestOfNMetrics {
  'bon/n': number;
  /** Mean reward of the chosen samples. */
  'bon/reward_best': number;
  /** Mean reward over all samples (the expected reward of one sample). */
  'bon/reward_mean': number;
  /** Mean reward of each instruction's first sample: best-of-1 with the same seed. */
  'bon/reward_first': number;
  /** Mean reward std within an instruction's n samples. */
  'bon/reward_std': number;
  /** Mean length in tokens of the chosen samples. */
  'bon/response_length': number;
  /** Fraction of chosen samples that ended with EOS (not cut by maxNewTokens). */
  'bon/eos_fraction': number;
  'bon/instructions': number;
  'bon/samples': number;
  /** Tokens sampled in total (every sample, EOS included): the compute TreeBoN is compared at. */
  'bon/generated_tokens': number;
  'time/generate_ms': number;
  'time/score_ms': number;
}

export interface BestOfNResult {
  outputs: BestOfNOutput[];
  /** Every sample with its reward, per instruction (only with keepCandidates). */
  candidates?: { output: string; tokens: number[]; reward: number }[][];
  metrics: BestOfNMetrics;
}

/** Every best-of-n setting, defaults filled in and checked. */
export function resolveBestOfNConfig(config: Partial<BestOfNConfig> = {}): BestOfNConfig {
  const c = resolveConfig('best-of-n', BEST_OF_N_DEFAULTS as BestOfNConfig, config, {
    int: [['n', 1], ['maxNewTokens', 1], ['promptBatchSize', 1], ['scoreBatchSize', 1], ['topK', 0], ['seed', 0]],
    range: [['temperature', 0, Infinity], ['topP', Number.MIN_VALUE, 1]],
    optional: ['generator', 'onProgress', 'control'],
  });
  if (typeof c.keepCandidates !== 'boolean') throw new ConfigError(`best-of-n config keepCandidates must be true or false, got ${c.keepCandidates}`);
  return c;
}

/** Best-of-n decoding of `records` with `policy`, rewards from `reward` (see RewardSource). */
export async function bestOfN(engine: Engine, policy: Model, reward: RewardSource, tokenizer: MethodTokenizer,
  records: AlpacaExample[], config: Partial<BestOfNConfig> = {}): Promise<BestOfNResult> {
  const c = resolveBestOfNConfig(config);
  if (records.length === 0) throw new Error('bestOfN: no records');
  const generator = c.generator ?? `best-of-${c.n}`;
  const score = toRewardFn(engine, reward, tokenizer, { batchSize: c.scoreBatchSize });
  const outputs: BestOfNOutput[] = [];
  const candidates: BestOfNResult['candidates'] = c.keepCandidates ? [] : undefined;
  let sumAll = 0, sumFirst = 0, sumStd = 0, genMs = 0, scoreMs = 0, genTokens = 0;
  const idx = records.map((_, i) => i);
  for (const rows of batches(idx, c.promptBatchSize)) {
    const prompts = rows.map((i) => encodePrompt(tokenizer, records[i]));
    let t = performance.now();
    const { samples, candidates: byRow } = await sampleCandidates(engine, policy, tokenizer, records, rows, prompts, rows, c, c.control ?? NO_CONTROL);
    genMs += since(t);
    for (const g of samples) for (const x of g) genTokens += x.tokens.length;
    const cands = byRow.flat();
    t = performance.now();
    const rewards = await withStep('best-of-n', outputs.length, () => score(cands));
    scoreMs += since(t);
    rows.forEach((i, k) => {
      const base = k * c.n;
      let best = 0;
      for (let j = 1; j < c.n; j++) if (rewards[base + j] > rewards[base + best]) best = j;  // ties: the earliest sample
      const group = rewards.subarray(base, base + c.n);
      const m = mean(group);
      sumAll += m * c.n;
      sumFirst += group[0];
      sumStd += Math.sqrt(group.reduce((a, x) => a + (x - m) ** 2, 0) / c.n);
      const s = samples[k][best], cand = cands[base + best];
      outputs.push({ instruction: records[i].instruction, input: records[i].input ?? '', output: cand.output, generator,
        reward: group[best], index: best, tokens: cand.response, finishReason: s.finishReason });
      candidates?.push(samples[k].map((x, j) => ({ output: cands[base + j].output, tokens: x.tokens, reward: group[j] })));
    });
    c.onProgress?.({ done: outputs.length, total: records.length });
  }
  const N = records.length;
  return {
    outputs,
    ...(candidates ? { candidates } : {}),
    metrics: {
      'bon/n': c.n,
      'bon/reward_best': mean(outputs.map((o) => o.reward)),
      'bon/reward_mean': sumAll / (N * c.n),
      'bon/reward_first': sumFirst / N,
      'bon/reward_std': sumStd / N,
      'bon/response_length': mean(outputs.map((o) => o.tokens.length)),
      'bon/eos_fraction': outputs.filter((o) => o.finishReason === 'stop').length / N,
      'bon/instructions': N,
      'bon/samples': N * c.n,
      'bon/generated_tokens': genTokens,
      'time/generate_ms': genMs,
      'time/score_ms': scoreMs,
    },
  };
}
