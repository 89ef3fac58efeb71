// alpacafarm-ts: each area is also a subpath (alpacafarm-ts/engine, /tokenizer, /data, /world, /feedback, /eval,
// /methods, /experiments); the root re-exports the names most programs start from, and each area whole.
export { Engine, Model, Optimizer, type EngineOptions, type ModelConfig, type OptimizerOptions, type GenerateOptions, type Sample } from './engine/index.ts';
export { Tokenizer, trainBpe } from './tokenizer/index.ts';
export { createWorld, type World } from './world/index.ts';
export { createAnnotator, type Annotator, type Annotation, type Pair } from './feedback/index.ts';
export { evaluateModel, Leaderboard } from './eval/index.ts';
export { sft, trainRewardModel, bestOfN, expertIteration, ppo, dpo, quark, feedme, rewardConditioning } from './methods/index.ts';
export { runFarm, runValidate } from './experiments/index.ts';

export * as engine from './engine/index.ts';
export * as tokenizer from './tokenizer/index.ts';
export * as data from './data/index.ts';
export * as world from './world/index.ts';
export * as feedback from './feedback/index.ts';
export * as evaluation from './eval/index.ts';
export * as methods from './methods/index.ts';
export * as experiments from './experiments/index.ts';
