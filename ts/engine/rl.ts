// Typed wrappers over the native RL kernels (native/src/rl) and the rollout vocabulary shared by PPO,
// reward modelling and DPO. Per-position arrays are [batch, seqLen] row-major and aligned with the model's
// per-position outputs: position t concerns the token at t+1 (the action taken there). A mask marks the
// positions whose next token is a response token (1) against prompt and padding (0).
import { native } from './native.ts';
import { packBatch } from './batch.ts';
import type { Model } from './model.ts';

export type Mask = Uint8Array | Float32Array;

/** The addon's RL kernels; an addon built before them lacks the object (rebuild with `npm run build`). */
function kernels(): any {
  if (!native.rl) throw new Error('this build of the native addon has no RL kernels; rebuild it (npm run build)');
  return native.rl;
}

/** What the RL functions need from an Engine (kept structural so engine.ts can import this module). */
export interface EngineLike { readonly threads: number; readonly seed: number }

export interface GaeOptions {
  rewards: Float32Array; values: Float32Array; mask: Mask; batch: number; seqLen: number;
  /** γ, discount (AlpacaFarm: 1). */ gamma?: number;
  /** λ, GAE trace decay (AlpacaFarm: 1). */ lambda?: number;
}
/** Generalized advantage estimation over masked positions: δ_t = r_t + γV_{t+1} − V_t, Â_t = δ_t + γλÂ_{t+1}, returns = Â + V. */
export function gae(o: GaeOptions): { advantages: Float32Array; returns: Float32Array } {
  return kernels().gae(o);
}

export interface Moments { mean: number; var: number; min: number; max: number; count: number }
/** (x − mean)/sqrt(var + eps) over masked positions (+ mean back when shiftMean is false); 0 elsewhere. */
export function whiten(x: Float32Array, o: { mask?: Mask; shiftMean?: boolean; unbiased?: boolean; eps?: number } = {}): Moments & { out: Float32Array } {
  return kernels().whiten({ x, ...o });
}
/** Mean, variance (biased unless unbiased), min, max over masked positions. */
export function moments(x: Float32Array, o: { mask?: Mask; unbiased?: boolean } = {}): Moments {
  return kernels().moments({ x, ...o });
}

export type KLEstimator = 'k1' | 'k2' | 'k3';
export interface KLRewardsOptions {
  logp: Float32Array; refLogp: Float32Array; mask: Mask; batch: number; seqLen: number;
  /** Reward-model score per row, added on the row's last masked position. */
  scores?: Float32Array;
  /** β, the KL coefficient. */ klCoef: number;
  /** k1 = log π − log π_ref, k2 = ½(k1)², k3 = exp(−k1) − 1 + k1. Default k1. */ estimator?: KLEstimator;
  /** Clamp k1 at 0 (AlpacaFarm). */ clamp?: boolean;
}
export interface KLRewards {
  rewards: Float32Array; kl: Float32Array; klSum: Float32Array;
  klMean: number; nonScoreReward: number; scoreMean: number; klTokenMean: number;
}
/** Per-token reward r_t = −β·kl_t, plus the score on the last response position of each row. */
export function klPenalizedRewards(o: KLRewardsOptions): KLRewards {
  return kernels().klRewards(o);
}

export interface PPOLossOptions {
  mask: Mask;
  logp?: Float32Array; oldLogp?: Float32Array; advantages?: Float32Array;
  values?: Float32Array; oldValues?: Float32Array; returns?: Float32Array;
  entropy?: Float32Array;
  cliprange?: number; cliprangeValue?: number; vfCoef?: number; entCoef?: number;
  /** Divide token sums by this (> 0) instead of this call's masked token count (gradient accumulation). */
  normalizer?: number;
}
export interface PPOLossResult {
  loss: number; tokens: number;
  pgLoss?: number; pgClipfrac?: number; approxkl?: number; policykl?: number; ratioMean?: number; ratioVar?: number;
  vfLoss?: number; vfClipfrac?: number; valueError?: number; vpredMean?: number; entropy?: number;
  dlogp?: Float32Array; dvalues?: Float32Array; dentropy?: Float32Array;
}
/**
 * PPO clipped policy loss mean(max(−Â·ρ, −Â·clip(ρ, 1−ε, 1+ε))), ρ = exp(logp − oldLogp); clipped value loss
 * ½·mean(max((V−R)², (clip(V, V_old ± ε_v) − R)²))·vfCoef; entropy bonus −entCoef·mean(H). Returns the
 * loss, the statistics (means over this call's tokens) and dL/dlogp, dL/dvalues, dL/dentropy.
 */
