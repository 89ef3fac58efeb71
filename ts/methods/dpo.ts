// Direct preference optimization (Rafailov et al. 2023; AlpacaFarm's DPO): trains the policy on preference
// records {instruction, input, output_1, output_2, preference} against a frozen reference whose summed
// response log-probs are computed once, then epochs of shuffled batches through engine.dpoStep.
import {
  DPO_DEFAULTS, precomputeReferenceLogps, sequenceLogps, type DPOLossType, type DPOPair, type DPOStepStats, type Engine, type Model,
  type Optimizer, type ScheduleKind,
} from '../engine/index.ts';
import type { PreferenceRecord } from './reward-model.ts';
import { checkpointer, type CheckpointOptions } from './checkpoint.ts';
import { checkFinite, cloneModel, ConfigError, encodePrompt, encodeResponse, padIdOf, resolveConfig, shuffled, type MethodTokenizer } from './common.ts';

export interface DPOMethodConfig {
  /** β, strength of the implicit KL regularization toward π_ref (AlpacaFarm/DPO/TRL: 0.1). */
  beta: number;
  /** 'sigmoid': −log σ(β·h) (DPO); 'ipo': (h − 1/(2β))² (IPO); h = log-ratio(chosen) − log-ratio(rejected). */
  lossType: DPOLossType;
  /** ε of conservative DPO: labels flipped with probability ε (0 = DPO). */
  labelSmoothing: number;
  /** Peak learning rate (AlpacaFarm: 1e-6 on LLaMA-7B; tiny farm models want ~3e-4, see DPO_FARM). */
  lr: number;
  /** Passes over the pairs (AlpacaFarm: 2). */
  epochs: number;
  /** Pairs per optimizer step (AlpacaFarm: 64). */
  batchSize: number;
  /** Pairs per forward/backward pass; gradients are accumulated over the batch (bounds memory only). */
  microBatchSize: number;
  /** Fraction of the steps spent warming up linearly (TRL recipes: 0.1). */
  warmupRatio: number;
  /** Learning-rate decay after warmup (transformers' default: linear). */
  lrScheduler: ScheduleKind;
  /** Decoupled weight decay. */
  weightDecay: number;
  /** Global gradient-norm clip (0 = off; transformers' default 1.0). */
  maxGradNorm: number;
  /** Longest prompt + response in tokens (default: the model's context); longer responses are cut at the end. */
  maxLength?: number;
  /** Stop after this many optimizer steps (default: epochs over the data). */
  maxSteps?: number;
  /** Evaluate on evalPairs every this many steps (0 = only before and after training). */
  evalEvery: number;
  /** Sequences per forward pass when computing reference and evaluation log-probs. */
  forwardBatchSize: number;
  /** Seed of the data order. */
  seed: number;
}

export const DPO_METHOD_DEFAULTS: Readonly<DPOMethodConfig> = Object.freeze({
  beta: DPO_DEFAULTS.beta, lossType: DPO_DEFAULTS.lossType, labelSmoothing: DPO_DEFAULTS.labelSmoothing,
  lr: 1e-6, epochs: 2, batchSize: 64, microBatchSize: 16, warmupRatio: 0.1, lrScheduler: 'linear' as ScheduleKind,
  weightDecay: 0, maxGradNorm: 1, evalEvery: 0, forwardBatchSize: 16, seed: 1,
});

