// Direct preference optimization over summed response log-probs under the policy and a frozen reference
// (Rafailov et al. 2023): sigmoid (DPO), label-smoothed sigmoid (cDPO) and IPO losses, TRL's statistics.
import type { Optimizer } from './optimizer.ts';
import type { Model } from './model.ts';
import {
  backwardRaw, checkPositiveInt, chunks, dpoLoss, forwardRaw, packSequences, sequenceLogRatio, type DPOLossType,
  type EngineLike, type PromptResponse,
} from './rl.ts';
import { checkOptionKeys } from './options.ts';

export interface DPOPair {
  prompt: ArrayLike<number>;
  chosen: ArrayLike<number>;
  rejected: ArrayLike<number>;
  /** Σ log π_ref(chosen | prompt), precomputed (see precomputeReferenceLogps); else computed with `ref`. */
  refChosenLogp?: number;
  refRejectedLogp?: number;
}

export interface DPOConfig {
  /** β, strength of the KL regularization toward the reference (AlpacaFarm/TRL: 0.1). */
  beta: number;
  /** 'sigmoid': −log σ(β·h) (DPO); 'ipo': (h − 1/(2β))² (IPO), h = log-ratio(chosen) − log-ratio(rejected). */
  lossType: DPOLossType;
  /** ε of cDPO: the sigmoid loss with labels flipped with probability ε (0 = plain DPO). */
  labelSmoothing: number;
  /** Pairs per forward/backward pass; gradients of a batch are accumulated (default: the whole batch). */
  microBatchSize?: number;
  padId: number;
}
export const DPO_DEFAULTS: Readonly<DPOConfig> = Object.freeze({ beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0, padId: 0 });

export interface DPOStepStats {
  loss: number;
  'rewards/chosen': number;     // mean β·(log π − log π_ref)(chosen)
  'rewards/rejected': number;
  'rewards/accuracies': number; // fraction with rewards/chosen > rewards/rejected
  'rewards/margins': number;
  'logps/chosen': number;       // mean summed policy log-prob
  'logps/rejected': number;
  gradNorm: number;
  lr: number;
  clipped: boolean;
  pairs: number;
}

function seqsOf(pairs: DPOPair[]): PromptResponse[] {
  const s: PromptResponse[] = [];
  for (const p of pairs) s.push({ prompt: p.prompt, response: p.chosen }, { prompt: p.prompt, response: p.rejected });
  return s;
}

/** Summed response log-probs of prompt+response sequences under a model, in batches (input order). */
export async function sequenceLogps(engine: EngineLike, model: Model, seqs: PromptResponse[], opts: { batchSize?: number; padId?: number } = {}): Promise<Float64Array> {
  if (!model.config.lm_head) throw new Error('sequenceLogps: the model needs an LM head');
  const bs = opts.batchSize ?? 16;
  checkPositiveInt('batchSize', bs);
  const out = new Float64Array(seqs.length);
  const idx = seqs.map((_, i) => i);
  for (const rows of chunks(idx, bs)) {
    const b = packSequences(rows.map((i) => seqs[i]), { padId: opts.padId ?? 0, maxLen: model.config.max_position_embeddings });
    const r = await forwardRaw(engine, model, { tokens: b.tokens, targets: b.targets, batch: b.batch, seqLen: b.seqLen, train: false });
    const s = sequenceLogRatio({ logp: r.logp!, mask: b.mask, batch: b.batch, seqLen: b.seqLen });
    rows.forEach((i, k) => { out[i] = s.logpSum[k]; });
  }
  return out;
}

/** Fills refChosenLogp / refRejectedLogp of each pair with the reference model, once (returns new objects). */
export async function precomputeReferenceLogps(engine: EngineLike, ref: Model, pairs: DPOPair[], opts: { batchSize?: number; padId?: number } = {}): Promise<DPOPair[]> {
  const lp = await sequenceLogps(engine, ref, seqsOf(pairs), opts);
  return pairs.map((p, i) => ({ ...p, refChosenLogp: lp[2 * i], refRejectedLogp: lp[2 * i + 1] }));
}

