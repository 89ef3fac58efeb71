// One PPO optimization phase over a rollout batch (AlpacaFarm's PPO, TRL's metric names): KL-penalized
// rewards, GAE, whitening, then epochs x shuffled minibatches with gradient accumulation, clipping and AdamW.
// Policy and value may be two models or one model with an LM head and a scalar head.
import { Optimizer } from './optimizer.ts';
import { beginPhase } from './profile.ts';
import type { Model } from './model.ts';
import { AdaptiveKLController, FixedKLController, type KLController } from './kl.ts';
import {
  backwardRaw, checkPositiveInt, chunks, forwardRaw, gae, gatherRows, klPenalizedRewards, moments, permutation, ppoLoss,
  scatterRows, seededRandom, targetsFromMask, whiten, type EngineLike, type PPOLossResult, type KLEstimator, type Mask,
} from './rl.ts';
import { checkOptionKeys } from './options.ts';

/** PPO hyperparameters; defaults follow AlpacaFarm's PPO (simulated feedback). */
export interface PPOConfig {
  /** ε, policy ratio clip: ρ is clipped to [1 − ε, 1 + ε] (AlpacaFarm/TRL `cliprange` 0.2). */
  cliprange: number;
  /** ε_v, value clip around the rollout values: V is clipped to V_old ± ε_v (TRL `cliprange_value` 0.2); 0 disables. */
  cliprangeValue: number;
  /** c_v, value loss coefficient (`vf_coef` 0.1). */
  vfCoef: number;
  /** c_H, entropy bonus coefficient (0: AlpacaFarm has none; entropy is still reported). */
  entCoef: number;
  /** γ, discount (1). */
  gamma: number;
  /** λ, GAE parameter (1). */
  lam: number;
  /**
   * Scale the per-token rewards (KL penalty + score) to unit variance over the response tokens (AlpacaFarm:
   * true). AlpacaFarm computes (r − μ)/σ + μ over fixed-length padded rows, where the constant μ(1 − 1/σ)
   * lands on every row alike; over masked response tokens that constant would sum to a length bonus or
   * penalty, so it is left out here: rewards are divided by σ only.
   */
  whitenRewards: boolean;
  /** Whiten the advantages (shifting the mean) over the response tokens of the batch (true). */
  whitenAdvantages: boolean;
  /** β₀, initial KL coefficient (AlpacaFarm: 0.0067 with simulated feedback, 0.02 with human feedback). */
  initKlCoef: number;
  /** Adapt β with the proportional controller (false: β stays fixed, as AlpacaFarm's default). */
  adaptiveKl: boolean;
  /** KL_target of the adaptive controller, in nats per sequence (6). */
  klTarget: number;
  /** K_β, horizon of the adaptive controller, in rollouts (10000). */
  klHorizon: number;
  /** Per-token KL estimator: 'k1' = log π − log π_ref (AlpacaFarm), 'k2', 'k3'. */
  klEstimator: KLEstimator;
  /** Clamp the k1 estimate at 0 per token (AlpacaFarm: true). */
  klClamp: boolean;
  /** Optimization epochs over each rollout batch (`noptepochs` 2). */
  ppoEpochs: number;
  /** Rollouts per optimizer step (AlpacaFarm: 256 of 512, i.e. two minibatches per epoch); default: half the batch, rounded up. */
  miniBatchSize?: number;
  /** Micro-batches per minibatch whose gradients are accumulated (the loss stays the minibatch token mean). */
  gradientAccumulationSteps: number;
  /** Rows per forward pass when recomputing log-probs/values of the rollouts (default: the micro-batch size). */
  forwardBatchSize?: number;
  /** Seed for minibatch shuffling (default: the engine's seed); each phase mixes in the optimizer step count. */
  seed?: number;
  /** Settings of the optimizers made when none is passed (AlpacaFarm: lr 1e-5, AdamW eps 1e-5, 5 warmup steps, clip 1.0). */
  learningRate: number;
  adamEps: number;
  warmupSteps: number;
  maxGradNorm: number;
}

