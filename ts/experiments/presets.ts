// Every setting of `farm run` and `farm validate`, as data: one object per preset, one comment per value. The
// pipeline code reads these and nothing else, so a preset is retuned here (and a changed value reruns only
// the stages that depend on it). smoke: seconds, for tests; quick: `npm start`, minutes on 2 cores; standard:
// the paper's evaluation set with larger data; paper: AlpacaFarm's split sizes.
import type { ModelConfig } from '../engine/index.ts';
import { PRESETS as SPLIT_PRESETS, type SplitSizes } from '../data/splits.ts';
import type { SftConfig } from '../methods/sft.ts';
import type { RewardModelConfig } from '../methods/reward-model.ts';
import type { BestOfNConfig } from '../methods/best-of-n.ts';
import type { ExpertIterationConfig } from '../methods/expert-iteration.ts';
import type { PPOMethodConfig } from '../methods/ppo.ts';
import type { QuarkConfig } from '../methods/quark.ts';
import type { DPOMethodConfig } from '../methods/dpo.ts';
import type { GenerationConfig } from '../methods/common.ts';
import type { TreeBoNConfig } from '../methods/treebon.ts';
import type { RLPConfig } from '../methods/rlp.ts';

export type Architecture = Omit<ModelConfig, 'vocab_size'>;

export interface Preset {
  name: string;
  /** World seed: the farm's knowledge base and instructions (`--seed` replaces it and every other seed). */
  seed: number;
  /** Instructions per split (sft demonstrations, preference pairs, unlabeled prompts, val, eval). */
  data: SplitSizes;
  /** BPE vocabulary trained on the sft split. */
  vocabSize: number;
  model: Architecture;
  sft: SftConfig;
  /** Sampling of the two outputs per preference instruction (AlpacaFarm: temperature 1.0). */
  pairs: Partial<GenerationConfig>;
  /** Labelled pairs held out of reward-model training (its eval/accuracy), taken from the end of the preference split. */
  heldOutPairs: number;
  rewardModel: RewardModelConfig;
  /** Decoding of every evaluated output (AlpacaFarm: temperature 0.7). */
  generation: Partial<GenerationConfig>;
  bestOfN: Partial<BestOfNConfig>;
  expertIteration: Partial<ExpertIterationConfig>;
  feedme: SftConfig;
  rewardConditioning: SftConfig;
  ppo: Partial<PPOMethodConfig>;
  quark: Partial<QuarkConfig>;
  dpo: Partial<DPOMethodConfig>;
  /** TreeBoN decoding of the eval split (samples of SFT, the DPO model's implicit reward, the reward model's choice). */
  treebon: Partial<TreeBoNConfig>;
  /** RLP's samples and losses; its reward model and second PPO run take `rewardModel` and `ppo` above. */
  rlp: Omit<Partial<RLPConfig>, 'rewardModel' | 'ppo'>;
  /** `farm validate` only: the over-optimization curves. */
  overoptimization: {
    /** PPO steps of the curve runs (longer than the method's run, to see the fall). */
    ppoSteps: number;
    /** Evaluate the curve run every this many PPO steps. */
    every: number;
    /** Evaluation instructions per curve point (the first N of the eval split). */
    evalInstructions: number;
    /** n values of the best-of-n curve (one sampling pass of the largest n serves all). */
    bestOfNs: number[];
    /** The noise-free judge whose feedback trains the control curves (a single farm judge, no flips). */
    noiseFreeJudge: string;
  };
  /** Checkpoint interval of the training stages, in steps (a killed stage resumes from its last checkpoint). */
  saveSteps: number;
  /** Rough seconds per stage kind on 2 cores, only for the progress line's ETA. */
  cost: Record<string, number>;
}

const QUICK_MODEL: Architecture = {
  hidden_size: 128,           // 0.9M parameters with a 1,024-token vocabulary
  intermediate_size: 344,     // SwiGLU width ~ 8/3 x hidden, as LLaMA
  num_hidden_layers: 4,
  num_attention_heads: 4,     // head size 32
  num_key_value_heads: 4,     // no grouped-query attention at this size
  max_position_embeddings: 256, // prompts are ~60 tokens, answers < 100
  tie_word_embeddings: true,  // halves the embedding parameters of a tiny model
};

