// PPO (AlpacaFarm's RLHF loop, TRL's metric names) around engine.ppoStep. Each outer step:
//   1. takes the next rolloutBatchSize prompts of a seeded shuffle of the unlabeled instructions,
//   2. samples one response per prompt from the policy (temperature 1), recording log π_old and values,
//   3. scores each response with the reward (a reward model read at the last token, or any RewardSource),
//   4. runs one PPO phase (KL-penalized rewards against the frozen reference, GAE, clipped updates).
// The policy is trained in place. The value function is the policy's scalar head (scalar_head: true), a
// separate value model, or, as AlpacaFarm, a copy of the reward model with a fresh zero head.
import {
  AdaptiveKLController, FixedKLController, Model, PPO_DEFAULTS, resolvePPOConfig, packSequences,
  type Engine, type KLController, type KLControllerState, type Optimizer, type PPOConfig, type PPOStats, type Rollouts,
} from '../engine/index.ts';
import type { AlpacaExample } from '../data/template.ts';
import {
  checkFinite, cloneModel, ConfigError, encodePrompt, mean, NonFiniteError, padIdOf, PromptStream, resolveConfig, sampleCandidates, since,
  toRewardFn, withStep, type MethodTokenizer, type RewardSource, type TrainingWarning,
} from './common.ts';
import { checkpointer, type CheckpointOptions } from './checkpoint.ts';

/** The outer loop's settings; the PPO phase's (cliprange, vfCoef, initKlCoef, ...) are PPOConfig (docs/ppo.md). */
export interface PPOLoopConfig {
  /** Outer steps: rollout batches, each followed by one PPO phase (AlpacaFarm peaks after about 20-80). */
  steps: number;
  /** B, rollouts per step, one response per prompt (AlpacaFarm: 512). */
  rolloutBatchSize: number;
  /** T, rollout temperature (AlpacaFarm: 1.0; log π_old is always taken at temperature 1, as ppoStep trains). */
  temperature: number;
  /** p of nucleus sampling for rollouts (1 = off, AlpacaFarm). */
  topP: number;
  /** k of top-k sampling for rollouts (0 = off). */
  topK: number;
  /** Cap on response tokens (AlpacaFarm: 300). */
  maxNewTokens: number;
  /** Prompts longer than this (tokens, BOS included) are left out (AlpacaFarm filters long queries); default: context − maxNewTokens. */
  maxPromptLength?: number;
  /** TRL's missing_eos_penalty: subtracted from the score of a response cut before EOS (null = off, AlpacaFarm). */
  missingEosPenalty: number | null;
  /** Use the sampler's log-probs (temperature 1, same weights) and values as π_old and V_old instead of recomputing them. */
  useSamplerLogprobs: boolean;
  /** Sequences per reward-model forward pass. */
  scoreBatchSize: number;
  /** Seed of the prompt order and of sampling (also ppoStep's minibatch shuffling unless `seed` of PPOConfig is set). */
  rolloutSeed: number;
  /** Warn when objective/kl exceeds this many times klTarget (the KL is running away from the reference). */
  klWarnFactor: number;
  /** Warn when the mean policy ratio val/ratio leaves [1/threshold, threshold] (TRL's ratio_threshold, 10). */
  ratioThreshold: number;
}

export type PPOMethodConfig = PPOLoopConfig & Partial<PPOConfig>;

export const PPO_LOOP_DEFAULTS: Readonly<PPOLoopConfig> = Object.freeze({
  steps: 40, rolloutBatchSize: 512, temperature: 1, topP: 1, topK: 0, maxNewTokens: 300, missingEosPenalty: null,
  useSamplerLogprobs: true, scoreBatchSize: 32, rolloutSeed: 1, klWarnFactor: 4, ratioThreshold: 10,
});

/**
 * Every default of the method: AlpacaFarm's PPO with simulated feedback (PPO_DEFAULTS of the engine + the loop).
 * Reward whitening scales to unit variance without adding a per-token constant (see PPOConfig.whitenRewards),
 * so it carries no length bias; test/methods/ppo.test.ts guards that a reward for long answers makes them longer.
 */