export const PPO_DEFAULTS: Readonly<PPOConfig> = Object.freeze({
  cliprange: 0.2, cliprangeValue: 0.2, vfCoef: 0.1, entCoef: 0, gamma: 1, lam: 1,
  whitenRewards: true, whitenAdvantages: true,
  initKlCoef: 0.0067, adaptiveKl: false, klTarget: 6, klHorizon: 10000, klEstimator: 'k1', klClamp: true,
  ppoEpochs: 2, gradientAccumulationSteps: 1,
  learningRate: 1e-5, adamEps: 1e-5, warmupSteps: 5, maxGradNorm: 1.0,
});

export function resolvePPOConfig(c: Partial<PPOConfig> = {}): PPOConfig {
  checkOptionKeys('PPO config', c, [...Object.keys(PPO_DEFAULTS), 'miniBatchSize', 'forwardBatchSize', 'seed']);
  const r: PPOConfig = { ...PPO_DEFAULTS, ...c };
  const inRange = (k: keyof PPOConfig, lo: number, hi: number, loOpen = false) => {
    const v = r[k] as number;
    if (typeof v !== 'number' || !Number.isFinite(v) || v > hi || (loOpen ? v <= lo : v < lo))
      throw new Error(`PPO config ${k} must be in ${loOpen ? '(' : '['}${lo}, ${hi}], got ${v}`);
  };
  inRange('cliprange', 0, 1, true);
  if (r.cliprange >= 1) throw new Error(`PPO config cliprange must be in (0, 1), got ${r.cliprange}`);
  inRange('cliprangeValue', 0, Infinity);
  inRange('vfCoef', 0, Infinity);
  inRange('entCoef', -Infinity, Infinity);
  inRange('gamma', 0, 1);
  inRange('lam', 0, 1);
  inRange('initKlCoef', 0, Infinity);
  inRange('klTarget', 0, Infinity, true);
  inRange('klHorizon', 0, Infinity, true);
  inRange('learningRate', 0, Infinity);
  inRange('adamEps', 0, Infinity, true);
  inRange('maxGradNorm', 0, Infinity);
  if (!['k1', 'k2', 'k3'].includes(r.klEstimator)) throw new Error(`PPO config klEstimator must be 'k1', 'k2' or 'k3', got ${r.klEstimator}`);
  checkPositiveInt('PPO config ppoEpochs', r.ppoEpochs, 1000);
  checkPositiveInt('PPO config gradientAccumulationSteps', r.gradientAccumulationSteps);
  if (!Number.isInteger(r.warmupSteps) || r.warmupSteps < 0) throw new Error(`PPO config warmupSteps must be an integer >= 0, got ${r.warmupSteps}`);
  if (r.miniBatchSize !== undefined) checkPositiveInt('PPO config miniBatchSize', r.miniBatchSize);
  if (r.forwardBatchSize !== undefined) checkPositiveInt('PPO config forwardBatchSize', r.forwardBatchSize);
  return r;
}

/** A rollout batch: query+response tokens and what was recorded while sampling. */
export interface Rollouts {
  /** [batch*seqLen] query + response tokens, right-padded. */
  tokens: Int32Array;
  batch: number;
  seqLen: number;
  /** [batch*seqLen] 1 at position t when token t+1 is a generated response token (EOS included), else 0. */
  responseMask: Mask;
  /** [batch] reward-model score of each rollout (placed on its last response token). */
  scores: Float32Array;
  /** [batch*seqLen] log π_old(token t+1) of the sampling policy; recomputed with the policy when absent. */
  logp?: Float32Array;
  /** [batch*seqLen] log π_ref(token t+1); computed with `ref` when absent. */
  refLogp?: Float32Array;
  /** [batch*seqLen] V_old(t) of the value model at sampling time; computed when absent. */
  values?: Float32Array;
}

export interface PPOStepArgs {
  policy: Model;
  /** Separate value model (scalar head). Omit, or pass the policy, for one model with LM and scalar heads. */
  value?: Model;
  /** Frozen reference; needed unless rollouts.refLogp is given. */
  ref?: Model;
  rollouts: Rollouts;
  config?: Partial<PPOConfig>;
  /** Policy optimizer (its schedule and maxGradNorm apply). Default: one per policy model, made from the config and kept. */
  optimizer?: Optimizer;
  /** Value-model optimizer when the value model is separate. Default: one per value model, kept. */
  valueOptimizer?: Optimizer;
  /** KL controller. Default: one per policy model, made from the config and kept across calls. */
  klController?: KLController;
}

