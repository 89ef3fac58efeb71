// Quark (Lu et al. 2022, as AlpacaFarm runs it): reward-quantile conditioning with a KL penalty. Each step
//   1. samples one response for the next rolloutBatchSize prompts (after the first step, conditioned on the
//      best quantile's token in the full variant) and scores them with the reward,
//   2. adds them to a data pool (kept across steps unless clearPool) and sorts the pool by reward into
//      numQuantiles equal chunks (the last takes the remainder),
//   3. takes gradientStepsPerStep steps on batches drawn from the training set: the best chunk only (the
//      default, AlpacaFarm's best_token_only, no tokens) or every sample tagged with its quantile's token,
//      with the per-token loss −log π(y_t) + β·KL(π(·|y_<t) ‖ π_ref(·|y_<t)).
// The reference sees the prompt without the quantile token; the KL runs over the original vocabulary (π
// restricted to it and renormalized, as AlpacaFarm slices the logits). Its gradient is estimated without
// bias by one token y'_t ~ π per position: β·(log π(y') − log π_ref(y') − KL_t)·∇log π(y'), the exact KL_t
// as baseline, through the engine's log-prob backward (a second forward/backward pass per micro-batch).
import type { Engine, Model, Optimizer } from '../engine/index.ts';
import { packSequences } from '../engine/index.ts';
import type { AlpacaExample } from '../data/template.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { checkpointer, type CheckpointOptions } from './checkpoint.ts';
import {
  addControlTokens, checkFinite, cloneModel, ConfigError, encodePrompt, mean, NonFiniteError, padIdOf, PromptStream, resolveConfig,
  sampleCandidates, seededUniform, since, toRewardFn, withStep, type Conditioning, type PromptControl, type RewardSource, type TrainingWarning,
} from './common.ts';

export interface QuarkConfig {
  /** Outer steps (rollout, pool update, gradient steps). */
  steps: number;
  /** Prompts sampled per step, one response each, added to the pool (AlpacaFarm: 512). */
  rolloutBatchSize: number;
  /** Sequences per gradient step (AlpacaFarm: step_batch_size 256). */
  batchSize: number;
  /** Sequences per forward/backward pass; gradients are accumulated over the batch (memory only). */
  microBatchSize: number;
  /** Gradient steps per outer step (AlpacaFarm: 1). */
  gradientStepsPerStep: number;
  /** Reward quantiles, i.e. control tokens in the full variant (AlpacaFarm: 4). */
  numQuantiles: number;
  /** Train on the best quantile only, without tokens (AlpacaFarm's default best_token_only); false = every quantile with its token. */
  bestQuantileOnly: boolean;
  /** β of the per-token KL(π ‖ π_ref) penalty (AlpacaFarm: 0.05). */
  klCoef: number;
  /** Empty the pool before each rollout (AlpacaFarm: false, the pool keeps every sample). */
  clearPool: boolean;
  /** Rollout temperature (AlpacaFarm: 1.0), top-p and top-k (off). */
  temperature: number;
  topP: number;
  topK: number;
  /** Cap on response tokens (AlpacaFarm: 300). */
  maxNewTokens: number;
  /** Prompts longer than this (tokens) are left out; default: context − maxNewTokens. */
  maxPromptLength?: number;
  /** AdamW learning rate (AlpacaFarm: 3e-6 on LLaMA-7B), eps, warmup, clip, decay. */
  learningRate: number;
  adamEps: number;
  warmupSteps: number;
  maxGradNorm: number;
  weightDecay: number;
  /** Sequences per reward-model forward pass. */
  scoreBatchSize: number;
  /** Seed of the prompt order, sampling and batch draws. */
  seed: number;
  /** Warn when the trained batch's KL exceeds this many nats per sequence. */
  klWarnNats: number;
}

export const QUARK_DEFAULTS: Readonly<QuarkConfig> = Object.freeze({
  steps: 40, rolloutBatchSize: 512, batchSize: 256, microBatchSize: 16, gradientStepsPerStep: 1, numQuantiles: 4,
  bestQuantileOnly: true, klCoef: 0.05, clearPool: false, temperature: 1, topP: 1, topK: 0, maxNewTokens: 300,
  learningRate: 3e-6, adamEps: 1e-5, warmupSteps: 5, maxGradNorm: 1, weightDecay: 0, scoreBatchSize: 32, seed: 1, klWarnNats: 24,
});

