export { Engine, type EngineOptions, type ForwardResult, type StepStats, type Backend, type CudaInfo, type DeviceInfo } from './engine.ts';
export { Optimizer, type OptimizerOptions } from './optimizer.ts';
export { Model, AdamW, createModel, type ModelConfig, type ResolvedConfig, type ParamView, type AdamWOptions, type ModelBackend } from './model.ts';
export { packBatch, type SequenceExample, type TokenBatch } from './batch.ts';
export { learningRate, type ScheduleOptions, type ScheduleKind } from './schedule.ts';
export { saveModel, loadModel, saveOptimizer, loadOptimizer, configFromHf, configToHf } from './checkpoint.ts';
export {
  generate, logprobs, sampleStream, GenerationSession, type GenerateOptions, type GenerateProgress, type Sample, type FinishReason, type ScoredResponse,
  type SessionSampleOptions, type SessionSampleResult,
} from './generate.ts';
export { ppoStep, PPO_DEFAULTS, resolvePPOConfig, defaultPPOOptimizer, defaultKLController, type PPOConfig, type PPOStats, type PPOStepArgs, type Rollouts } from './ppo.ts';
export { FixedKLController, AdaptiveKLController, klControllerFromState, type KLController, type KLControllerState } from './kl.ts';
export { rewardStep, rewardGradients, evaluateRewardModel, scoreResponses, type PreferencePair, type RewardConfig, type RewardStepStats } from './reward.ts';
export { dpoStep, precomputeReferenceLogps, sequenceLogps, DPO_DEFAULTS, type DPOPair, type DPOConfig, type DPOStepStats } from './dpo.ts';
export {
  gae, whiten, moments, klPenalizedRewards, ppoLoss, bradleyTerryLoss, dpoLoss, sequenceLogRatio, packSequences, targetsFromMask,
  type Mask, type KLEstimator, type DPOLossType, type SequenceBatch, type PromptResponse,
} from './rl.ts';