export const DPO_HELP: Record<keyof DPOMethodConfig, string> = {
  beta: 'β, strength of the implicit KL regularization toward π_ref (DPO/TRL 0.1)',
  lossType: "'sigmoid' (DPO) or 'ipo'",
  labelSmoothing: 'ε of conservative DPO: labels flipped with probability ε (0 = DPO)',
  lr: 'peak learning rate (AlpacaFarm 1e-6 on LLaMA-7B; farm models ~3e-4)',
  epochs: 'passes over the pairs (AlpacaFarm 2)',
  batchSize: 'pairs per optimizer step (AlpacaFarm 64)',
  microBatchSize: 'pairs per forward/backward pass (gradient accumulation; memory only)',
  warmupRatio: 'fraction of the steps spent warming up linearly',
  lrScheduler: "decay after warmup: 'constant', 'linear' or 'cosine'",
  weightDecay: 'decoupled weight decay',
  maxGradNorm: 'global gradient-norm clip (0 = off)',
  maxLength: 'longest prompt + response in tokens (default: the context)',
  maxSteps: 'stop after this many optimizer steps (default: epochs over the data)',
  evalEvery: 'evaluate on the held-out pairs every this many steps (0 = before and after only)',
  forwardBatchSize: 'sequences per forward pass for reference and evaluation log-probs',
  seed: 'seed of the data order',
};

/** Settings that train the farm's tiny models in a few minutes (measured by test/methods/dpo.test.ts). */
export const DPO_FARM: Readonly<Partial<DPOMethodConfig>> = Object.freeze({ lr: 3e-4, batchSize: 16, epochs: 2 });

/** Held-out statistics under TRL's names (prefixed `eval/` in the logs). */
export interface DPOEvalStats {
  loss: number;
  'rewards/chosen': number;
  'rewards/rejected': number;
  'rewards/accuracies': number;
  'rewards/margins': number;
  'logps/chosen': number;
  'logps/rejected': number;
  pairs: number;
}

export type DPOLog = DPOStepStats & { step: number; epoch: number } & Partial<Record<`eval/${keyof DPOEvalStats}`, number>>;

export interface DPOArgs {
  /** Trained in place (usually the SFT model). */
  policy: Model;
  /** Frozen reference (default: a copy of the policy taken at the start). Only read once, before training. */
  ref?: Model;
  tokenizer: MethodTokenizer;
  /** Training preferences; draws (0), unlabeled (null) and identical outputs are left out. */
  pairs: PreferenceRecord[];
  /** Held-out preferences for eval/ statistics. */
  evalPairs?: PreferenceRecord[];
  config?: Partial<DPOMethodConfig>;
  /** Called after each step; return false to stop early. */
  onStep?: (log: DPOLog) => void | boolean | Promise<void | boolean>;
  /** Save every K steps into checkpoint.dir and, with resume, continue from the latest checkpoint there. */
  checkpoint?: CheckpointOptions;
}

export interface DPOResult {
  history: DPOLog[];
  steps: number;
  /** Held-out statistics before and after training (when evalPairs were given). */
  eval?: { before: DPOEvalStats; after: DPOEvalStats };
  optimizer: Optimizer;
  /** Training pairs used, and records left out (draws, identical outputs, prompts that do not fit). */
  used: number;
  skipped: number;
  /** Step of the checkpoint this call resumed from. */
  resumedFrom?: number;
}

/**
 * Token pairs of preference records: chosen = the preferred output (a soft preference picks the side of 1.5),
 * each response followed by EOS and cut to fit maxLength.
 */
export function preferencePairs(tok: MethodTokenizer, records: PreferenceRecord[], maxLength: number): { pairs: DPOPair[]; skipped: number } {
  const pairs: DPOPair[] = [];
  let skipped = 0;
  for (const r of records) {
    const p = r.preference;
    if (typeof p !== 'number' || !(p >= 1 && p <= 2) || p === 1.5 || r.output_1 === r.output_2) { skipped++; continue; }
    const prompt = encodePrompt(tok, r);
    const room = maxLength - prompt.length;
    if (room < 1) { skipped++; continue; }
    const [win, lose] = p < 1.5 ? [r.output_1, r.output_2] : [r.output_2, r.output_1];
    pairs.push({ prompt, chosen: encodeResponse(tok, win).slice(0, room), rejected: encodeResponse(tok, lose).slice(0, room) });
  }
  return { pairs, skipped };
}