export const QUARK_HELP: Record<keyof QuarkConfig, string> = {
  steps: 'outer steps: rollout, pool update, gradient steps',
  rolloutBatchSize: 'prompts sampled per step, added to the pool (AlpacaFarm 512)',
  batchSize: 'sequences per gradient step (AlpacaFarm 256)',
  microBatchSize: 'sequences per forward/backward pass (memory only)',
  gradientStepsPerStep: 'gradient steps per outer step (AlpacaFarm 1)',
  numQuantiles: 'reward quantiles (AlpacaFarm 4)',
  bestQuantileOnly: 'train on the best quantile only, no tokens (AlpacaFarm default); false: every quantile with its token',
  klCoef: 'β of the per-token KL(π‖π_ref) penalty (AlpacaFarm 0.05)',
  clearPool: 'empty the pool before each rollout (AlpacaFarm false)',
  temperature: 'rollout temperature (1.0)',
  topP: 'rollout nucleus p (1 = off)',
  topK: 'rollout top-k (0 = off)',
  maxNewTokens: 'cap on response tokens (AlpacaFarm 300)',
  maxPromptLength: 'prompts longer than this are left out (default: context - maxNewTokens)',
  learningRate: 'AdamW learning rate (AlpacaFarm 3e-6 on LLaMA-7B; farm models ~1e-4)',
  adamEps: 'AdamW epsilon (1e-5)',
  warmupSteps: 'linear warmup steps (5)',
  maxGradNorm: 'global gradient-norm clip (1)',
  weightDecay: 'decoupled weight decay (0)',
  scoreBatchSize: 'sequences per reward-model forward pass',
  seed: 'seed of the prompt order, sampling and batch draws',
  klWarnNats: 'warn when the KL per sequence exceeds this many nats',
};

/** The quantile tokens, best first (AlpacaFarm's reward_0 is the best). */
export function quantileTokens(k: number): string[] {
  return Array.from({ length: k }, (_, i) => `<|quark_q${i}|>`);
}

/** One pool entry: its prompt (row of `prompts`), the plain response tokens and its reward. */
export interface QuarkSample { row: number; response: number[]; reward: number }

export type QuarkLog = {
  step: number;
  episode: number;
  /** Mean reward of this step's rollouts. */
  'objective/scores': number;
  /** Mean over trained sequences of Σ_t KL_t (TRL's objective/kl; AlpacaFarm's kl_sum_seq). */
  'objective/kl': number;
  /** Mean KL per response token (AlpacaFarm's kl_avg_seq). */
  'objective/kl_per_token': number;
  'objective/kl_coef': number;
  /** Mean −log π(y_t) over the trained tokens, and the penalized loss nll + β·KL per token. */
  'loss/nll': number;
  'loss/total': number;
  /** Mean entropy per token of π restricted to the original vocabulary. */
  'policy/entropy_avg': number;
  grad_norm: number;
  learning_rate: number;
  'quark/pool_size': number;
  /** Mean reward of the pool's best quantile, and its lowest reward (the quantile's threshold). */
  'quark/best_quantile_reward': number;
  'quark/best_quantile_min': number;
  /** Sequences the gradient steps drew from. */
  'quark/train_examples': number;
  'rollout/response_length': number;
  'val/num_eos_tokens': number;
  'time/generate_ms': number;
  'time/score_ms': number;
  'time/train_ms': number;
  'time/step_ms': number;
};

export interface QuarkArgs {
  /** The starting policy (the SFT model); with bestQuantileOnly it is trained in place, else a resized copy is. */
  policy: Model;
  /** Frozen reference (default: a copy of the policy at the start). */
  ref?: Model;
  /** The tokenizer (needed as a Tokenizer in the full variant, which adds the quantile tokens). */
  tokenizer: Tokenizer;
  reward: RewardSource;
  /** Instructions to roll out on (AlpacaFarm: the unlabeled split). */
  prompts: AlpacaExample[];
  config?: Partial<QuarkConfig>;
  onStep?: (log: QuarkLog) => void | boolean | Promise<void | boolean>;
  checkpoint?: CheckpointOptions;
  onWarning?: (w: TrainingWarning) => void;
}

export interface QuarkResult {
  history: QuarkLog[];
  steps: number;
  /** The trained policy (the input model with bestQuantileOnly, else a copy with the quantile tokens). */
  model: Model;
  tokenizer: Tokenizer;
  /** How to prompt the trained policy (null for bestQuantileOnly: plain prompts). */
  conditioning: Conditioning | null;
  control: PromptControl;
  pool: QuarkSample[];
  optimizer: Optimizer;
  skippedPrompts: number;
  resumedFrom?: number;
}

