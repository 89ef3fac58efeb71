// Supervised fine-tuning on (instruction, input, output) records: the Alpaca prompt, loss on the response
// (and EOS) only, AdamW with warmup + cosine decay. AlpacaFarm's SFT step is the start of every method, and
// its loop (trainSupervised) is the one FeedME, reward conditioning and expert iteration train with.
import type { Engine, Model, Optimizer, SequenceExample } from '../engine/index.ts';
import { buildSftExample, type AlpacaRecord, type TextEncoderLike } from '../data/template.ts';
import { checkpointer, type CheckpointOptions } from './checkpoint.ts';
import { checkFinite, ConfigError, resolveConfig, shuffled } from './common.ts';

export { shuffled };

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

/** What a step logs (`loss` is the mean NLL per response token; TRL's `train/loss`, `grad_norm`, `learning_rate`). */
export interface SftStepLog { step: number; totalSteps: number; epoch: number; loss: number; gradNorm: number; lr: number; tokensPerSecond: number }
export interface SftResult { steps: number; finalLoss: number; meanLossLastEpoch: number; tokens: number; seconds: number; optimizer: Optimizer; resumedFrom?: number }

export const SFT_DEFAULTS: Required<Omit<SftConfig, 'onStep' | 'maxSteps' | 'maxLength'>> = {
  lr: 1e-3, epochs: 1, batchSize: 16, warmupRatio: 0.03, weightDecay: 0, maxGradNorm: 1, seed: 1,
};

/** One-line help per field, for `farm sft --help` and friends (the doc comments above say the same). */
export const SFT_HELP: Record<keyof Omit<SftConfig, 'onStep'>, string> = {
  lr: 'peak learning rate (AlpacaFarm 2e-5 on LLaMA-7B; farm models ~1e-3)',
  epochs: 'passes over the data',
  batchSize: 'sequences per optimizer step',
  warmupRatio: 'fraction of the steps spent warming up linearly (AlpacaFarm 0.03)',
  weightDecay: 'decoupled weight decay (AlpacaFarm 0)',
  maxGradNorm: 'global gradient-norm clip (0 = off)',
  maxLength: 'longest prompt + response in tokens; longer responses are cut (default: the context)',
  seed: 'seed of the data order',
  maxSteps: 'stop after this many optimizer steps (default: epochs over the data)',
};

/** Run-level hooks of the training loops: checkpoints and resume, per-step logs. */
export interface TrainHooks<L> {
  checkpoint?: CheckpointOptions;
  /** Called after each step (after its checkpoint, when one is due); return false to stop. */
  onStep?: (log: L) => void | boolean | Promise<void | boolean>;
}

/** Resolves an SFT config (unknown keys and bad values are errors). */
export function resolveSftConfig(what: string, config: SftConfig = {}) {
  const c = resolveConfig(what, SFT_DEFAULTS as SftConfig, config, {
    int: [['epochs', 1], ['batchSize', 1], ['seed', 0], ['maxSteps', 1], ['maxLength', 2]],
    range: [['lr', 0, Infinity], ['warmupRatio', 0, 1], ['weightDecay', 0, Infinity], ['maxGradNorm', 0, Infinity]],
    optional: ['onStep', 'maxSteps', 'maxLength'],
  }) as Required<Omit<SftConfig, 'maxSteps' | 'maxLength' | 'onStep'>> & SftConfig;
  return c;
}

/**
 * The supervised loop on token examples: seeded shuffles per epoch (order of epoch e = shuffled(n, seed + e)),
 * mean NLL over the response tokens of a batch, the optimizer's schedule. With hooks.checkpoint it saves the
 * model, AdamW state and counters every K steps and resumes from the latest checkpoint bit for bit.
 */