export const PPO_METHOD_DEFAULTS: Readonly<PPOMethodConfig> = Object.freeze({ ...PPO_DEFAULTS, ...PPO_LOOP_DEFAULTS });

/** One-line help per field (loop and phase), for `farm ppo --help`. */
export const PPO_HELP: Record<keyof PPOMethodConfig, string> = {
  steps: 'outer steps: rollout batches, each followed by one PPO phase (AlpacaFarm peaks after 20-80)',
  rolloutBatchSize: 'B, rollouts per step, one response per prompt (AlpacaFarm 512)',
  temperature: 'rollout temperature (AlpacaFarm 1.0)',
  topP: 'nucleus p of rollouts (1 = off)',
  topK: 'top-k of rollouts (0 = off)',
  maxNewTokens: 'cap on response tokens (AlpacaFarm 300)',
  maxPromptLength: 'prompts longer than this (tokens) are left out (default: context - maxNewTokens)',
  missingEosPenalty: "TRL's missing_eos_penalty, subtracted from the score of a response cut before EOS (null = off)",
  useSamplerLogprobs: "use the sampler's log-probs and values as π_old and V_old instead of recomputing them",
  scoreBatchSize: 'sequences per reward-model forward pass',
  rolloutSeed: 'seed of the prompt order, of sampling and of minibatch shuffling',
  klWarnFactor: 'warn when objective/kl exceeds this many times klTarget',
  ratioThreshold: "warn when the mean policy ratio leaves [1/t, t] (TRL's ratio_threshold)",
  cliprange: 'ε, policy ratio clip (AlpacaFarm/TRL 0.2)',
  cliprangeValue: 'ε_v, value clip around the rollout values (0.2; 0 = off)',
  vfCoef: 'c_v, value loss coefficient (0.1)',
  entCoef: 'c_H, entropy bonus coefficient (0)',
  gamma: 'γ, discount (1)',
  lam: 'λ of GAE (1)',
  whitenRewards: 'scale per-token rewards to unit variance over response tokens (true)',
  whitenAdvantages: 'whiten advantages over the batch (true)',
  initKlCoef: 'β, KL coefficient (AlpacaFarm 0.0067 simulated / 0.02 human; farm models ~0.05)',
  adaptiveKl: 'adapt β with the proportional controller (false)',
  klTarget: 'KL target of the adaptive controller, nats per sequence (6)',
  klHorizon: 'horizon of the adaptive controller, in rollouts (10000)',
  klEstimator: "per-token KL estimator: 'k1' (AlpacaFarm), 'k2', 'k3'",
  klClamp: 'clamp the k1 estimate at 0 per token (AlpacaFarm true)',
  ppoEpochs: 'optimization epochs over each rollout batch (2)',
  miniBatchSize: 'rollouts per optimizer step (default: half the batch)',
  gradientAccumulationSteps: 'micro-batches per minibatch (memory only)',
  forwardBatchSize: 'rows per forward pass when recomputing log-probs/values',
  seed: 'seed of the minibatch shuffle (default: rolloutSeed)',
  learningRate: 'AdamW learning rate (AlpacaFarm 1e-5 on LLaMA-7B; farm models ~1e-4)',
  adamEps: 'AdamW epsilon (AlpacaFarm 1e-5)',
  warmupSteps: 'linear warmup steps (5)',
  maxGradNorm: 'global gradient-norm clip (1)',
};

/** What one outer step logs: ppoStep's statistics plus the rollout's. */
export type PPOLog = PPOStats & {
  step: number;
  /** Rollouts seen so far (TRL's `episode`). */
  episode: number;
  /** Responses that ended with EOS in this batch (TRL's `val/num_eos_tokens`). */
  'val/num_eos_tokens': number;
  /** Mean response length in tokens. */
  'rollout/response_length': number;
  /** Mean reward before the missing-EOS penalty. */
  'rollout/raw_scores': number;
  'time/generate_ms': number;
  'time/score_ms': number;
  'time/step_ms': number;
};