export function ppoLoss(o: PPOLossOptions): PPOLossResult {
  return kernels().ppoLoss(o);
}

export interface BTResult {
  loss: number; accuracy: number; margin: number; chosenMean: number; rejectedMean: number;
  dr1: Float32Array; dr2: Float32Array;
}
/** Bradley-Terry: mean BCE-with-logits(r2 − r1, label), label = P(output 2 preferred) in [0, 1]. */
export function bradleyTerryLoss(o: { r1: Float32Array; r2: Float32Array; label: Float32Array; normalizer?: number }): BTResult {
  return kernels().bradleyTerry(o);
}

export type DPOLossType = 'sigmoid' | 'ipo';
export interface DPOLossResult {
  loss: number; rewardsChosen: number; rewardsRejected: number; accuracy: number; margin: number;
  logpsChosen: number; logpsRejected: number; dChosen: Float32Array; dRejected: Float32Array;
}
/** DPO losses over summed response log-probs (sigmoid; cDPO = sigmoid with labelSmoothing; IPO). */
export function dpoLoss(o: {
  policyChosen: Float32Array; policyRejected: Float32Array; refChosen: Float32Array; refRejected: Float32Array;
  beta?: number; lossType?: DPOLossType; labelSmoothing?: number; normalizer?: number;
}): DPOLossResult {
  return kernels().dpoLoss(o);
}

export interface SequenceLogRatio {
  logpSum: Float64Array; tokens: Int32Array;
  refLogpSum?: Float64Array; logRatioSum?: Float64Array;
  /** Σ_k w_k·(log π − log π_ref) with w_k = 1/(k+1) over the row's response tokens (TreeBoN's partial reward). */
  weightedLogRatioSum?: Float64Array;
  logRatio?: Float32Array;
}
/** Per-row sums of response log-probs and log-ratios against a reference. */
export function sequenceLogRatio(o: { logp: Float32Array; refLogp?: Float32Array; mask: Mask; batch: number; seqLen: number }): SequenceLogRatio {
  return kernels().sequenceLogRatio(o);
}

// ---- rollouts ---------------------------------------------------------------------------------------

export interface PromptResponse { prompt: ArrayLike<number>; response: ArrayLike<number> }

/** A padded batch of query+response sequences with the response mask (what PPO, DPO and scoring consume). */
export interface SequenceBatch {
  /** [batch*seqLen] tokens, right-padded. */
  tokens: Int32Array;
  /** [batch*seqLen] next token where it is a response token, else -1. */
  targets: Int32Array;
  /** [batch*seqLen] 1 where the next token is a response token. */
  mask: Uint8Array;
  batch: number;
  seqLen: number;
  /** Index of each row's last real token (where a reward head reads the score). */
  lastIndex: Int32Array;
}

/** Packs prompt+response pairs (right-padded with padId). Throws when a sequence is longer than maxLen. */
export function packSequences(seqs: PromptResponse[], opts: { padId?: number; maxLen?: number } = {}): SequenceBatch {
  if (seqs.length === 0) throw new Error('packSequences: empty batch');
  seqs.forEach((s, i) => {
    const n = s.prompt.length + s.response.length;
    if (s.response.length === 0) throw new Error(`packSequences: sequence ${i} has an empty response`);
    if (opts.maxLen !== undefined && n > opts.maxLen)
      throw new Error(`packSequences: sequence ${i} has ${n} tokens, more than the model's ${opts.maxLen} positions`);
  });
  // One extra column so the last response token's state (the reward head's input) exists for every row.
  const seqLen = Math.max(...seqs.map((s) => s.prompt.length + s.response.length));
  const b = packBatch(seqs, { padId: opts.padId ?? 0, seqLen });
  const mask = new Uint8Array(b.targets.length);
  for (let i = 0; i < mask.length; i++) mask[i] = b.targets[i] >= 0 ? 1 : 0;
  const lastIndex = Int32Array.from(seqs, (s) => s.prompt.length + s.response.length - 1);
  return { tokens: b.tokens, targets: b.targets, mask, batch: b.batch, seqLen: b.seqLen, lastIndex };
}