/** Pool entries sorted by reward (best first; ties keep pool order) and their quantile (0 = best), AlpacaFarm's chunking. */
export function quantiles(pool: readonly QuarkSample[], k: number): { sorted: QuarkSample[]; quantile: number[]; sizes: number[] } {
  const sorted = pool.map((s, i) => ({ s, i })).sort((a, b) => b.s.reward - a.s.reward || a.i - b.i).map((x) => x.s);
  const base = Math.floor(sorted.length / k);
  const sizes = Array.from({ length: k }, (_, q) => base + (q === k - 1 ? sorted.length % k : 0));
  const quantile: number[] = [];
  sizes.forEach((n, q) => { for (let j = 0; j < n; j++) quantile.push(q); });
  return { sorted, quantile, sizes };
}

/** Every Quark setting, defaults filled in and checked. */
export function resolveQuarkConfig(over: Partial<QuarkConfig> = {}): QuarkConfig {
  const c = resolveConfig('Quark', QUARK_DEFAULTS as QuarkConfig, over, {
    int: [['steps', 1], ['rolloutBatchSize', 1], ['batchSize', 1], ['microBatchSize', 1], ['gradientStepsPerStep', 1], ['numQuantiles', 2],
      ['maxNewTokens', 1], ['topK', 0], ['warmupSteps', 0], ['scoreBatchSize', 1], ['seed', 0], ['maxPromptLength', 1]],
    range: [['klCoef', 0, Infinity], ['temperature', Number.MIN_VALUE, Infinity], ['topP', Number.MIN_VALUE, 1], ['learningRate', 0, Infinity],
      ['adamEps', Number.MIN_VALUE, Infinity], ['maxGradNorm', 0, Infinity], ['weightDecay', 0, Infinity], ['klWarnNats', 0, Infinity]],
    optional: ['maxPromptLength'],
  });
  for (const k of ['bestQuantileOnly', 'clearPool'] as const) if (typeof c[k] !== 'boolean') throw new ConfigError(`Quark config ${k} must be true or false, got ${c[k]}`);
  return c;
}