export interface PPOArgs {
  /** The policy (LM head; with scalar_head: true it is also the value function). Trained in place. */
  policy: Model;
  /** Frozen reference π_ref (default: a copy of the policy taken at the start, i.e. the SFT model). */
  ref?: Model;
  /** Separate value model (scalar head). Default: the policy's scalar head, else a copy of the reward model with a zero head. */
  value?: Model;
  /** The reward: a reward model, a RewardFn (hand-built or gold rewards) or a PairScorer. */
  reward?: RewardSource;
  /** Alias of `reward` for a reward model. */
  rewardModel?: Model;
  tokenizer: MethodTokenizer;
  /** Instructions to roll out on (AlpacaFarm: the unlabeled split). */
  prompts: AlpacaExample[];
  config?: Partial<PPOMethodConfig>;
  /** Policy optimizer (default: AdamW from learningRate, adamEps, warmupSteps, maxGradNorm). */
  optimizer?: Optimizer;
  valueOptimizer?: Optimizer;
  /** KL controller (default: fixed or adaptive per adaptiveKl, from initKlCoef). */
  klController?: KLController;
  /** Called after each step; return false to stop early. May be async (evaluate, save a checkpoint). */
  onStep?: (log: PPOLog) => void | boolean | Promise<void | boolean>;
  /** Save every K steps (policy, value model, optimizers, KL controller, data position) and resume from the latest. */
  checkpoint?: CheckpointOptions;
  /** Called when KL runs far above its target or the policy ratio explodes (training goes on). */
  onWarning?: (w: TrainingWarning) => void;
}

export interface PPOResult {
  history: PPOLog[];
  steps: number;
  policy: Model;
  ref: Model;
  /** The value model trained alongside (the policy itself when it has the scalar head). */
  value: Model;
  optimizer: Optimizer;
  valueOptimizer?: Optimizer;
  klController: KLController;
  /** Prompts left out as too long. */
  skippedPrompts: number;
  /** Step of the checkpoint this call resumed from. */
  resumedFrom?: number;
}

/** A value model initialized from a reward model, with a fresh zero scalar head (AlpacaFarm's initialization). */
export function valueModelFromRewardModel(engine: Engine, rewardModel: Model): Model {
  if (!rewardModel.config.scalar_head) throw new Error('valueModelFromRewardModel: the reward model has no scalar head');
  const v = cloneModel(engine, rewardModel);
  for (const p of v.parameters()) if (p.name.startsWith('score.')) p.data.fill(0);
  return v;
}

const PPO_KEYS = new Set<string>([...Object.keys(PPO_DEFAULTS), 'miniBatchSize', 'forwardBatchSize', 'seed']);

/** Every PPO setting, defaults filled in and checked (unknown keys and bad values are ConfigErrors). */
export function resolvePpoMethodConfig(over: Partial<PPOMethodConfig> = {}): { c: PPOMethodConfig; stepConfig: Partial<PPOConfig>; pc: PPOConfig } {
  const c = resolveConfig('PPO', PPO_METHOD_DEFAULTS as PPOMethodConfig, over, {
    int: [['steps', 1], ['rolloutBatchSize', 1], ['maxNewTokens', 1], ['topK', 0], ['scoreBatchSize', 1], ['rolloutSeed', 0]],
    range: [['temperature', Number.MIN_VALUE, Infinity], ['topP', Number.MIN_VALUE, 1], ['klWarnFactor', 0, Infinity], ['ratioThreshold', 1, Infinity]],
    optional: ['maxPromptLength', 'miniBatchSize', 'forwardBatchSize', 'seed'],
  });
  const stepConfig = Object.fromEntries(Object.entries(c).filter(([k]) => PPO_KEYS.has(k))) as Partial<PPOConfig>;
  stepConfig.seed ??= c.rolloutSeed;
  let pc: PPOConfig;
  try { pc = resolvePPOConfig(stepConfig); } catch (e) { throw new ConfigError((e as Error).message); }  // validates the phase settings up front
  if (c.maxPromptLength !== undefined && !(Number.isInteger(c.maxPromptLength) && c.maxPromptLength >= 1))
    throw new ConfigError(`PPO config maxPromptLength must be an integer >= 1, got ${c.maxPromptLength}`);
  if (c.missingEosPenalty !== null && !Number.isFinite(c.missingEosPenalty)) throw new ConfigError(`PPO config missingEosPenalty must be a number or null, got ${c.missingEosPenalty}`);
  for (const k of ['useSamplerLogprobs', 'whitenRewards', 'whitenAdvantages', 'adaptiveKl', 'klClamp'] as const)
    if (typeof c[k] !== 'boolean') throw new ConfigError(`PPO config ${k} must be true or false, got ${c[k]}`);
  return { c, stepConfig, pc };
}