/** Statistics of a phase, under TRL's names; means over response tokens of all minibatches unless noted. */
export interface PPOStats {
  'objective/kl': number;              // mean over rollouts of Σ_t kl_t (before β)
  'objective/kl_coef': number;         // β used for this batch
  'objective/entropy': number;         // mean over rollouts of Σ_t H_t (token mean × response tokens per rollout)
  'objective/non_score_reward': number; // mean over rollouts of −β Σ_t kl_t
  'objective/rlhf_reward': number;     // scores + non_score_reward
  'objective/scores': number;
  'policy/approxkl_avg': number;
  'policy/policykl_avg': number;
  'policy/clipfrac_avg': number;
  'policy/entropy_avg': number;
  'loss/policy_avg': number;
  'loss/value_avg': number;
  'loss/total_avg': number;
  'val/clipfrac_avg': number;
  'val/ratio': number;
  'val/ratio_var': number;
  'val/error': number;
  'val/vpred': number;
  'val/mean': number;                  // rollout values V_old
  'val/var': number;
  'returns/mean': number;
  'returns/var': number;
  'advantages/mean': number;           // before whitening
  'advantages/var': number;
  'rewards/mean': number;              // per-token shaped rewards, before whitening
  'ppo/grad_norm': number;             // mean pre-clip gradient norm of the policy steps
  'ppo/lr': number;
  'ppo/optimizer_steps': number;
  'ppo/tokens': number;                // response tokens in the batch
  'time/recompute_ms': number;         // log-prob / value recomputation (no gradient)
  'time/forward_backward_ms': number;
  'time/optimizer_ms': number;
  'time/rl_kernels_ms': number;        // KL rewards, whitening, GAE, PPO losses
  'time/total_ms': number;
}

const autoOptimizers = new WeakMap<Model, Optimizer>();
const autoControllers = new WeakMap<Model, KLController>();

/** The optimizer ppoStep makes for a model when none is passed (kept per model, so AdamW state persists). */
export function defaultPPOOptimizer(model: Model, config: Partial<PPOConfig> = {}): Optimizer {
  let o = autoOptimizers.get(model);
  if (!o) {
    const c = resolvePPOConfig(config);
    o = new Optimizer(model, { lr: c.learningRate, eps: c.adamEps, warmupSteps: c.warmupSteps, maxGradNorm: c.maxGradNorm });
    autoOptimizers.set(model, o);
  }
  return o;
}
/** The KL controller ppoStep keeps for a policy when none is passed. */
export function defaultKLController(policy: Model, config: Partial<PPOConfig> = {}): KLController {
  let k = autoControllers.get(policy);
  if (!k) {
    const c = resolvePPOConfig(config);
    k = c.adaptiveKl ? new AdaptiveKLController({ init: c.initKlCoef, target: c.klTarget, horizon: c.klHorizon })
      : new FixedKLController(c.initKlCoef);
    autoControllers.set(policy, k);
  }
  return k;
}

const now = () => performance.now();

