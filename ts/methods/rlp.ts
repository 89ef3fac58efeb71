// RLP, reward learning on policy (Lang et al., 2024): after a first PPO run, the reward model is retrained with
// outputs of the PPO policy, then PPO runs again from the SFT model against it.
// - Samples: n = 10 outputs per unlabeled instruction from the PPO policy.
// - RLP-UML (unsupervised multi-view learning): the reward model's loss gains λ · L_M, a multi-view information
//   bottleneck on its final hidden state (multiview-ib.ts) over two outputs of one instruction; the gradients
//   reach the backbone through the engine (forward({hidden}), backward({dhidden})).
// - RLP-SPG (synthetic preference generation): the n outputs are grouped by semantic equivalence; an
//   instruction whose largest group holds at least half of them gives a synthetic pair, the group's
//   highest-reward output over a random output outside it; the reward model trains on human + synthetic pairs.
//
// RLP's code was never released; the choices its paper leaves open, as made here (docs/methods.md):
// - The retrained reward model starts, like the first, from the SFT weights with a zero head, and trains with
//   the first one's settings on the same human pairs (plus the synthetic ones for SPG).
// - Samples at temperature 1, no truncation (the PPO policy's own distribution, as its rollouts).
// - UML views: per reward-model step, `umlBatchSize` instructions in a seeded order, two distinct outputs of
//   each at random; the hidden state is read where the reward head reads (the last token); instructions with
//   fewer than two distinct outputs give no view pair.
// - SPG: equivalence is a pluggable function (default: equal after lower-casing, stripping punctuation and
//   collapsing whitespace; the farm uses its checker, ts/experiments). Outputs join the first group whose
//   first member is equivalent to them. A tie for the largest group goes to the group holding the
//   highest-reward output. Rewards come from the reward model the PPO run used. An instruction whose outputs are
//   all equivalent has no output outside the group and gives no pair.
import { Model, packSequences, type Engine } from '../engine/index.ts';
import type { AlpacaExample } from '../data/template.ts';
import {
  batches, ConfigError, encodePrompt, encodeResponse, padIdOf, resolveConfig, sampleCandidates, scalarModelFrom, seededUniform, shuffled, toRewardFn,
  type Candidate, type MethodTokenizer, type RewardSource,
} from './common.ts';
import { gaussian, MultiViewIB } from './multiview-ib.ts';
import { REWARD_MODEL_DEFAULTS, trainRewardModel, type PreferenceRecord, type RewardAuxiliary, type RewardModelConfig, type RewardModelLog, type RewardModelResult } from './reward-model.ts';
import type { PPOMethodConfig } from './ppo.ts';
import type { CheckpointOptions } from './checkpoint.ts';

export type RLPVariant = 'uml' | 'spg';
export const RLP_VARIANTS: readonly RLPVariant[] = ['uml', 'spg'];

export interface RLPConfig {
  /** n, outputs sampled per unlabeled instruction from the PPO policy (RLP: 10). */
  n: number;
  /** Sampling temperature of those outputs. */
  temperature: number;
  /** Nucleus p of those outputs (1 = off). */
  topP: number;
  /** Cap on new tokens per output. */
  maxNewTokens: number;
  /** Instructions sampled together (memory: x n sequences). */
  sampleBatchSize: number;
  /** Unlabeled instructions used (the first k; null: all). */
  maxInstructions: number | null;
  /** λ, weight of the multi-view loss L_M in the reward model's loss (RLP-UML: 0.5). */
  lambda: number;
  /** β, weight of the symmetric KL in L_M. */
  beta: number;
  /** Latent dimensions of the Gaussian encoder. */
  latentDim: number;
  /** Width of the encoder's and critic's MLPs. */
  encoderHidden: number;
  /** Adam learning rate of the encoder and critic. */
  encoderLr: number;
  /** Instructions (view pairs) per reward-model step for L_M. */
  umlBatchSize: number;
  /** RLP-SPG: keep instructions whose largest equivalence group holds at least this fraction of the n outputs (0.5). */
  minConfidence: number;
  /** Seed of the samples, the view pairs, the encoder and the rejected outputs. */
  seed: number;
  /** The retrained reward model's settings (default: reward-model.ts's). */
  rewardModel: RewardModelConfig;
  /** The second PPO run's settings (default: ppo.ts's). */
  ppo: Partial<PPOMethodConfig>;
}