/** targets[i] = tokens[i+1] where mask[i] = 1, else -1 (the last position of a row must be unmasked). */
export function targetsFromMask(tokens: Int32Array, mask: Mask, batch: number, seqLen: number, name = 'mask'): Int32Array {
  const n = batch * seqLen;
  if (tokens.length !== n) throw new Error(`tokens must have ${n} elements (batch ${batch} x seqLen ${seqLen}), got ${tokens.length}`);
  if (mask.length !== n) throw new Error(`${name} must have ${n} elements (batch ${batch} x seqLen ${seqLen}), got ${mask.length}`);
  const targets = new Int32Array(n).fill(-1);
  for (let b = 0; b < batch; b++) {
    let any = false;
    for (let t = 0; t < seqLen; t++) {
      const i = b * seqLen + t, m = mask[i];
      if (m !== 0 && m !== 1) throw new Error(`${name}[${i}] = ${m} is not 0 or 1`);
      if (m === 1) {
        if (t === seqLen - 1) throw new Error(`${name}[${i}] = 1 at the last position of row ${b}: there is no next token to score`);
        targets[i] = tokens[i + 1];
        any = true;
      }
    }
    if (!any) throw new Error(`${name}: row ${b} has no response position (all 0)`);
  }
  return targets;
}

// ---- shared helpers for the steps -------------------------------------------------------------------

/** Counter-based generator (splitmix32 over a 32-bit state): the same seed gives the same stream everywhere. */
export function seededRandom(seed: number): () => number {
  let s = (seed >>> 0) ^ 0x9e3779b9;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 4294967296;
  };
}
/** Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, rand: () => number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
/** Splits rows into consecutive chunks of at most `size`. */
export function chunks<T>(rows: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/** Copies the given rows of a [batch, T] array into a new [rows.length, T] array. */
export function gatherRows<A extends Float32Array | Int32Array | Uint8Array>(src: A, rows: number[], T: number): A {
  const Ctor = src.constructor as { new(n: number): A };
  const out = new Ctor(rows.length * T);
  rows.forEach((r, k) => out.set(src.subarray(r * T, (r + 1) * T), k * T));
  return out;
}
/** Writes a [rows.length, T] array back into rows of a [batch, T] array. */
export function scatterRows(dst: Float32Array, part: Float32Array, rows: number[], T: number): void {
  rows.forEach((r, k) => dst.set(part.subarray(k * T, (k + 1) * T), r * T));
}

export interface RawForward { logp?: Float32Array; entropy?: Float32Array; values?: Float32Array }
/** One forward over a [batch, T] block, without logits; train keeps activations for backward. */
export function forwardRaw(engine: EngineLike, model: Model, o: { tokens: Int32Array; targets?: Int32Array; batch: number; seqLen: number; train: boolean; entropy?: boolean }): Promise<RawForward> {
  return model.raw.forward({
    tokens: o.tokens, targets: o.targets, batch: o.batch, seqLen: o.seqLen, train: o.train,
    entropy: o.entropy ?? false, logits: false, threads: engine.threads,
  });
}
export function backwardRaw(engine: EngineLike, model: Model, g: { dlogp?: Float32Array; dentropy?: Float32Array; dvalues?: Float32Array }): Promise<void> {
  return model.raw.backward({ ...g, threads: engine.threads });
}

export function checkPositiveInt(name: string, v: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`${name} must be an integer in [1, ${max}], got ${v}`);
}