/** One PPO phase: see the file comment. Returns TRL-named statistics. */
export async function ppoStep(engine: EngineLike, args: PPOStepArgs): Promise<PPOStats> {
  const t0 = now();
  checkOptionKeys('ppoStep', args, ['policy', 'value', 'ref', 'rollouts', 'config', 'optimizer', 'valueOptimizer', 'klController']);
  const cfg = resolvePPOConfig(args.config);
  const { policy, rollouts: R } = args;
  const shared = !args.value || args.value === policy;
  const valueModel = shared ? policy : args.value!;
  if (!policy.config.lm_head) throw new Error('ppoStep: the policy needs an LM head');
  if (!valueModel.config.scalar_head)
    throw new Error(shared ? 'ppoStep: without a separate value model the policy needs a scalar head (scalar_head: true)'
      : 'ppoStep: the value model needs a scalar head (scalar_head: true)');

  if (args.ref) {
    if (!args.ref.config.lm_head) throw new Error('ppoStep: the reference model needs an LM head');
    if (args.ref.config.vocab_size !== policy.config.vocab_size)
      throw new Error(`ppoStep: reference vocab_size ${args.ref.config.vocab_size} differs from the policy's ${policy.config.vocab_size}`);
  }
  if (!shared && valueModel.config.vocab_size !== policy.config.vocab_size)
    throw new Error(`ppoStep: value model vocab_size ${valueModel.config.vocab_size} differs from the policy's ${policy.config.vocab_size}`);

  // ---- validate the rollouts
  if (!R || typeof R !== 'object') throw new Error('ppoStep: rollouts are required');
  if (!Number.isInteger(R.batch) || R.batch < 1) throw new Error(`ppoStep: rollouts.batch must be an integer >= 1 (an empty batch has nothing to learn), got ${R.batch}`);
  checkPositiveInt('rollouts.seqLen', R.seqLen, policy.config.max_position_embeddings);
  const B = R.batch, T = R.seqLen, n = B * T;
  if (!(R.tokens instanceof Int32Array)) throw new Error('rollouts.tokens must be an Int32Array');
  const targets = targetsFromMask(R.tokens, R.responseMask, B, T, 'rollouts.responseMask');
  const V = policy.config.vocab_size;
  for (let i = 0; i < n; i++)
    if (!(R.tokens[i] >= 0 && R.tokens[i] < V)) throw new Error(`rollouts.tokens[${i}] = ${R.tokens[i]} is outside [0, vocab_size=${V})`);
  const mask = R.responseMask instanceof Uint8Array ? R.responseMask : Uint8Array.from(R.responseMask);
  checkLen('rollouts.scores', R.scores, B, `one per rollout, batch ${B}`);
  for (const k of ['logp', 'refLogp', 'values'] as const) if (R[k] !== undefined) checkLen(`rollouts.${k}`, R[k]!, n, `batch ${B} x seqLen ${T}`);
  if (!R.refLogp && !args.ref) throw new Error('ppoStep: pass a reference model (ref) or rollouts.refLogp');
  const mb = cfg.miniBatchSize ?? Math.ceil(B / 2);
  if (mb > B) throw new Error(`ppoStep: miniBatchSize ${mb} is larger than the rollout batch ${B}`);
  const micro = Math.ceil(mb / cfg.gradientAccumulationSteps);
  const fwdRows = cfg.forwardBatchSize ?? micro;

  const optimizer = args.optimizer ?? defaultPPOOptimizer(policy, cfg);
  if (optimizer.model !== policy) throw new Error('ppoStep: the optimizer belongs to another model');
  let valueOptimizer: Optimizer | undefined;
  if (!shared) {
    valueOptimizer = args.valueOptimizer ?? defaultPPOOptimizer(valueModel, cfg);
    if (valueOptimizer.model !== valueModel) throw new Error('ppoStep: the value optimizer belongs to another model');
  }
  const klCtl = args.klController ?? defaultKLController(policy, cfg);

  // ---- recompute what the rollouts lack (no gradient)
  const tRe = now();
  let endPhase = beginPhase('ppo.score rollouts');
  const oldLogp = R.logp ?? new Float32Array(n);
  const refLogp = R.refLogp ?? new Float32Array(n);
  const oldValues = R.values ?? new Float32Array(n);
  const needLogp = !R.logp, needRef = !R.refLogp, needValues = !R.values;
  for (const rows of chunks(range(B), fwdRows)) {
    const tok = gatherRows(R.tokens, rows, T), tgt = gatherRows(targets, rows, T);
    const run = async (model: Model, logpDst: Float32Array | null, wantValues: boolean) => {
      const out = await forwardRaw(engine, model, { tokens: tok, targets: logpDst ? tgt : undefined, batch: rows.length, seqLen: T, train: false });
      if (logpDst) scatterRows(logpDst, out.logp!, rows, T);
      if (wantValues) scatterRows(oldValues, out.values!, rows, T);
    };
    if (needLogp || (shared && needValues)) await run(policy, needLogp ? oldLogp : null, shared && needValues);
    if (!shared && needValues) await run(valueModel, null, true);
    if (needRef) await run(args.ref!, refLogp, false);
  }
  const recomputeMs = now() - tRe;
  endPhase();
  endPhase = beginPhase('ppo.advantages');

  // ---- rewards, advantages
  let kernelMs = 0;
  let tk = now();
  const klCoef = klCtl.value;
  const kl = klPenalizedRewards({
    logp: oldLogp, refLogp, mask, batch: B, seqLen: T, scores: R.scores, klCoef, estimator: cfg.klEstimator,
    clamp: cfg.klClamp,
  });
  const rewardMoments = moments(kl.rewards, { mask });
  const rewards = cfg.whitenRewards ? scaleToUnitVariance(kl.rewards, mask, rewardMoments.var) : kl.rewards;
  const { advantages: rawAdv, returns } = gae({ rewards, values: oldValues, mask, batch: B, seqLen: T, gamma: cfg.gamma, lambda: cfg.lam });
  const advMoments = moments(rawAdv, { mask });
  const advantages = cfg.whitenAdvantages ? whiten(rawAdv, { mask, shiftMean: true }).out : rawAdv;
  const retMoments = moments(returns, { mask }), valMoments = moments(oldValues, { mask });
  kernelMs += now() - tk;
  endPhase();

  // ---- optimization
  endPhase = beginPhase('ppo.optimize');
  const acc = new Accumulator();
  let fbMs = 0, optMs = 0, gradNormSum = 0, steps = 0, lr = 0;
  const rand = seededRandom(((cfg.seed ?? engine.seed) * 0x9e3779b1 + optimizer.step * 0x85ebca6b) >>> 0);
  for (let epoch = 0; epoch < cfg.ppoEpochs; epoch++) {
    const perm = permutation(B, rand);
    for (const mbRows of chunks(perm, mb)) {
      let mbTokens = 0;
      for (const r of mbRows) for (let t = 0; t < T; t++) mbTokens += mask[r * T + t];
      policy.zeroGrad();
      if (!shared) valueModel.zeroGrad();
      for (const rows of chunks(mbRows, micro)) {
        const tf = now();
        const m = rows.length;
        const g = <A extends Float32Array | Int32Array | Uint8Array>(a: A) => gatherRows(a, rows, T);
        const tok = g(R.tokens), tgt = g(targets), msk = g(mask);
        const pol = await forwardRaw(engine, policy, { tokens: tok, targets: tgt, batch: m, seqLen: T, train: true, entropy: true });
        const val = shared ? pol : await forwardRaw(engine, valueModel, { tokens: tok, batch: m, seqLen: T, train: true });
        tk = now();
        const loss = ppoLoss({
          mask: msk, logp: pol.logp, oldLogp: g(oldLogp), advantages: g(advantages),
          values: val.values, oldValues: g(oldValues), returns: g(returns), entropy: pol.entropy,
          cliprange: cfg.cliprange, cliprangeValue: cfg.cliprangeValue, vfCoef: cfg.vfCoef, entCoef: cfg.entCoef,
          normalizer: mbTokens,
        });
        const dk = now() - tk;
        kernelMs += dk;
        acc.add(loss);
        if (shared) await backwardRaw(engine, policy, { dlogp: loss.dlogp, dentropy: loss.dentropy, dvalues: loss.dvalues });
        else {
          await backwardRaw(engine, policy, { dlogp: loss.dlogp, dentropy: loss.dentropy });
          await backwardRaw(engine, valueModel, { dvalues: loss.dvalues });
        }
        fbMs += now() - tf - dk;
      }
      const to = now();
      lr = optimizer.currentLr();
      const st = await optimizer.adamw.step(lr, optimizer.maxGradNorm, engine.threads);
      if (valueOptimizer) await valueOptimizer.adamw.step(valueOptimizer.currentLr(), valueOptimizer.maxGradNorm, engine.threads);
      optMs += now() - to;
      gradNormSum += st.gradNorm;
      steps++;
    }
  }
  endPhase();
  klCtl.update(kl.klMean, B);

  const s = acc.means();
  return {
    'objective/kl': kl.klMean,
    'objective/kl_coef': klCoef,
    'objective/entropy': (s.entropy * rewardMoments.count) / B,
    'objective/non_score_reward': kl.nonScoreReward,
    'objective/rlhf_reward': kl.scoreMean + kl.nonScoreReward,
    'objective/scores': kl.scoreMean,
    'policy/approxkl_avg': s.approxkl,
    'policy/policykl_avg': s.policykl,
    'policy/clipfrac_avg': s.pgClipfrac,
    'policy/entropy_avg': s.entropy,
    'loss/policy_avg': s.pgLoss,
    'loss/value_avg': s.vfLoss,
    'loss/total_avg': s.pgLoss + cfg.vfCoef * s.vfLoss - cfg.entCoef * s.entropy,
    'val/clipfrac_avg': s.vfClipfrac,
    'val/ratio': s.ratioMean,
    'val/ratio_var': s.ratioVar,
    'val/error': s.valueError,
    'val/vpred': s.vpredMean,
    'val/mean': valMoments.mean,
    'val/var': valMoments.var,
    'returns/mean': retMoments.mean,
    'returns/var': retMoments.var,
    'advantages/mean': advMoments.mean,
    'advantages/var': advMoments.var,
    'rewards/mean': rewardMoments.mean,
    'ppo/grad_norm': steps ? gradNormSum / steps : 0,
    'ppo/lr': lr,
    'ppo/optimizer_steps': steps,
    'ppo/tokens': rewardMoments.count,
    'time/recompute_ms': recomputeMs,
    'time/forward_backward_ms': fbMs,
    'time/optimizer_ms': optMs,
    'time/rl_kernels_ms': kernelMs,
    'time/total_ms': now() - t0,
  };
}