export const RLP_DEFAULTS: Readonly<RLPConfig> = Object.freeze({
  n: 10, temperature: 1, topP: 1, maxNewTokens: 300, sampleBatchSize: 32, maxInstructions: null,
  lambda: 0.5, beta: 1, latentDim: 32, encoderHidden: 64, encoderLr: 1e-3, umlBatchSize: 16,
  minConfidence: 0.5, seed: 1, rewardModel: {}, ppo: {},
});

export const RLP_HELP: Record<Exclude<keyof RLPConfig, 'rewardModel' | 'ppo'>, string> = {
  n: 'outputs sampled per unlabeled instruction from the PPO policy (RLP 10)',
  temperature: 'temperature of those samples',
  topP: 'nucleus p of those samples (1 = off)',
  maxNewTokens: 'cap on new tokens per sample',
  sampleBatchSize: 'instructions sampled together',
  maxInstructions: 'unlabeled instructions used, the first k (null: all)',
  lambda: 'λ, weight of the multi-view loss (RLP-UML 0.5)',
  beta: 'β, weight of the symmetric KL in the multi-view loss',
  latentDim: 'latent dimensions of the Gaussian encoder',
  encoderHidden: 'width of the encoder and critic MLPs',
  encoderLr: 'Adam learning rate of the encoder and critic',
  umlBatchSize: 'view pairs (instructions) per reward-model step',
  minConfidence: 'RLP-SPG: minimum share of the largest equivalence group (0.5)',
  seed: 'seed of the samples, view pairs, encoder and rejected outputs',
};

/** Every RLP setting, defaults filled in and checked. */
export function resolveRlpConfig(config: Partial<RLPConfig> = {}): RLPConfig {
  const c = resolveConfig('RLP', RLP_DEFAULTS as RLPConfig, config, {
    int: [['n', 2], ['maxNewTokens', 1], ['sampleBatchSize', 1], ['latentDim', 1], ['encoderHidden', 1], ['umlBatchSize', 2], ['seed', 0]],
    range: [['temperature', 0, Infinity], ['topP', Number.MIN_VALUE, 1], ['lambda', 0, Infinity], ['beta', 0, Infinity], ['encoderLr', 0, Infinity], ['minConfidence', 0, 1]],
  });
  if (c.maxInstructions !== null && !(Number.isInteger(c.maxInstructions) && c.maxInstructions >= 1))
    throw new ConfigError(`RLP config maxInstructions must be an integer >= 1 or null, got ${c.maxInstructions}`);
  for (const k of ['rewardModel', 'ppo'] as const)
    if (!c[k] || typeof c[k] !== 'object' || Array.isArray(c[k])) throw new ConfigError(`RLP config ${k} must be an object of settings`);
  return c;
}

/** One unlabeled instruction and the policy's outputs for it (samples.json). */
export interface RLPSample { instruction: string; input: string; outputs: string[] }

/** n outputs per instruction from the (PPO) policy; sample j of instruction i from the RNG stream (seed, i, j). */
export async function sampleRlpOutputs(engine: Engine, policy: Model, tok: MethodTokenizer, records: readonly AlpacaExample[],
  config: Partial<RLPConfig> = {}, onProgress?: (done: number, total: number) => void): Promise<RLPSample[]> {
  const c = resolveRlpConfig(config);
  const recs = c.maxInstructions === null ? records : records.slice(0, c.maxInstructions);
  const P = policy.config.max_position_embeddings;
  const plain = recs.map((r) => encodePrompt(tok, r));
  const out: RLPSample[] = recs.map((r) => ({ instruction: r.instruction, input: r.input ?? '', outputs: [] }));
  const fits = recs.map((_, i) => i).filter((i) => plain[i].length < P);
  for (const rows of batches(fits, c.sampleBatchSize)) {
    const { candidates } = await sampleCandidates(engine, policy, tok, recs, rows, rows.map((i) => plain[i]), rows,
      { n: c.n, temperature: c.temperature, topP: c.topP, topK: 0, maxNewTokens: c.maxNewTokens, seed: c.seed });
    rows.forEach((i, k) => { out[i].outputs = candidates[k].map((x) => x.output); });
    onProgress?.(rows[rows.length - 1] + 1, recs.length);
  }
  return out.filter((s) => s.outputs.length > 0);
}

// ---- RLP-SPG ----

/** Whether two outputs for an instruction mean the same (RLP-SPG's semantic equivalence). */
export type Equivalence = (instruction: string, input: string, a: string, b: string) => boolean;