/** One DPO step over a batch of pairs: loss, accumulate over micro-batches, clip, AdamW. */
export async function dpoStep(engine: EngineLike, args: { policy: Model; ref?: Model; pairs: DPOPair[]; optimizer: Optimizer; config?: Partial<DPOConfig> }): Promise<DPOStepStats> {
  const { policy, pairs, optimizer } = args;
  checkOptionKeys('DPO config', args.config, ['beta', 'lossType', 'labelSmoothing', 'microBatchSize', 'padId']);
  const cfg: DPOConfig = { ...DPO_DEFAULTS, ...args.config };
  if (!policy.config.lm_head) throw new Error('dpoStep: the policy needs an LM head');
  if (optimizer.model !== policy) throw new Error('dpoStep: the optimizer belongs to another model');
  if (!Array.isArray(pairs) || pairs.length === 0) throw new Error('dpoStep: empty batch of pairs');
  const n = pairs.length;
  const micro = cfg.microBatchSize ?? n;
  checkPositiveInt('microBatchSize', micro);
  if (micro > n) throw new Error(`dpoStep: microBatchSize ${micro} is larger than the batch ${n}`);
  const havePre = pairs.map((p) => p.refChosenLogp !== undefined && p.refRejectedLogp !== undefined);
  pairs.forEach((p, i) => {
    if (havePre[i] && !(Number.isFinite(p.refChosenLogp) && Number.isFinite(p.refRejectedLogp)))
      throw new Error(`pairs[${i}]: reference log-probs must be finite numbers`);
  });
  if (!args.ref && havePre.some((h) => !h)) throw new Error(`dpoStep: pair ${havePre.indexOf(false)} has no precomputed reference log-probs and no ref model was given`);

  policy.zeroGrad();
  let loss = 0;
  const sums = { rc: 0, rr: 0, acc: 0, margin: 0, lc: 0, lr: 0 };
  for (const rows of chunks(pairs.map((_, i) => i), micro)) {
    const part = rows.map((i) => pairs[i]);
    const b = packSequences(seqsOf(part), { padId: cfg.padId, maxLen: policy.config.max_position_embeddings });
    const m = rows.length;
    const refC = new Float32Array(m), refR = new Float32Array(m);
    if (rows.some((i) => !havePre[i])) {
      const r = await forwardRaw(engine, args.ref!, { tokens: b.tokens, targets: b.targets, batch: b.batch, seqLen: b.seqLen, train: false });
      const s = sequenceLogRatio({ logp: r.logp!, mask: b.mask, batch: b.batch, seqLen: b.seqLen });
      for (let k = 0; k < m; k++) { refC[k] = s.logpSum[2 * k]; refR[k] = s.logpSum[2 * k + 1]; }
    }
    rows.forEach((i, k) => { if (havePre[i]) { refC[k] = pairs[i].refChosenLogp!; refR[k] = pairs[i].refRejectedLogp!; } });
    const out = await forwardRaw(engine, policy, { tokens: b.tokens, targets: b.targets, batch: b.batch, seqLen: b.seqLen, train: true });
    const s = sequenceLogRatio({ logp: out.logp!, mask: b.mask, batch: b.batch, seqLen: b.seqLen });
    const pc = Float32Array.from({ length: m }, (_, k) => s.logpSum[2 * k]);
    const pr = Float32Array.from({ length: m }, (_, k) => s.logpSum[2 * k + 1]);
    const d = dpoLoss({ policyChosen: pc, policyRejected: pr, refChosen: refC, refRejected: refR, beta: cfg.beta, lossType: cfg.lossType, labelSmoothing: cfg.labelSmoothing, normalizer: n });
    // d(sum of a row's response log-probs)/d(logp_t) = 1 on that row's response positions.
    const dlogp = new Float32Array(b.batch * b.seqLen);
    for (let row = 0; row < b.batch; row++) {
      const g = row % 2 === 0 ? d.dChosen[row >> 1] : d.dRejected[row >> 1];
      for (let t = 0; t < b.seqLen; t++) if (b.mask[row * b.seqLen + t]) dlogp[row * b.seqLen + t] = g;
    }
    await backwardRaw(engine, policy, { dlogp });
    loss += d.loss;
    sums.rc += d.rewardsChosen * m; sums.rr += d.rewardsRejected * m; sums.acc += d.accuracy * m;
    sums.margin += d.margin * m; sums.lc += d.logpsChosen * m; sums.lr += d.logpsRejected * m;
  }
  const lr = optimizer.currentLr();
  const { gradNorm, clipped } = await optimizer.adamw.step(lr, optimizer.maxGradNorm, engine.threads);
  return {
    loss, 'rewards/chosen': sums.rc / n, 'rewards/rejected': sums.rr / n, 'rewards/accuracies': sums.acc / n,
    'rewards/margins': sums.margin / n, 'logps/chosen': sums.lc / n, 'logps/rejected': sums.lr / n, gradNorm, lr, clipped, pairs: n,
  };
}
