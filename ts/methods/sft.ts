// Supervised fine-tuning on (instruction, input, output) records: the Alpaca prompt, loss on the response
// (and EOS) only, AdamW with warmup + cosine decay. AlpacaFarm's SFT step is the start of every method.
import type { Engine, Model, Optimizer } from '../engine/index.ts';
import { buildSftExample, type AlpacaRecord, type TextEncoderLike } from '../data/template.ts';

export interface SftConfig {
  /** Peak learning rate (AlpacaFarm SFT on LLaMA-7B: 2e-5; tiny farm models want ~1e-3). */
  lr?: number;
  /** Passes over the data. */
  epochs?: number;
  /** Sequences per optimizer step. */
  batchSize?: number;
  /** Fraction of the steps spent warming up linearly (AlpacaFarm: 0.03). */
  warmupRatio?: number;
  /** Decoupled weight decay (AlpacaFarm: 0). */
  weightDecay?: number;
  /** Global gradient-norm clip (0 disables). */
  maxGradNorm?: number;
  /** Longest sequence in tokens (prompt + response); longer examples lose the end of the response. */
  maxLength?: number;
  /** Seed of the data order. */
  seed?: number;
  /** Stop after this many optimizer steps (default: epochs over the data). */
  maxSteps?: number;
  /** Called after every step. */
  onStep?: (s: SftStepLog) => void;
}

export interface SftStepLog { step: number; totalSteps: number; epoch: number; loss: number; gradNorm: number; lr: number; tokensPerSecond: number }
export interface SftResult { steps: number; finalLoss: number; meanLossLastEpoch: number; tokens: number; seconds: number; optimizer: Optimizer }

export const SFT_DEFAULTS: Required<Omit<SftConfig, 'onStep' | 'maxSteps' | 'maxLength'>> = {
  lr: 1e-3, epochs: 1, batchSize: 16, warmupRatio: 0.03, weightDecay: 0, maxGradNorm: 1, seed: 1,
};

/** Trains `model` in place on `records` and returns the statistics (the optimizer included, for resuming). */
export async function sft(engine: Engine, model: Model, tokenizer: TextEncoderLike & { readonly padId?: number | null },
  records: AlpacaRecord[], config: SftConfig = {}): Promise<SftResult> {
  const c = { ...SFT_DEFAULTS, ...config };
  if (records.length === 0) throw new Error('sft: no training records');
  if (!Number.isInteger(c.batchSize) || c.batchSize < 1) throw new Error(`sft: batchSize must be a positive integer, got ${c.batchSize}`);
  const maxLength = Math.min(config.maxLength ?? model.config.max_position_embeddings, model.config.max_position_embeddings);
  const examples = records.map((r) => {
    const ex = buildSftExample(tokenizer, r, { maxLength });
    return { prompt: ex.inputIds.slice(0, ex.promptLength), response: ex.inputIds.slice(ex.promptLength) };
  }).filter((e) => e.response.length > 0);
  const stepsPerEpoch = Math.ceil(examples.length / c.batchSize);
  const totalSteps = Math.min(config.maxSteps ?? Infinity, stepsPerEpoch * c.epochs);
  const optimizer = engine.createOptimizer(model, {
    lr: c.lr, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm, kind: 'cosine',
    warmupSteps: Math.floor(c.warmupRatio * totalSteps), totalSteps,
  });
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  const start = performance.now();
  let step = 0, tokens = 0, finalLoss = NaN, epochLoss = 0, epochSteps = 0;
  for (let epoch = 0; step < totalSteps; epoch++) {
    const order = shuffled(examples.length, c.seed + epoch);
    epochLoss = 0; epochSteps = 0;
    for (let i = 0; i < order.length && step < totalSteps; i += c.batchSize) {
      const batch = order.slice(i, i + c.batchSize).map((k) => examples[k]);
      const s = await engine.sftStep(model, batch, optimizer, { padId });
      step++; tokens += s.tokens; finalLoss = s.loss; epochLoss += s.loss; epochSteps++;
      config.onStep?.({ step, totalSteps, epoch, loss: s.loss, gradNorm: s.gradNorm, lr: s.lr,
        tokensPerSecond: tokens / ((performance.now() - start) / 1000) });
    }
  }
  return { steps: step, finalLoss, meanLossLastEpoch: epochLoss / Math.max(1, epochSteps), tokens,
    seconds: (performance.now() - start) / 1000, optimizer };
}

/** A seeded Fisher-Yates permutation of 0..n-1 (xorshift32; the same in every process). */
export function shuffled(n: number, seed: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  let s = (seed * 2654435761) >>> 0 || 0x9e3779b9;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