const canonical = (s: string) => s.toLowerCase().replace(/[^\p{L}\p{N}\s]+/gu, ' ').replace(/\s+/g, ' ').trim();
/** Equal after lower-casing, dropping punctuation and collapsing whitespace (the default where no checker exists). */
export const normalizedTextEquivalence: Equivalence = (_i, _x, a, b) => canonical(a) === canonical(b);

/** Groups of output indices: each output joins the first group whose first member is equivalent to it. */
export function groupOutputs(outputs: readonly string[], same: (a: string, b: string) => boolean): number[][] {
  const groups: number[][] = [];
  outputs.forEach((o, i) => {
    const g = groups.find((x) => same(outputs[x[0]], o));
    if (g) g.push(i); else groups.push([i]);
  });
  return groups;
}

export interface SpgChoice {
  groups: number[][];
  /** Size of the largest group / n. */
  confidence: number;
  /** Index of the chosen output (highest reward in the largest group), or null when the instruction is left out. */
  chosen: number | null;
  rejected: number | null;
  /** Why an instruction gives no pair. */
  skipped?: 'low-confidence' | 'all-equivalent';
}

/** RLP-SPG's rules on one instruction's outputs, their rewards and equivalence groups (see the file comment). */
export function spgChoose(rewards: ArrayLike<number>, groups: number[][], minConfidence: number, uniform: () => number): SpgChoice {
  const n = rewards.length;
  if (groups.flat().length !== n) throw new Error(`spgChoose: groups cover ${groups.flat().length} outputs, ${n} rewards given`);
  const best = (g: number[]) => g.reduce((b, i) => (rewards[i] > rewards[b] ? i : b), g[0]);
  let top = groups[0];
  for (const g of groups) if (g.length > top.length || (g.length === top.length && rewards[best(g)] > rewards[best(top)])) top = g;
  const confidence = top.length / n;
  if (confidence < minConfidence) return { groups, confidence, chosen: null, rejected: null, skipped: 'low-confidence' };
  const outside = Array.from({ length: n }, (_, i) => i).filter((i) => !top.includes(i));
  if (outside.length === 0) return { groups, confidence, chosen: null, rejected: null, skipped: 'all-equivalent' };
  return { groups, confidence, chosen: best(top), rejected: outside[Math.min(outside.length - 1, Math.floor(uniform() * outside.length))] };
}

export interface SpgStats {
  'spg/instructions': number;
  'spg/pairs': number;
  'spg/low_confidence': number;
  'spg/all_equivalent': number;
  /** Mean confidence (largest group / n) over the instructions. */
  'spg/confidence_mean': number;
  'spg/groups_mean': number;
  'spg/reward_margin': number;
}

/** Synthetic preference pairs (chosen = output_1, preference 1) from the samples, their rewards and an equivalence. */
export function syntheticPreferences(samples: readonly RLPSample[], rewards: readonly ArrayLike<number>[], equivalence: Equivalence,
  opts: { minConfidence: number; seed: number }): { pairs: PreferenceRecord[]; stats: SpgStats } {
  if (rewards.length !== samples.length) throw new Error(`syntheticPreferences: ${rewards.length} reward lists for ${samples.length} instructions`);
  const pairs: PreferenceRecord[] = [];
  let low = 0, all = 0, conf = 0, groupsN = 0, margin = 0;
  samples.forEach((s, i) => {
    const groups = groupOutputs(s.outputs, (a, b) => equivalence(s.instruction, s.input, a, b));
    const c = spgChoose(rewards[i], groups, opts.minConfidence, seededUniform(opts.seed, 4241, i));
    conf += c.confidence; groupsN += groups.length;
    if (c.skipped === 'low-confidence') low++;
    else if (c.skipped === 'all-equivalent') all++;
    else {
      pairs.push({ instruction: s.instruction, input: s.input, output_1: s.outputs[c.chosen!], output_2: s.outputs[c.rejected!], preference: 1 });
      margin += rewards[i][c.chosen!] - rewards[i][c.rejected!];
    }
  });
  const N = Math.max(1, samples.length);
  return { pairs, stats: { 'spg/instructions': samples.length, 'spg/pairs': pairs.length, 'spg/low_confidence': low, 'spg/all_equivalent': all,
    'spg/confidence_mean': conf / N, 'spg/groups_mean': groupsN / N, 'spg/reward_margin': pairs.length ? margin / pairs.length : 0 } };
}