/** DPO loss and implicit-reward statistics of a policy on pairs whose reference log-probs are filled in. */
export async function evaluateDpo(engine: Engine, policy: Model, pairs: DPOPair[],
  o: { beta?: number; lossType?: DPOLossType; labelSmoothing?: number; batchSize?: number; padId?: number } = {}): Promise<DPOEvalStats> {
  const beta = o.beta ?? DPO_DEFAULTS.beta, eps = o.labelSmoothing ?? 0, type = o.lossType ?? 'sigmoid';
  if (pairs.length === 0) throw new Error('evaluateDpo: no pairs');
  if (pairs.some((p) => p.refChosenLogp === undefined || p.refRejectedLogp === undefined))
    throw new Error('evaluateDpo: pairs need refChosenLogp / refRejectedLogp (precomputeReferenceLogps)');
  const lp = await sequenceLogps(engine, policy, pairs.flatMap((p) => [{ prompt: p.prompt, response: p.chosen }, { prompt: p.prompt, response: p.rejected }]),
    { batchSize: o.batchSize ?? 16, padId: o.padId ?? 0 });
  const logSigmoid = (x: number) => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));
  const s = { loss: 0, rc: 0, rr: 0, acc: 0, lc: 0, lr: 0 };
  pairs.forEach((p, i) => {
    const c = lp[2 * i] - p.refChosenLogp!, r = lp[2 * i + 1] - p.refRejectedLogp!, h = c - r;
    s.loss += type === 'ipo' ? (h - 1 / (2 * beta)) ** 2 : -(1 - eps) * logSigmoid(beta * h) - eps * logSigmoid(-beta * h);
    s.rc += beta * c; s.rr += beta * r; s.acc += beta * c > beta * r ? 1 : 0;
    s.lc += lp[2 * i]; s.lr += lp[2 * i + 1];
  });
  const n = pairs.length;
  return {
    loss: s.loss / n, 'rewards/chosen': s.rc / n, 'rewards/rejected': s.rr / n, 'rewards/accuracies': s.acc / n,
    'rewards/margins': (s.rc - s.rr) / n, 'logps/chosen': s.lc / n, 'logps/rejected': s.lr / n, pairs: n,
  };
}

/** Every DPO setting, defaults filled in and checked. */
export function resolveDpoConfig(over: Partial<DPOMethodConfig> = {}): DPOMethodConfig {
  const c = resolveConfig('DPO', DPO_METHOD_DEFAULTS as DPOMethodConfig, over, {
    int: [['epochs', 1], ['batchSize', 1], ['microBatchSize', 1], ['evalEvery', 0], ['forwardBatchSize', 1], ['seed', 0]],
    range: [['beta', Number.MIN_VALUE, Infinity], ['labelSmoothing', 0, 0.5], ['lr', 0, Infinity], ['warmupRatio', 0, 1], ['weightDecay', 0, Infinity], ['maxGradNorm', 0, Infinity]],
    optional: ['maxLength', 'maxSteps'],
  });
  if (c.maxSteps !== undefined && !(Number.isInteger(c.maxSteps) && c.maxSteps >= 1)) throw new ConfigError(`DPO config maxSteps must be an integer >= 1, got ${c.maxSteps}`);
  if (!['sigmoid', 'ipo'].includes(c.lossType)) throw new ConfigError(`DPO config lossType must be 'sigmoid' or 'ipo', got ${c.lossType}`);
  if (!['constant', 'linear', 'cosine'].includes(c.lrScheduler)) throw new ConfigError(`DPO config lrScheduler must be 'constant', 'linear' or 'cosine', got ${c.lrScheduler}`);
  return c;
}

