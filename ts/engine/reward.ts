// Reward model: a scalar head read at the last token of prompt+response; trained with the Bradley-Terry loss
// BCE-with-logits(r(y2) − r(y1), [y2 preferred]) as AlpacaFarm; batched scoring of responses.
import type { Optimizer } from './optimizer.ts';
import type { Model } from './model.ts';
import {
  backwardRaw, bradleyTerryLoss, checkPositiveInt, chunks, forwardRaw, packSequences, type EngineLike, type PromptResponse,
} from './rl.ts';
import { checkOptionKeys } from './options.ts';

/** One preference: AlpacaFarm's convention, preference 1 or 2 = which output is better; soft values in [1, 2] allowed. */
export interface PreferencePair {
  prompt: ArrayLike<number>;
  output1: ArrayLike<number>;
  output2: ArrayLike<number>;
  preference: number;
}

export interface RewardConfig {
  /** Pairs per forward/backward pass; gradients of a batch are accumulated (default: the whole batch). */
  microBatchSize?: number;
  /** Pad token id (any valid id; padding comes after the read position). Default 0. */
  padId?: number;
}

export interface RewardStepStats {
  loss: number;
  accuracy: number;
  /** Mean of r(preferred) − r(other). */
  margin: number;
  'rewards/chosen': number;
  'rewards/rejected': number;
  gradNorm: number;
  lr: number;
  clipped: boolean;
  pairs: number;
}

function checkModel(model: Model, who: string): void {
  if (!model.config.scalar_head) throw new Error(`${who}: the reward model needs a scalar head (scalar_head: true)`);
}

function labels(pairs: PreferencePair[]): Float32Array {
  return Float32Array.from(pairs, (p, i) => {
    const y = p.preference;
    if (typeof y !== 'number' || !(y >= 1 && y <= 2)) throw new Error(`pairs[${i}].preference must be 1, 2 or a number in [1, 2], got ${y}`);
    return y - 1;
  });
}

/** Rewards of output1 and output2 of each pair (the scalar head at each sequence's last token). */
async function pairRewards(engine: EngineLike, model: Model, pairs: PreferencePair[], padId: number, train: boolean) {
  const seqs: PromptResponse[] = [];
  for (const p of pairs) seqs.push({ prompt: p.prompt, response: p.output1 }, { prompt: p.prompt, response: p.output2 });
  const b = packSequences(seqs, { padId, maxLen: model.config.max_position_embeddings });
  const out = await forwardRaw(engine, model, { tokens: b.tokens, batch: b.batch, seqLen: b.seqLen, train });
  const r1 = new Float32Array(pairs.length), r2 = new Float32Array(pairs.length);
  for (let i = 0; i < pairs.length; i++) {
    r1[i] = out.values![(2 * i) * b.seqLen + b.lastIndex[2 * i]];
    r2[i] = out.values![(2 * i + 1) * b.seqLen + b.lastIndex[2 * i + 1]];
  }
  return { r1, r2, batch: b };
}

/** One reward-model step over a batch of preference pairs: BT loss, accumulate, clip, AdamW. */
export async function rewardStep(engine: EngineLike, args: { model: Model; pairs: PreferencePair[]; optimizer: Optimizer; config?: RewardConfig }): Promise<RewardStepStats> {
  const { model, optimizer } = args;
  checkModel(model, 'rewardStep');
  if (optimizer.model !== model) throw new Error('rewardStep: the optimizer belongs to another model');
  model.zeroGrad();
  const s = await rewardGradients(engine, args);
  const lr = optimizer.currentLr();
  const { gradNorm, clipped } = await optimizer.adamw.step(lr, optimizer.maxGradNorm, engine.threads);
  return { ...s, gradNorm, lr, clipped };
}

/**
 * The Bradley-Terry gradients of a batch, accumulated into the model's gradients (no zeroing, no optimizer step):
 * for a step that adds another loss's gradients before the update (RLP-UML's information bottleneck).
 */