/** Rewards of every sample's outputs (the reward model the PPO run used), per instruction. */
export async function rewardSamples(engine: Engine, reward: RewardSource, tok: MethodTokenizer, samples: readonly RLPSample[], batchSize = 32): Promise<Float32Array[]> {
  const fn = toRewardFn(engine, reward, tok, { batchSize });
  const P = reward instanceof Model ? reward.config.max_position_embeddings : Infinity;
  const out: Float32Array[] = [];
  for (const part of batches(samples.map((_, i) => i), 64)) {
    const cands: Candidate[] = part.flatMap((i) => {
      const s = samples[i], prompt = encodePrompt(tok, s);
      // a re-encoded output may be a token longer than what was sampled: cut to the reward model's context
      return s.outputs.map((o) => ({ instruction: s.instruction, input: s.input, prompt, response: encodeResponse(tok, o).slice(0, Math.max(1, P - prompt.length)), output: o, record: i }));
    });
    const r = await fn(cands);
    let at = 0;
    for (const i of part) { out.push(r.slice(at, at + samples[i].outputs.length)); at += samples[i].outputs.length; }
  }
  return out;
}

// ---- RLP-UML ----

/**
 * The multi-view loss as a reward-model auxiliary: per step, view pairs of `umlBatchSize` instructions, the
 * reward model's hidden states at their last tokens, λ · L_M's gradient back into the model (engine.backward
 * with dhidden) and into the encoder and critic (their Adam step after the model's update).
 */
export function umlAuxiliary(engine: Engine, rm: Model, tok: MethodTokenizer, samples: readonly RLPSample[], config: Partial<RLPConfig> = {}):
  RewardAuxiliary & { ib: MultiViewIB; usable: number; loss(step: number): Promise<number> } {
  const c = resolveRlpConfig(config);
  const C = rm.config.hidden_size, P = rm.config.max_position_embeddings, padId = padIdOf(tok);
  // instructions with at least two distinct outputs, each output encoded once (cut to the context)
  const views = samples.map((s) => {
    const prompt = encodePrompt(tok, s);
    const distinct = [...new Set(s.outputs)];
    return { prompt, responses: prompt.length < P - 1 ? distinct.map((o) => encodeResponse(tok, o).slice(0, P - prompt.length)) : [] };
  }).filter((v) => v.responses.length >= 2);
  if (views.length < 2) throw new ConfigError(`RLP-UML: ${views.length} instructions have two distinct outputs; the multi-view loss needs at least 2`);
  const B = Math.min(c.umlBatchSize, views.length), D = c.latentDim;
  const ib = new MultiViewIB(C, { latentDim: D, hiddenDim: c.encoderHidden, beta: c.beta, lr: c.encoderLr, seed: c.seed });
  const pick = (step: number) => {
    const rows: number[] = [];
    for (let k = 0; k < B; k++) {
      const p = (step - 1) * B + k, epoch = Math.floor(p / views.length);
      rows.push(shuffled(views.length, c.seed + 7 * epoch + 1)[p % views.length]);
    }
    return rows;
  };
  // step's view pairs: their packed sequences, the hidden states at the last tokens, the encoder noise
  const viewsOf = async (step: number, train: boolean) => {
    const rows = pick(step), u = seededUniform(c.seed, 9173, step);
    const pairs = rows.map((r) => {
      const m = views[r].responses.length, i = Math.floor(u() * m);
      let j = Math.floor(u() * (m - 1));
      if (j >= i) j++;
      return [i, j];
    });
    const seqs = [...rows.map((r, k) => ({ prompt: views[r].prompt, response: views[r].responses[pairs[k][0]] })),
      ...rows.map((r, k) => ({ prompt: views[r].prompt, response: views[r].responses[pairs[k][1]] }))];
    const b = packSequences(seqs, { padId, maxLen: P });
    const f = await engine.forward(rm, b.tokens, { batch: b.batch, train, hidden: true, logits: false });
    const h1 = new Float64Array(B * C), h2 = new Float64Array(B * C);
    for (let k = 0; k < B; k++) {
      h1.set(f.hidden!.subarray((k * b.seqLen + b.lastIndex[k]) * C, (k * b.seqLen + b.lastIndex[k] + 1) * C), k * C);
      const r2 = B + k;
      h2.set(f.hidden!.subarray((r2 * b.seqLen + b.lastIndex[r2]) * C, (r2 * b.seqLen + b.lastIndex[r2] + 1) * C), k * C);
    }
    return { b, h1, h2, e1: gaussian(B * D, c.seed, 31337, step, 1), e2: gaussian(B * D, c.seed, 31337, step, 2) };
  };
  return {
    ib,
    usable: views.length,
    /** λ · L_M of a step's views, without gradients (finite-difference checks). */
    async loss(step) {
      const v = await viewsOf(step, false);
      return c.lambda * ib.loss(v.h1, v.h2, v.e1, v.e2).loss;
    },
    async gradients(step) {
      const { b, h1, h2, e1, e2 } = await viewsOf(step, true);
      ib.zeroGrad();
      const r = ib.forwardBackward(h1, h2, e1, e2, c.lambda);
      const dhidden = new Float32Array(b.batch * b.seqLen * C);
      for (let k = 0; k < B; k++) {
        dhidden.set(r.dh1.subarray(k * C, (k + 1) * C), (k * b.seqLen + b.lastIndex[k]) * C);
        const r2 = B + k;
        dhidden.set(r.dh2.subarray(k * C, (k + 1) * C), (r2 * b.seqLen + b.lastIndex[r2]) * C);
      }
      await engine.backward(rm, { dhidden });
      return { 'uml/loss': r.loss, 'uml/mi_jsd': r.mi, 'uml/skl': r.skl };
    },
    afterStep() { ib.step(); },
    state: () => ib.state(),
    restore: (s) => ib.restore(s as ReturnType<MultiViewIB['state']>),
  };
}