/** Runs DPO; see the file comment. */
export async function dpo(engine: Engine, args: DPOArgs): Promise<DPOResult> {
  const c = resolveDpoConfig(args.config);
  const { policy, tokenizer } = args;
  if (!policy.config.lm_head) throw new Error('dpo: the policy needs an LM head');
  const padId = padIdOf(tokenizer);
  const maxLength = Math.min(c.maxLength ?? Infinity, policy.config.max_position_embeddings);
  const train = preferencePairs(tokenizer, args.pairs, maxLength);
  if (train.pairs.length === 0) throw new ConfigError(`dpo: no usable preference pairs among ${args.pairs.length} records (draws, identical outputs and prompts longer than ${maxLength} tokens are left out)`);
  const held = args.evalPairs?.length ? preferencePairs(tokenizer, args.evalPairs, maxLength).pairs : [];

  // The reference is read once: its log-probs ride along with the pairs.
  const ref = args.ref ?? cloneModel(engine, policy);
  const fwd = { batchSize: c.forwardBatchSize, padId };
  const pairs = await precomputeReferenceLogps(engine, ref, train.pairs, fwd);
  const evalSet = held.length ? await precomputeReferenceLogps(engine, ref, held, fwd) : [];
  const lossCfg = { beta: c.beta, lossType: c.lossType, labelSmoothing: c.labelSmoothing };
  const evaluate = () => evaluateDpo(engine, policy, evalSet, { ...lossCfg, ...fwd });

  const batchSize = Math.min(c.batchSize, pairs.length);
  const stepsPerEpoch = Math.ceil(pairs.length / batchSize);
  const totalSteps = Math.min(c.maxSteps ?? Infinity, stepsPerEpoch * c.epochs);
  const optimizer = engine.createOptimizer(policy, {
    lr: c.lr, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm, kind: c.lrScheduler,
    warmupSteps: Math.floor(c.warmupRatio * totalSteps), totalSteps: Math.max(totalSteps, Math.floor(c.warmupRatio * totalSteps) + 1),
  });
  // The reference log-probs above come from the starting policy; a resumed run then loads its weights.
  const ckpt = checkpointer(engine, args.checkpoint, 'DPO');
  const parts = { models: { policy }, optimizers: { policy: optimizer } };
  const restored = await ckpt?.restore(parts);
  const before = restored ? (restored.evalBefore as DPOEvalStats | undefined) : evalSet.length ? await evaluate() : undefined;
  const history: DPOLog[] = [];
  let step = restored?.step ?? 0;
  outer: for (let epoch = Math.floor(step / stepsPerEpoch); step < totalSteps; epoch++) {
    const order = shuffled(pairs.length, c.seed + epoch);
    for (let i = (step - epoch * stepsPerEpoch) * batchSize; i < order.length && step < totalSteps; i += batchSize) {
      const batch = order.slice(i, i + batchSize).map((k) => pairs[k]);
      const s = await engine.dpoStep(policy, batch, optimizer, { config: { ...lossCfg, padId, microBatchSize: Math.min(c.microBatchSize, batch.length) } });
      step++;
      checkFinite('DPO', step, { loss: s.loss, grad_norm: s.gradNorm, 'logps/chosen': s['logps/chosen'], 'logps/rejected': s['logps/rejected'] });
      const log: DPOLog = { ...s, step, epoch };
      if (evalSet.length && c.evalEvery > 0 && step % c.evalEvery === 0 && step < totalSteps)
        for (const [k, v] of Object.entries(await evaluate())) (log as unknown as Record<string, number>)[`eval/${k}`] = v;
      history.push(log);
      if (ckpt?.due(step, totalSteps)) await ckpt.save(parts, { step, ...(before ? { evalBefore: before } : {}) });
      if ((await args.onStep?.(log)) === false) break outer;
    }
  }
  const after = evalSet.length ? await evaluate() : undefined;
  return {
    history, steps: step, optimizer, used: pairs.length, skipped: train.skipped,
    ...(before && after ? { eval: { before, after } } : {}), ...(restored ? { resumedFrom: restored.step } : {}),
  };
}