export async function rewardGradients(engine: EngineLike, args: { model: Model; pairs: PreferencePair[]; config?: RewardConfig }): Promise<Omit<RewardStepStats, 'gradNorm' | 'lr' | 'clipped'>> {
  const { model, pairs } = args;
  const cfg = args.config ?? {};
  checkOptionKeys('reward config', cfg, ['microBatchSize', 'padId']);
  checkModel(model, 'rewardStep');
  if (!Array.isArray(pairs) || pairs.length === 0) throw new Error('rewardStep: empty batch of pairs');
  const y = labels(pairs);
  const micro = cfg.microBatchSize ?? pairs.length;
  checkPositiveInt('microBatchSize', micro);
  if (micro > pairs.length) throw new Error(`rewardStep: microBatchSize ${micro} is larger than the batch ${pairs.length}`);
  let loss = 0, acc = 0, margin = 0, chosen = 0, rejected = 0;
  const idx = pairs.map((_, i) => i);
  for (const rows of chunks(idx, micro)) {
    const part = rows.map((i) => pairs[i]);
    const { r1, r2, batch } = await pairRewards(engine, model, part, cfg.padId ?? 0, true);
    const bt = bradleyTerryLoss({ r1, r2, label: Float32Array.from(rows, (i) => y[i]), normalizer: pairs.length });
    const dvalues = new Float32Array(batch.batch * batch.seqLen);
    for (let k = 0; k < rows.length; k++) {
      dvalues[(2 * k) * batch.seqLen + batch.lastIndex[2 * k]] = bt.dr1[k];
      dvalues[(2 * k + 1) * batch.seqLen + batch.lastIndex[2 * k + 1]] = bt.dr2[k];
    }
    await backwardRaw(engine, model, { dvalues });
    const w = rows.length;
    loss += bt.loss;  // already divided by the whole batch
    acc += bt.accuracy * w; margin += bt.margin * w; chosen += bt.chosenMean * w; rejected += bt.rejectedMean * w;
  }
  const n = pairs.length;
  return { loss, accuracy: acc / n, margin: margin / n, 'rewards/chosen': chosen / n, 'rewards/rejected': rejected / n, pairs: n };
}

/** BT loss, accuracy and margin of a reward model on pairs, without training. */
export async function evaluateRewardModel(engine: EngineLike, model: Model, pairs: PreferencePair[], opts: { batchSize?: number; padId?: number } = {}):
  Promise<{ loss: number; accuracy: number; margin: number; pairs: number }> {
  checkModel(model, 'evaluateRewardModel');
  if (pairs.length === 0) throw new Error('evaluateRewardModel: no pairs');
  const y = labels(pairs);
  const bs = opts.batchSize ?? 16;
  checkPositiveInt('batchSize', bs);
  let loss = 0, acc = 0, margin = 0;
  const idx = pairs.map((_, i) => i);
  for (const rows of chunks(idx, bs)) {
    const { r1, r2 } = await pairRewards(engine, model, rows.map((i) => pairs[i]), opts.padId ?? 0, false);
    const bt = bradleyTerryLoss({ r1, r2, label: Float32Array.from(rows, (i) => y[i]), normalizer: pairs.length });
    loss += bt.loss; acc += bt.accuracy * rows.length; margin += bt.margin * rows.length;
  }
  return { loss, accuracy: acc / pairs.length, margin: margin / pairs.length, pairs: pairs.length };
}

/**
 * Scores prompt+response sequences with a reward model (scalar head at the last token), in batches. Rows are
 * grouped by length so padding stays small; results come back in input order.
 */
export async function scoreResponses(engine: EngineLike, model: Model, seqs: PromptResponse[], opts: { batchSize?: number; padId?: number } = {}): Promise<Float32Array> {
  checkModel(model, 'scoreResponses');
  const bs = opts.batchSize ?? 16;
  checkPositiveInt('batchSize', bs);
  const out = new Float32Array(seqs.length);
  const order = seqs.map((_, i) => i).sort((a, b) => (seqs[a].prompt.length + seqs[a].response.length) - (seqs[b].prompt.length + seqs[b].response.length) || a - b);
  for (const rows of chunks(order, bs)) {
    const b = packSequences(rows.map((i) => seqs[i]), { padId: opts.padId ?? 0, maxLen: model.config.max_position_embeddings });
    const r = await forwardRaw(engine, model, { tokens: b.tokens, batch: b.batch, seqLen: b.seqLen, train: false });
    rows.forEach((i, k) => { out[i] = r.values![k * b.seqLen + b.lastIndex[k]]; });
  }
  return out;
}