function range(n: number): number[] { return Array.from({ length: n }, (_, i) => i); }
function checkLen(name: string, a: ArrayLike<number>, n: number, shape: string): void {
  if (!(a instanceof Float32Array)) throw new Error(`${name} must be a Float32Array`);
  if (a.length !== n) throw new Error(`${name} must have ${n} elements (${shape}), got ${a.length}`);
}

/** Token-weighted means of the per-micro-batch loss statistics (ratio variance pooled exactly). */
class Accumulator {
  private w = 0;
  private sums: Record<string, number> = {};
  private ratioSq = 0;
  add(res: PPOLossResult): void {
    const r = res as unknown as Record<string, number | undefined>;
    const w = res.tokens;
    if (!w) return;
    this.w += w;
    for (const k of ['pgLoss', 'vfLoss', 'pgClipfrac', 'vfClipfrac', 'approxkl', 'policykl', 'ratioMean', 'valueError', 'vpredMean', 'entropy']) {
      const v = r[k];
      if (typeof v === 'number') this.sums[k] = (this.sums[k] ?? 0) + v * w;
    }
    const mean = r.ratioMean, v = r.ratioVar;
    if (mean !== undefined && v !== undefined) this.ratioSq += (v + mean * mean) * w;
  }
  means() {
    const m = (k: string) => (this.w ? (this.sums[k] ?? 0) / this.w : 0);
    const ratioMean = m('ratioMean');
    return {
      pgLoss: m('pgLoss'), vfLoss: m('vfLoss'), pgClipfrac: m('pgClipfrac'), vfClipfrac: m('vfClipfrac'),
      approxkl: m('approxkl'), policykl: m('policykl'), ratioMean, valueError: m('valueError'), vpredMean: m('vpredMean'),
      entropy: m('entropy'), ratioVar: this.w ? Math.max(0, this.ratioSq / this.w - ratioMean * ratioMean) : 0,
    };
  }
}

/** r / sqrt(var + 1e-8) on masked positions, 0 elsewhere (see whitenRewards). */
function scaleToUnitVariance(x: Float32Array, mask: ArrayLike<number>, variance: number): Float32Array {
  const inv = 1 / Math.sqrt(variance + 1e-8);
  return Float32Array.from(x, (v, i) => (mask[i] ? v * inv : 0));
}