const quick: Preset = {
  name: 'quick',
  seed: 1,                      // world seed 1 (the README's figures)
  // AlpacaFarm's 10k SFT demonstrations and half its 20k preference pairs: fewer pairs leave the reward model
  // near chance on within-prompt quality (5k: 63% vs gold; 10k: 66%, notes 2026-12); eval: the paper's 805
  data: { ...SPLIT_PRESETS.quick },
  vocabSize: 1024,              // enough for the farm's small vocabulary
  model: QUICK_MODEL,
  sft: { epochs: 3, lr: 3e-3, batchSize: 16, warmupRatio: 0.03 }, // AlpacaFarm's 3 epochs; 1.5k x 6 left the policy at a format floor
  pairs: { temperature: 1, topP: 1, maxNewTokens: 96 }, // AlpacaFarm samples preference pairs at T 1.0
  heldOutPairs: 500,            // reward model eval/accuracy on 500 held-out labelled pairs, as AlpacaFarm
  rewardModel: { lr: 5e-4, epochs: 1, batchSize: 16 }, // one epoch: a second one fits the pool's flips (gold agreement 0.649 -> 0.63)
  generation: { temperature: 0.7, topP: 1, maxNewTokens: 96 }, // AlpacaFarm evaluates outputs at T 0.7
  bestOfN: { n: 16, temperature: 1, topP: 0.9, maxNewTokens: 96 }, // AlpacaFarm's best-of-16, T 1.0, top-p 0.9
  expertIteration: {
    rounds: 1,                  // AlpacaFarm runs one round
    bestOfN: { n: 16, temperature: 1, topP: 0.9, maxNewTokens: 96 }, // its best-of-16 on the unlabeled split
    sft: { lr: 1e-3, epochs: 2, batchSize: 16 }, // SFT from the SFT model on the 1k choices
  },
  feedme: { lr: 1e-3, epochs: 1, batchSize: 16 },            // SFT on ~9.5k preferred outputs
  rewardConditioning: { lr: 1e-3, epochs: 2, batchSize: 16 }, // two examples per pair (19k records)
  ppo: {
    steps: 40,                  // AlpacaFarm's PPO peaks after 20-80 steps
    rolloutBatchSize: 64,       // 512 in the paper; 64 keeps a step ~2 s here
    learningRate: 1e-4,         // farm-size models barely move at the paper's 1e-5 (notes 2026-12)
    initKlCoef: 0.05,           // 0.0067 lets a farm model drift to 17 nats; 0.05 bounds it
    maxNewTokens: 96,
    warmupSteps: 5,
  },
  quark: {
    steps: 40,                  // as PPO
    rolloutBatchSize: 64,       // samples added to the pool per step
    batchSize: 64,              // sequences per gradient step
    gradientStepsPerStep: 1,    // AlpacaFarm: one gradient step per rollout
    learningRate: 1e-4,         // as PPO at this size
    klCoef: 0.05,               // AlpacaFarm's β
    maxNewTokens: 96,
    warmupSteps: 5,
  },
  dpo: { lr: 3e-4, batchSize: 16, epochs: 1, beta: 0.1 }, // DPO_FARM; β as the paper; one epoch over 10k pairs
  treebon: { n: 16, branchingFactor: 4, depth: 4, maxNewTokens: 96, temperature: 1, topP: 0.9 }, // best-of-16's N and decoding; 4 children, 4 layers of 24 tokens
  rlp: { n: 10, temperature: 1, topP: 1, maxNewTokens: 96, maxInstructions: 500, lambda: 0.5, minConfidence: 0.5 }, // RLP's n 10, λ 0.5, confidence 0.5; 500 of the 1k unlabeled bound the sampling
  saveSteps: 20,                // a checkpoint every 20 steps (~20 s of SFT here)
  overoptimization: {
    ppoSteps: 80,               // twice the method's run, past the paper's peak
    every: 10,                  // 8 points
    evalInstructions: 200,      // per point; 805 x 8 points would dominate the run
    bestOfNs: [1, 2, 4, 8, 16, 32, 64],
    noiseFreeJudge: 'gpt4-careful', // the pool's most accurate judge, alone, without flips
  },
  cost: { data: 3, tokenizer: 2, sft: 60, pairs: 8, annotate: 1, 'reward-model': 15, outputs: 8, 'best-of-n': 40, 'expert-iteration': 70,
    feedme: 15, 'reward-conditioning': 25, ppo: 100, quark: 90, dpo: 30, evaluate: 3, agreement: 5, 'rm-agreement': 10, 'overopt-ppo': 300, 'overopt-bon': 60,
    treebon: 90, 'rlp-samples': 40, rlp: 130 },
};

