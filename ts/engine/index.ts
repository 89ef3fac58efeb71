export { Engine, Optimizer, type EngineOptions, type ForwardResult, type StepStats, type Backend } from './engine.ts';
export { Model, AdamW, createModel, type ModelConfig, type ResolvedConfig, type ParamView, type AdamWOptions } from './model.ts';
export { packBatch, type SequenceExample, type TokenBatch } from './batch.ts';
export { learningRate, type ScheduleOptions, type ScheduleKind } from './schedule.ts';
export { saveModel, loadModel, saveOptimizer, loadOptimizer, configFromHf, configToHf } from './checkpoint.ts';
