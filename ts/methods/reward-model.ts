// Reward modelling on pairwise preferences (AlpacaFarm's RM: Bradley-Terry on a scalar head read at the
// last token of the Alpaca prompt + response), and the scorer that turns a reward model into a judge.
import { join } from 'node:path';
import { evaluateRewardModel, rewardGradients, type Engine, type Model, type Optimizer, type PreferencePair } from '../engine/index.ts';
import type { PairScorer, Pair } from '../feedback/types.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { checkpointer } from './checkpoint.ts';
import { checkFinite, ConfigError, encodePrompt, encodeResponse, padIdOf, resolveConfig, shuffled, type MethodTokenizer } from './common.ts';
import type { TrainHooks } from './sft.ts';

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
  onStep?: (s: RewardModelLog) => void;
}

/** A training step's statistics (TRL's reward-trainer names) and, at the end of each epoch, `eval/*` on held-out pairs. */
export interface RewardModelLog {
  step: number; totalSteps: number; epoch: number;
  loss: number; accuracy: number; margin: number; 'rewards/chosen': number; 'rewards/rejected': number; gradNorm: number; lr: number;
  'eval/loss'?: number; 'eval/accuracy'?: number; 'eval/margin'?: number;
  /** An auxiliary loss's statistics (RewardAuxiliary), e.g. `uml/loss`. */
  [auxiliary: string]: number | undefined;
}

/**
 * Another loss trained together with the reward model (RLP-UML's information bottleneck): before each update it
 * accumulates its gradients into the model's, after the Bradley-Terry ones; the clip and AdamW step see the sum.
 */
export interface RewardAuxiliary {
  /** Accumulates the auxiliary gradients for optimizer step `step` (1-based); returns statistics for the log. */
  gradients(step: number): Promise<Record<string, number>>;
  /** After the reward model's update (the auxiliary's own parameters step here). */
  afterStep?(step: number): void;
  /** Plain-JSON state saved with checkpoints, and its restore. */
  state?(): unknown;
  restore?(state: unknown): void;
}

export interface PreferenceRecord { instruction: string; input: string; output_1: string; output_2: string; preference: number }

export const REWARD_MODEL_DEFAULTS = { lr: 5e-4, epochs: 1, batchSize: 16, warmupRatio: 0.03, weightDecay: 0, maxGradNorm: 1, seed: 1 };

export const REWARD_MODEL_HELP: Record<keyof typeof REWARD_MODEL_DEFAULTS, string> = {
  lr: 'peak learning rate (AlpacaFarm 3e-6 on LLaMA-7B; farm models ~1e-3)',
  epochs: 'passes over the pairs (AlpacaFarm 1)',
  batchSize: 'pairs per optimizer step (AlpacaFarm 16)',
  warmupRatio: 'fraction of the steps spent warming up linearly',
  weightDecay: 'decoupled weight decay',
  maxGradNorm: 'global gradient-norm clip (0 = off)',
  seed: 'seed of the data order',
};

type Encoder = MethodTokenizer;

/**
 * Prompt and both responses as tokens; with `context`, responses are cut so that prompt + response fits (the
 * reward is then read at the cut, as SFT cuts its examples), and a prompt that leaves no room is an error.
 */
function encodePair(tok: Encoder, r: Pair, context?: number) {
  const prompt = encodePrompt(tok, r);
  let output1 = encodeResponse(tok, r.output_1), output2 = encodeResponse(tok, r.output_2);
  if (context !== undefined) {
    const room = context - prompt.length;
    if (room < 1) throw new ConfigError(`the prompt of instruction ${JSON.stringify(r.instruction.slice(0, 60))} has ${prompt.length} tokens, leaving no room for a response in the reward model's context of ${context}`);
    if (output1.length > room) output1 = output1.slice(0, room);
    if (output2.length > room) output2 = output2.slice(0, room);
  }
  return { prompt, output1, output2 };
}

/** Labelled pairs a reward model can learn from: preference in [1, 2] (draws and failures left out), distinct outputs. */
export function usablePreferences<R extends PreferenceRecord>(records: readonly R[]): R[] {
  return records.filter((r) => typeof r.preference === 'number' && r.preference >= 1 && r.preference <= 2 && r.output_1 !== r.output_2);
}

/** Token pairs for engine.rewardStep / evaluateRewardModel; responses longer than `context` allows are cut. */
export function rewardPairs(tok: Encoder, records: readonly PreferenceRecord[], context?: number): (PreferencePair & { prompt: number[] })[] {
  return usablePreferences(records).map((r) => ({ ...encodePair(tok, r, context), preference: r.preference }));
}

export interface RewardModelResult { steps: number; lastEpochLoss: number; lastEpochAccuracy: number; optimizer: Optimizer; eval?: { loss: number; accuracy: number; margin: number; pairs: number }; resumedFrom?: number }

/** The config over the defaults, every field checked (unknown keys, integers, ranges). */
export function resolveRewardModelConfig(config: RewardModelConfig = {}) {
  return resolveConfig('reward model', { ...REWARD_MODEL_DEFAULTS } as Required<Omit<RewardModelConfig, 'onStep'>> & RewardModelConfig, config, {
    int: [['epochs', 1], ['batchSize', 1], ['seed', 0]],
    range: [['lr', 0, Infinity], ['warmupRatio', 0, 1], ['weightDecay', 0, Infinity], ['maxGradNorm', 0, Infinity]],
    optional: ['onStep'],
  });
}