/** Runs Quark; see the file comment. */
export async function quark(engine: Engine, args: QuarkArgs): Promise<QuarkResult> {
  const c = resolveQuarkConfig(args.config);
  const { tokenizer } = args;
  if (!args.policy.config.lm_head) throw new ConfigError('quark: the policy needs an LM head');
  const P = args.policy.config.max_position_embeddings;
  const maxPrompt = c.maxPromptLength ?? P - c.maxNewTokens;
  if (!(maxPrompt >= 2)) throw new ConfigError(`quark: maxNewTokens ${c.maxNewTokens} leaves no room for a prompt in the context of ${P}`);
  const encoded = args.prompts.map((r) => encodePrompt(tokenizer, r));
  const usable = encoded.map((_, i) => i).filter((i) => encoded[i].length + 1 <= maxPrompt);  // + 1: room for a quantile token
  if (usable.length === 0) throw new ConfigError(`quark: none of the ${args.prompts.length} prompts fits in maxPromptLength ${maxPrompt} tokens`);

  const ref = args.ref ?? cloneModel(engine, args.policy);
  const V0 = ref.config.vocab_size;
  let model = args.policy, tok = tokenizer, tagIds: number[] = [];
  if (!c.bestQuantileOnly) ({ model, tokenizer: tok, ids: tagIds } = addControlTokens(engine, args.policy, tokenizer, quantileTokens(c.numQuantiles)));
  const control: PromptControl = { prefix: tagIds.length ? [tagIds[0]] : [], strip: tagIds };
  const conditioning: Conditioning | null = tagIds.length ? { method: 'quark', tokens: quantileTokens(c.numQuantiles), generateWith: quantileTokens(c.numQuantiles)[0] } : null;
  const score = toRewardFn(engine, args.reward, tokenizer, { batchSize: c.scoreBatchSize });
  const optimizer = engine.createOptimizer(model, { lr: c.learningRate, eps: c.adamEps, weightDecay: c.weightDecay, warmupSteps: c.warmupSteps, maxGradNorm: c.maxGradNorm });
  const padId = padIdOf(tokenizer);

  const ckpt = checkpointer(engine, args.checkpoint, 'Quark');
  const parts = { models: { policy: model }, optimizers: { policy: optimizer } };
  const restored = await ckpt?.restore(parts);
  const stream = new PromptStream(usable, c.seed, restored ? { epoch: restored.epoch as number, at: restored.at as number } : undefined);
  let episode = (restored?.episode as number) ?? 0;
  let pool: QuarkSample[] = (restored?.pool as QuarkSample[]) ?? [];
  const history: QuarkLog[] = [];
  for (let step = (restored?.step ?? 0) + 1; step <= c.steps; step++) {
    const t0 = performance.now();
    // 1. rollouts: the first from the plain prompt (the tokens mean nothing yet), then after the best token
    const rows = stream.next(c.rolloutBatchSize);
    const ids = rows.map((_, k) => (episode + k) % 2 ** 32);
    let t = performance.now();
    const batch = await sampleCandidates(engine, model, tok, args.prompts, rows, rows.map((i) => encoded[i]), ids,
      { temperature: c.temperature, topP: c.topP, topK: c.topK, maxNewTokens: c.maxNewTokens, n: 1, seed: c.seed }, step === 1 ? { prefix: [], strip: tagIds } : control);
    const generateMs = since(t);
    t = performance.now();
    const cands = batch.candidates.map((x) => x[0]);
    const rewards = await withStep('Quark', step, () => score(cands));
    const scoreMs = since(t);
    episode += rows.length;
    // 2. the pool and its quantiles
    if (c.clearPool) pool = [];
    cands.forEach((x, k) => pool.push({ row: x.record, response: x.response, reward: rewards[k] }));
    const q = quantiles(pool, c.numQuantiles);
    const trainSet = c.bestQuantileOnly ? q.sorted.slice(0, q.sizes[0]).map((s) => ({ s, tag: -1 })) : q.sorted.map((s, j) => ({ s, tag: q.quantile[j] }));
    // 3. gradient steps on random batches of the training set
    t = performance.now();
    const acc = { nll: 0, kl: 0, ent: 0, tokens: 0, seqs: 0, gradNorm: 0, lr: 0 };
    for (let g = 0; g < c.gradientStepsPerStep && trainSet.length > 0; g++) {
      const rand = seededUniform(c.seed, step, g);
      const pick = drawWithoutReplacement(trainSet.length, Math.min(c.batchSize, trainSet.length), rand);
      const items = pick.map((j) => ({ plain: encoded[trainSet[j].s.row], response: trainSet[j].s.response, tag: trainSet[j].tag >= 0 ? [tagIds[trainSet[j].tag]] : [] }))
        .filter((x) => x.response.length > 0);
      if (items.length === 0) continue;
      const s = await withStep('Quark', step, () => quarkStep(engine, model, ref, optimizer, items, { klCoef: c.klCoef, microBatchSize: c.microBatchSize, padId, V0, bosId: tok.bosId, rand }));
      acc.nll += s.nll; acc.kl += s.kl; acc.ent += s.entropy; acc.tokens += s.tokens; acc.seqs += s.seqs; acc.gradNorm += s.gradNorm; acc.lr = s.lr;
      checkFinite('Quark', step, { 'loss/nll': s.nll / s.tokens, 'objective/kl': s.kl / s.seqs, grad_norm: s.gradNorm });
    }
    const gSteps = Math.max(1, c.gradientStepsPerStep);
    const best = q.sorted.slice(0, q.sizes[0]);
    const log: QuarkLog = {
      step, episode,
      'objective/scores': mean(rewards),
      'objective/kl': acc.seqs ? acc.kl / acc.seqs : 0,
      'objective/kl_per_token': acc.tokens ? acc.kl / acc.tokens : 0,
      'objective/kl_coef': c.klCoef,
      'loss/nll': acc.tokens ? acc.nll / acc.tokens : 0,
      'loss/total': acc.tokens ? (acc.nll + c.klCoef * acc.kl) / acc.tokens : 0,
      'policy/entropy_avg': acc.tokens ? acc.ent / acc.tokens : 0,
      grad_norm: acc.gradNorm / gSteps,
      learning_rate: acc.lr,
      'quark/pool_size': pool.length,
      'quark/best_quantile_reward': best.length ? mean(best.map((s) => s.reward)) : NaN,
      'quark/best_quantile_min': best.length ? best[best.length - 1].reward : NaN,
      'quark/train_examples': trainSet.length,
      'rollout/response_length': mean(cands.map((x) => x.response.length)),
      'val/num_eos_tokens': batch.samples.filter((x) => x[0].finishReason === 'stop').length,
      'time/generate_ms': generateMs, 'time/score_ms': scoreMs, 'time/train_ms': since(t), 'time/step_ms': since(t0),
    };
    if (log['objective/kl'] > c.klWarnNats)
      args.onWarning?.({ step, kind: 'kl', message: `Quark step ${step}: KL ${log['objective/kl'].toFixed(2)} nats per sequence is above ${c.klWarnNats}; the policy is drifting far from the reference (raise klCoef or lower learningRate)` });
    history.push(log);
    if (ckpt?.due(step, c.steps)) await ckpt.save(parts, { step, ...stream.state(), episode, pool });
    if ((await args.onStep?.(log)) === false) break;
  }
  return {
    history, steps: (restored?.step ?? 0) + history.length, model, tokenizer: tok, conditioning, control, pool, optimizer,
    skippedPrompts: args.prompts.length - usable.length, ...(restored ? { resumedFrom: restored.step } : {}),
  };
}