/** Runs PPO; see the file comment. Returns the per-step logs and what a resumed run needs. */
export async function ppo(engine: Engine, args: PPOArgs): Promise<PPOResult> {
  const { c, stepConfig, pc } = resolvePpoMethodConfig(args.config);
  const { policy, tokenizer } = args;
  if (!policy.config.lm_head) throw new Error('ppo: the policy needs an LM head');
  const rewardSource = args.reward ?? args.rewardModel;
  if (!rewardSource) throw new Error('ppo: pass a reward (reward model, reward function or pair scorer)');
  if (args.reward && args.rewardModel) throw new Error('ppo: pass either reward or rewardModel, not both');
  const score = toRewardFn(engine, rewardSource, tokenizer, { batchSize: c.scoreBatchSize });

  // Prompts that leave room to answer.
  const P = policy.config.max_position_embeddings;
  const maxPrompt = c.maxPromptLength ?? P - c.maxNewTokens;
  if (!(maxPrompt >= 1)) throw new Error(`ppo: maxNewTokens ${c.maxNewTokens} leaves no room for a prompt in the context of ${P}; set maxPromptLength or lower maxNewTokens`);
  const encoded = args.prompts.map((r) => encodePrompt(tokenizer, r));
  const usable = encoded.map((_, i) => i).filter((i) => encoded[i].length <= maxPrompt && encoded[i].length < P);
  if (usable.length === 0) throw new Error(`ppo: none of the ${args.prompts.length} prompts fits in maxPromptLength ${maxPrompt} tokens`);

  const ref = args.ref ?? cloneModel(engine, policy);
  let value: Model;
  if (args.value) value = args.value;
  else if (policy.config.scalar_head) value = policy;
  else if (rewardSource instanceof Model) value = valueModelFromRewardModel(engine, rewardSource);
  else throw new Error('ppo: no value function: give the policy a scalar head (scalar_head: true), pass `value`, or use a reward model (a value model is initialized from it)');
  const shared = value === policy;
  if (value.config.vocab_size !== policy.config.vocab_size)
    throw new Error(`ppo: the value model's vocab_size ${value.config.vocab_size} differs from the policy's ${policy.config.vocab_size}`);
  const optimizer = args.optimizer ?? engine.createOptimizer(policy, { lr: pc.learningRate, eps: pc.adamEps, warmupSteps: pc.warmupSteps, maxGradNorm: pc.maxGradNorm });
  const valueOptimizer = shared ? undefined
    : args.valueOptimizer ?? engine.createOptimizer(value, { lr: pc.learningRate, eps: pc.adamEps, warmupSteps: pc.warmupSteps, maxGradNorm: pc.maxGradNorm });
  const klController = args.klController ?? (pc.adaptiveKl
    ? new AdaptiveKLController({ init: pc.initKlCoef, target: pc.klTarget, horizon: pc.klHorizon })
    : new FixedKLController(pc.initKlCoef));

  const padId = padIdOf(tokenizer);
  const history: PPOLog[] = [];
  // Resume: ref and value were built from the starting models above; the checkpoint then overwrites what trains.
  const ckpt = checkpointer(engine, args.checkpoint, 'PPO');
  const parts = { models: (shared ? { policy } : { policy, value }) as Record<string, Model>, optimizers: { policy: optimizer, value: valueOptimizer } };
  const restored = await ckpt?.restore(parts);
  if (restored) klController.restore(restored.klController as KLControllerState);
  const stream = new PromptStream(usable, c.rolloutSeed, restored ? { epoch: restored.epoch as number, at: restored.at as number } : undefined);
  let episode = (restored?.episode as number) ?? 0;
  const warn = (step: number, kind: string, message: string) => args.onWarning?.({ step, kind, message });
  for (let step = (restored?.step ?? 0) + 1; step <= c.steps; step++) {
    const t0 = performance.now();
    // 1. the next prompts of the shuffle, 2. one response each; RNG streams keyed by the episode number, so
    // repeated prompts get fresh samples
    const rows = stream.next(c.rolloutBatchSize);
    const prompts = rows.map((i) => encoded[i]);
    let t = performance.now();
    const streamIds = rows.map((_, k) => (episode + k) % 2 ** 32);
    const batch = await sampleCandidates(engine, policy, tokenizer, args.prompts, rows, prompts, streamIds, { ...c, n: 1, seed: c.rolloutSeed });
    const samples = batch.samples.map((x) => x[0]), cands = batch.candidates.map((x) => x[0]);
    samples.forEach((s, k) => {
      const bad = s.logprobs.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new NonFiniteError('log-prob', s.logprobs[bad], `rollout ${k}, token ${bad}`, 'PPO', step);
    });
    const generateMs = since(t);
    // 3. rewards
    t = performance.now();
    const raw = await withStep('PPO', step, () => score(cands));
    const scores = Float32Array.from(raw, (x, k) => c.missingEosPenalty !== null && samples[k].finishReason !== 'stop' ? x - c.missingEosPenalty : x);
    const scoreMs = since(t);
    // 4. rollouts and one PPO phase
    const packed = packSequences(cands.map((x) => ({ prompt: x.prompt, response: x.response })), { padId, maxLen: P });
    const rollouts: Rollouts = { tokens: packed.tokens, batch: packed.batch, seqLen: packed.seqLen, responseMask: packed.mask, scores };
    if (c.useSamplerLogprobs) {
      const T = packed.seqLen;
      const logp = new Float32Array(packed.batch * T);
      const values = shared ? new Float32Array(packed.batch * T) : undefined;
      samples.forEach((s, b) => {
        const o = b * T + prompts[b].length - 1;  // position predicting response token 0
        logp.set(s.logprobs, o);
        if (values && s.values) values.set(s.values, o);
      });
      rollouts.logp = logp;
      if (values && samples.every((s) => s.values)) rollouts.values = values;
    }
    t = performance.now();
    const stats = await engine.ppoStep({
      policy, ref, value: shared ? undefined : value, rollouts, config: stepConfig, optimizer, valueOptimizer, klController,
    });
    checkFinite('PPO', step, {
      'objective/kl': stats['objective/kl'], 'loss/policy_avg': stats['loss/policy_avg'], 'loss/value_avg': stats['loss/value_avg'],
      'ppo/grad_norm': stats['ppo/grad_norm'], 'val/ratio': stats['val/ratio'],
    });
    episode += rows.length;
    const log: PPOLog = {
      ...stats, step, episode,
      'val/num_eos_tokens': samples.filter((s) => s.finishReason === 'stop').length,
      'rollout/response_length': mean(samples.map((s) => s.tokens.length)),
      'rollout/raw_scores': mean(raw),
      'time/generate_ms': generateMs, 'time/score_ms': scoreMs, 'time/step_ms': since(t0),
    };
    if (log['objective/kl'] > c.klWarnFactor * pc.klTarget)
      warn(step, 'kl', `PPO step ${step}: objective/kl ${log['objective/kl'].toFixed(2)} nats is more than ${c.klWarnFactor}x the target ${pc.klTarget} (kl_coef ${log['objective/kl_coef']}); the policy is drifting far from the reference`);
    if (log['val/ratio'] > c.ratioThreshold || log['val/ratio'] < 1 / c.ratioThreshold)
      warn(step, 'ratio', `PPO step ${step}: mean policy ratio val/ratio ${log['val/ratio'].toFixed(3)} is outside [${(1 / c.ratioThreshold).toPrecision(2)}, ${c.ratioThreshold}]; updates are too large (lower learningRate or raise ppoEpochs' minibatches)`);
    history.push(log);
    if (ckpt?.due(step, c.steps)) await ckpt.save(parts, { step, ...stream.state(), episode, klController: klController.state() });
    if ((await args.onStep?.(log)) === false) break;
  }
  return { history, steps: (restored?.step ?? 0) + history.length, policy, ref, value, optimizer, valueOptimizer, klController,
    skippedPrompts: args.prompts.length - usable.length, ...(restored ? { resumedFrom: restored.step } : {}) };
}