export interface RlpRewardModelArgs {
  variant: RLPVariant;
  /** The model the new reward model starts from (the SFT policy; a zero scalar head is added). */
  init: Model;
  tokenizer: MethodTokenizer;
  /** The human (or simulated) preference pairs the first reward model learned from. */
  preferences: PreferenceRecord[];
  evalPreferences?: PreferenceRecord[];
  samples: readonly RLPSample[];
  /** RLP-SPG: the reward that ranks a group's members (the reward model the PPO run used). */
  reward?: RewardSource;
  /** RLP-SPG: semantic equivalence of two outputs (default: normalizedTextEquivalence). */
  equivalence?: Equivalence;
  config?: Partial<RLPConfig>;
  checkpoint?: CheckpointOptions;
  onStep?: (log: RewardModelLog) => void | boolean | Promise<void | boolean>;
}

export interface RlpRewardModelResult {
  model: Model;
  training: RewardModelResult;
  /** RLP-SPG: the synthetic pairs and their statistics. */
  synthetic?: PreferenceRecord[];
  spg?: SpgStats;
  /** RLP-UML: instructions that gave view pairs. */
  umlInstructions?: number;
}

/** RLP's reward model (either variant), trained from `init`'s weights. */
export async function rlpRewardModel(engine: Engine, a: RlpRewardModelArgs): Promise<RlpRewardModelResult> {
  const c = resolveRlpConfig(a.config);
  if (!RLP_VARIANTS.includes(a.variant)) throw new ConfigError(`RLP variant must be uml or spg, got ${JSON.stringify(a.variant)}`);
  const rmConfig = { ...REWARD_MODEL_DEFAULTS, seed: c.seed, ...c.rewardModel };
  const model = scalarModelFrom(engine, a.init);
  const hooks = { evalRecords: a.evalPreferences, checkpoint: a.checkpoint, onStep: a.onStep };
  if (a.variant === 'spg') {
    if (!a.reward) throw new ConfigError('RLP-SPG needs the reward model the PPO run used, to pick the best output of a group');
    const rewards = await rewardSamples(engine, a.reward, a.tokenizer, a.samples);
    const { pairs, stats } = syntheticPreferences(a.samples, rewards, a.equivalence ?? normalizedTextEquivalence, { minConfidence: c.minConfidence, seed: c.seed });
    const training = await trainRewardModel(engine, model, a.tokenizer, [...a.preferences, ...pairs], rmConfig, hooks);
    return { model, training, synthetic: pairs, spg: stats };
  }
  const aux = umlAuxiliary(engine, model, a.tokenizer, a.samples, c);
  const training = await trainRewardModel(engine, model, a.tokenizer, a.preferences, rmConfig, { ...hooks, auxiliary: aux });
  return { model, training, umlInstructions: aux.usable };
}