function drawWithoutReplacement(n: number, k: number, rand: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (n - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}

interface QuarkItem { plain: number[]; response: number[]; tag: number[] }

/**
 * One Quark gradient step over `items` (see the file comment): sums over the batch of −log π(y_t), KL_t and
 * entropy, the token count and the gradient norm of the update.
 */
export async function quarkStep(engine: Engine, policy: Model, ref: Model, optimizer: Optimizer, items: QuarkItem[],
  o: { klCoef: number; microBatchSize: number; padId: number; V0: number; bosId: number | null; rand: () => number }) {
  const N = items.reduce((n, x) => n + x.response.length, 0);
  const out = { nll: 0, kl: 0, entropy: 0, tokens: N, seqs: items.length, gradNorm: 0, lr: 0 };
  policy.zeroGrad();
  const Vp = policy.config.vocab_size, V0 = o.V0;
  for (let at = 0; at < items.length; at += o.microBatchSize) {
    const part = items.slice(at, at + o.microBatchSize);
    const withTag = part.map((x) => {
      const b = o.bosId !== null && x.plain[0] === o.bosId ? 1 : 0;
      return { prompt: [...x.plain.slice(0, b), ...x.tag, ...x.plain.slice(b)], response: x.response };
    });
    const pb = packSequences(withTag, { padId: o.padId, maxLen: policy.config.max_position_embeddings });
    const rb = packSequences(part.map((x) => ({ prompt: x.plain, response: x.response })), { padId: o.padId, maxLen: ref.config.max_position_embeddings });
    const T = pb.seqLen, Tr = rb.seqLen, B = pb.batch;
    const pol = await engine.forward(policy, pb.tokens, { batch: B, targets: pb.targets, train: true, logits: true });
    const refOut = await engine.forward(ref, rb.tokens, { batch: B, logits: true });
    const dNll = new Float32Array(B * T), kTargets = new Int32Array(B * T).fill(-1), dKl = new Float32Array(B * T);
    const logq = new Float64Array(V0), logr = new Float64Array(V0);
    for (let b = 0; b < B; b++) {
      const offP = withTag[b].prompt.length - 1, offR = part[b].plain.length - 1;
      for (let j = 0; j < part[b].response.length; j++) {
        const ip = b * T + offP + j, ir = b * Tr + offR + j;
        if (offP + j >= T || !pb.mask[ip]) continue;
        logSoftmax(pol.logits!, ip * Vp, V0, logq);
        logSoftmax(refOut.logits!, ir * V0, V0, logr);
        let kl = 0, ent = 0;
        for (let v = 0; v < V0; v++) { const p = Math.exp(logq[v]); kl += p * (logq[v] - logr[v]); ent -= p * logq[v]; }
        // one token from π restricted to the original vocabulary
        let u = o.rand(), y = V0 - 1;
        for (let v = 0; v < V0; v++) { u -= Math.exp(logq[v]); if (u <= 0) { y = v; break; } }
        const lp = pol.logp![ip];
        if (!Number.isFinite(lp)) throw new NonFiniteError('log-prob', lp, `sequence ${at + b}, token ${j}`);
        if (!Number.isFinite(kl)) throw new NonFiniteError('objective/kl', kl, `sequence ${at + b}, token ${j}`);
        out.nll -= lp; out.kl += kl; out.entropy += ent;
        dNll[ip] = -1 / N;
        kTargets[ip] = y;
        dKl[ip] = (o.klCoef * (logq[y] - logr[y] - kl)) / N;
      }
    }
    await engine.backward(policy, { dlogp: dNll });
    if (o.klCoef > 0) {
      await engine.forward(policy, pb.tokens, { batch: B, targets: kTargets, train: true });
      await engine.backward(policy, { dlogp: dKl });
    }
  }
  out.lr = optimizer.currentLr();
  const st = await optimizer.adamw.step(out.lr, optimizer.maxGradNorm, engine.threads);
  out.gradNorm = st.gradNorm;
  return out;
}

function logSoftmax(z: Float32Array, off: number, V: number, out: Float64Array): void {
  let m = -Infinity;
  for (let v = 0; v < V; v++) if (z[off + v] > m) m = z[off + v];
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(z[off + v] - m);
  const lse = m + Math.log(s);
  for (let v = 0; v < V; v++) out[v] = z[off + v] - lse;
}