/**
 * Trains `model` (which needs scalar_head: true) in place; draws (preference 0), failures and identical outputs
 * are skipped, responses longer than the context are cut. `evalRecords` are scored at the end of every epoch
 * (`eval/*` in the log). With hooks.checkpoint it saves every K steps and resumes bit for bit.
 */
export async function trainRewardModel(engine: Engine, model: Model, tokenizer: Encoder, records: PreferenceRecord[],
  config: RewardModelConfig = {}, hooks: TrainHooks<RewardModelLog> & { evalRecords?: PreferenceRecord[]; auxiliary?: RewardAuxiliary } = {}): Promise<RewardModelResult> {
  const c = resolveRewardModelConfig(config);
  if (!model.config.scalar_head) throw new ConfigError('trainRewardModel: the model has no scalar head (scalar_head: true)');
  const context = model.config.max_position_embeddings;
  const data = rewardPairs(tokenizer, records, context);
  if (data.length === 0) throw new ConfigError(`trainRewardModel: no usable labelled pairs among ${records.length} records (preferences must be in [1, 2] with two different outputs)`);
  const held = hooks.evalRecords ? rewardPairs(tokenizer, hooks.evalRecords, context) : [];
  const stepsPerEpoch = Math.ceil(data.length / c.batchSize);
  const totalSteps = stepsPerEpoch * c.epochs;
  const optimizer = engine.createOptimizer(model, { lr: c.lr, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm,
    kind: 'cosine', warmupSteps: Math.floor(c.warmupRatio * totalSteps), totalSteps });
  const padId = padIdOf(tokenizer);
  const ckpt = checkpointer(engine, hooks.checkpoint, 'reward model');
  const parts = { models: { model }, optimizers: { model: optimizer } };
  const restored = await ckpt?.restore(parts);
  if (restored?.auxiliary !== undefined) hooks.auxiliary?.restore?.(restored.auxiliary);
  let step = restored?.step ?? 0;
  let epochLoss = (restored?.epochLoss as number) ?? 0, epochCorrect = (restored?.epochCorrect as number) ?? 0, epochPairs = (restored?.epochPairs as number) ?? 0;
  let lastEval: RewardModelResult['eval'];
  outer: for (let epoch = Math.floor(step / stepsPerEpoch); epoch < c.epochs; epoch++) {
    const order = shuffled(data.length, c.seed + epoch);
    const first = (step - epoch * stepsPerEpoch) * c.batchSize;
    if (first === 0) { epochLoss = 0; epochCorrect = 0; epochPairs = 0; }
    for (let i = first; i < order.length; i += c.batchSize) {
      const batch = order.slice(i, i + c.batchSize).map((k) => data[k]);
      // engine.rewardStep's operations, with the auxiliary's gradients joining before the update
      model.zeroGrad();
      const s = await rewardGradients(engine, { model, pairs: batch, config: { padId } });
      const aux = hooks.auxiliary ? await hooks.auxiliary.gradients(step + 1) : {};
      const lr = optimizer.currentLr();
      const { gradNorm } = await optimizer.adamw.step(lr, optimizer.maxGradNorm, engine.threads);
      step++;
      hooks.auxiliary?.afterStep?.(step);
      checkFinite('reward model', step, { loss: s.loss, grad_norm: gradNorm, 'rewards/chosen': s['rewards/chosen'], 'rewards/rejected': s['rewards/rejected'], ...aux });
      epochLoss += s.loss * batch.length; epochCorrect += s.accuracy * batch.length; epochPairs += batch.length;
      const log: RewardModelLog = { step, totalSteps, epoch, loss: s.loss, accuracy: s.accuracy, margin: s.margin,
        'rewards/chosen': s['rewards/chosen'], 'rewards/rejected': s['rewards/rejected'], gradNorm, lr, ...aux };
      if (held.length && step % stepsPerEpoch === 0) {
        lastEval = await evaluateRewardModel(engine, model, held, { padId, batchSize: 16 });
        Object.assign(log, { 'eval/loss': lastEval.loss, 'eval/accuracy': lastEval.accuracy, 'eval/margin': lastEval.margin });
      }
      if (ckpt?.due(step, totalSteps)) await ckpt.save(parts, { step, epochLoss, epochCorrect, epochPairs, ...(hooks.auxiliary?.state ? { auxiliary: hooks.auxiliary.state() } : {}) });
      c.onStep?.(log);
      if ((await hooks.onStep?.(log)) === false) break outer;
    }
  }
  if (held.length && !lastEval) lastEval = await evaluateRewardModel(engine, model, held, { padId, batchSize: 16 });
  // pair-weighted means over the last epoch (the model changes during it: a training figure, not a held-out one)
  return { steps: step, lastEpochLoss: epochLoss / Math.max(1, epochPairs), lastEpochAccuracy: epochCorrect / Math.max(1, epochPairs), optimizer,
    ...(lastEval ? { eval: lastEval } : {}), ...(restored ? { resumedFrom: restored.step } : {}) };
}

/** A PairScorer over a reward model: the rewards of output_1 and output_2 of each pair. */
export function rewardScorer(engine: Engine, model: Model, tokenizer: Encoder, opts: { batchSize?: number } = {}): PairScorer {
  if (!model.config.scalar_head) throw new Error('rewardScorer: the model has no scalar head (not a reward model)');
  const padId = padIdOf(tokenizer);
  return {
    async score(pairs: Pair[]) {
      if (pairs.length === 0) return [];
      const seqs = pairs.flatMap((p) => {
        const e = encodePair(tokenizer, p, model.config.max_position_embeddings);
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