export async function trainSupervised(engine: Engine, model: Model, examples: SequenceExample[], padId: number,
  config: SftConfig, what = 'SFT', hooks: TrainHooks<SftStepLog> = {}): Promise<SftResult> {
  const c = resolveSftConfig(what, config);
  const usable = examples.filter((e) => e.response.length > 0);
  if (usable.length === 0) throw new ConfigError(`${what}: no training examples with a response that fits the context (${examples.length} given)`);
  const stepsPerEpoch = Math.ceil(usable.length / c.batchSize);
  const totalSteps = Math.min(c.maxSteps ?? Infinity, stepsPerEpoch * c.epochs);
  const optimizer = engine.createOptimizer(model, {
    lr: c.lr, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm, kind: 'cosine',
    warmupSteps: Math.floor(c.warmupRatio * totalSteps), totalSteps,
  });
  const ckpt = checkpointer(engine, hooks.checkpoint, what);
  const parts = { models: { model }, optimizers: { model: optimizer } };
  const restored = await ckpt?.restore(parts);
  let step = restored?.step ?? 0, tokens = (restored?.tokens as number) ?? 0;
  let finalLoss = (restored?.finalLoss as number) ?? NaN, epochLoss = (restored?.epochLoss as number) ?? 0, epochSteps = (restored?.epochSteps as number) ?? 0;
  const start = performance.now(), tokens0 = tokens;
  let stopped = false;
  for (let epoch = Math.floor(step / stepsPerEpoch); step < totalSteps && !stopped; epoch++) {
    const order = shuffled(usable.length, c.seed + epoch);
    const first = (step - epoch * stepsPerEpoch) * c.batchSize;  // resuming mid-epoch
    if (first === 0) { epochLoss = 0; epochSteps = 0; }
    for (let i = first; i < order.length && step < totalSteps; i += c.batchSize) {
      const batch = order.slice(i, i + c.batchSize).map((k) => usable[k]);
      const s = await engine.sftStep(model, batch, optimizer, { padId });
      step++;
      checkFinite(what, step, { loss: s.loss, grad_norm: s.gradNorm });
      tokens += s.tokens; finalLoss = s.loss; epochLoss += s.loss; epochSteps++;
      if (ckpt?.due(step, totalSteps)) await ckpt.save(parts, { step, tokens, finalLoss, epochLoss, epochSteps });
      const log: SftStepLog = { step, totalSteps, epoch, loss: s.loss, gradNorm: s.gradNorm, lr: s.lr,
        tokensPerSecond: (tokens - tokens0) / ((performance.now() - start) / 1000) };
      config.onStep?.(log);
      if ((await hooks.onStep?.(log)) === false) { stopped = true; break; }
    }
  }
  return { steps: step, finalLoss, meanLossLastEpoch: epochLoss / Math.max(1, epochSteps), tokens,
    seconds: (performance.now() - start) / 1000, optimizer, ...(restored ? { resumedFrom: restored.step } : {}) };
}

/**
 * Token examples of records: BOS + Alpaca prompt (+ control ids after BOS), response + EOS, cut to maxLength.
 * Records whose prompt alone does not fit are left out (counted in `skipped`).
 */
export function sftExamples(tokenizer: TextEncoderLike, records: AlpacaRecord[], maxLength: number, control: readonly number[] = []): SequenceExample[] & { skipped?: number } {
  const out: SequenceExample[] & { skipped?: number } = [];
  let skipped = 0;
  for (const r of records) {
    let ex;
    try { ex = buildSftExample(tokenizer, r, { maxLength: maxLength - control.length }); } catch (e) {
      if (e instanceof RangeError && /prompt alone/.test(e.message)) { skipped++; continue; }
      throw e;
    }
    const at = tokenizer.bosId !== null && ex.inputIds[0] === tokenizer.bosId ? 1 : 0;
    const prompt = ex.inputIds.slice(0, ex.promptLength);
    out.push({ prompt: [...prompt.slice(0, at), ...control, ...prompt.slice(at)], response: ex.inputIds.slice(ex.promptLength) });
  }
  out.skipped = skipped;
  return out;
}

/** Trains `model` in place on `records` and returns the statistics (the optimizer included, for resuming). */
export async function sft(engine: Engine, model: Model, tokenizer: TextEncoderLike & { readonly padId?: number | null },
  records: AlpacaRecord[], config: SftConfig = {}, hooks: TrainHooks<SftStepLog> = {}): Promise<SftResult> {
  const c = resolveSftConfig('SFT', config);
  if (records.length === 0) throw new ConfigError('sft: no training records');
  const maxLength = Math.min(c.maxLength ?? model.config.max_position_embeddings, model.config.max_position_embeddings);
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  return trainSupervised(engine, model, sftExamples(tokenizer, records, maxLength), padId, config, 'SFT', hooks);
}