const smoke: Preset = {
  ...quick,
  name: 'smoke',
  data: { sft: 200, preference: 48, unlabeled: 24, val: 12, eval: 16 },
  vocabSize: 400,
  model: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, max_position_embeddings: 256, tie_word_embeddings: true },
  sft: { epochs: 1, lr: 5e-3, batchSize: 16 },
  pairs: { temperature: 1, topP: 1, maxNewTokens: 16 },
  heldOutPairs: 8,
  rewardModel: { lr: 1e-3, epochs: 1, batchSize: 8 },
  generation: { temperature: 0.7, topP: 1, maxNewTokens: 16 },
  bestOfN: { n: 2, temperature: 1, topP: 0.9, maxNewTokens: 16 },
  expertIteration: { rounds: 1, bestOfN: { n: 2, temperature: 1, topP: 0.9, maxNewTokens: 16 }, sft: { lr: 1e-3, epochs: 1, batchSize: 8 } },
  feedme: { lr: 1e-3, epochs: 1, batchSize: 8 },
  rewardConditioning: { lr: 1e-3, epochs: 1, batchSize: 8 },
  ppo: { steps: 2, rolloutBatchSize: 8, learningRate: 1e-4, initKlCoef: 0.05, maxNewTokens: 16, warmupSteps: 0 },
  quark: { steps: 2, rolloutBatchSize: 8, batchSize: 8, learningRate: 1e-4, klCoef: 0.05, maxNewTokens: 16, warmupSteps: 0 },
  dpo: { lr: 3e-4, batchSize: 8, epochs: 1, beta: 0.1 },
  treebon: { n: 4, branchingFactor: 2, depth: 2, maxNewTokens: 16, temperature: 1, topP: 0.9 },
  rlp: { n: 4, temperature: 1, topP: 1, maxNewTokens: 16, maxInstructions: null, umlBatchSize: 4, lambda: 0.5, minConfidence: 0.5 },
  saveSteps: 2,                 // the resume tests kill mid-stage
  overoptimization: { ppoSteps: 4, every: 2, evalInstructions: 8, bestOfNs: [1, 2, 4], noiseFreeJudge: 'gpt4-careful' },
  cost: Object.fromEntries(Object.keys(quick.cost).map((k) => [k, 1])),
};

const standard: Preset = {
  ...quick,
  name: 'standard',
  data: { ...SPLIT_PRESETS.standard }, // the paper's SFT and preference splits
  vocabSize: 1536,
  model: { ...QUICK_MODEL, hidden_size: 192, intermediate_size: 512, num_attention_heads: 6, num_key_value_heads: 6 }, // 2.2M parameters
  sft: { epochs: 3, lr: 2e-3, batchSize: 32, warmupRatio: 0.03 },
  heldOutPairs: 500,           // AlpacaFarm holds out 500
  rewardModel: { lr: 5e-4, epochs: 1, batchSize: 32 },
  ppo: { ...quick.ppo, steps: 60, rolloutBatchSize: 128 },
  quark: { ...quick.quark, steps: 60, rolloutBatchSize: 128, batchSize: 128 },
  dpo: { lr: 2e-4, batchSize: 32, epochs: 2, beta: 0.1 },
  rlp: { ...quick.rlp, maxInstructions: 2000 },  // 20k samples of the 5k unlabeled
  overoptimization: { ...quick.overoptimization, ppoSteps: 120, every: 15, evalInstructions: 400 },
  cost: Object.fromEntries(Object.entries(quick.cost).map(([k, v]) => [k, v * 4])),
};

const paper: Preset = {
  ...standard,
  name: 'paper',
  data: { ...SPLIT_PRESETS.paper }, // AlpacaFarm's splits
  vocabSize: 2048,
  model: { ...QUICK_MODEL, hidden_size: 256, intermediate_size: 683, num_attention_heads: 4, num_key_value_heads: 4 }, // 3.4M parameters
  sft: { epochs: 3, lr: 1e-3, batchSize: 32, warmupRatio: 0.03 }, // AlpacaFarm's 3 epochs
  ppo: { ...quick.ppo, steps: 80, rolloutBatchSize: 512 },   // AlpacaFarm's 512 rollouts per step
  quark: { ...quick.quark, steps: 80, rolloutBatchSize: 512, batchSize: 256 }, // AlpacaFarm's 512 / 256
  dpo: { lr: 1e-4, batchSize: 64, epochs: 2, beta: 0.1 },    // AlpacaFarm's batch 64, 2 epochs
  rlp: { ...quick.rlp, maxInstructions: null },              // RLP samples every unlabeled instruction (20k x 10)
  cost: Object.fromEntries(Object.entries(quick.cost).map(([k, v]) => [k, v * 20])),
};

export const PRESETS: Readonly<Record<string, Preset>> = Object.freeze({ smoke, quick, standard, paper });

/** Model sizes for `farm sft --architecture NAME` (a new model). */
export const ARCHITECTURES: Readonly<Record<string, Architecture>> = Object.freeze({
  smoke: smoke.model, quick: quick.model, standard: standard.model, paper: paper.model,
});

export function presetByName(name: string, allowed: readonly string[] = Object.keys(PRESETS)): Preset {
  if (!allowed.includes(name) || !PRESETS[name]) throw new Error(`unknown preset "${name}"; known: ${allowed.join(', ')}`);
  return PRESETS[name];
}
