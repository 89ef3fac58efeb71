// The engine facade: one object that owns the backend choice, threads and seed, and runs native work
// off the event loop. Methods (SFT, PPO, DPO, ...) talk to models only through it.
import { cpus } from 'node:os';
import { native } from './native.ts';
import { createModel, Model, type ModelConfig } from './model.ts';
import { packBatch, type SequenceExample, type TokenBatch } from './batch.ts';
import { Optimizer, type OptimizerOptions } from './optimizer.ts';
import { generate, logprobs, GenerationSession, type GenerateOptions, type Sample, type ScoredResponse } from './generate.ts';
import { ppoStep, type PPOStats, type PPOStepArgs } from './ppo.ts';
import { rewardStep, scoreResponses, type PreferencePair, type RewardConfig, type RewardStepStats } from './reward.ts';
import { dpoStep, type DPOConfig, type DPOPair, type DPOStepStats } from './dpo.ts';
import type { PromptResponse } from './rl.ts';
import * as ckpt from './checkpoint.ts';
import * as prof from './profile.ts';
import { checkOptionKeys } from './options.ts';

export type Backend = 'auto' | 'cpu' | 'cuda';
export interface EngineOptions {
  /**
   * Where models live and kernels run: 'cpu', 'cuda' (an Error says why when it cannot run here), or 'auto'
   * (default): the environment's FARM_BACKEND (cpu, cuda) when set, else CUDA when the addon was built with it
   * and a GPU is visible, else CPU.
   */
  backend?: Backend;
  /**
   * GEMM precision on the CUDA backend: 'tf32' (tensor cores, fp32 accumulation; the default) or 'fp32'
   * (exact, for parity with the CPU). Process-wide; FARM_CUDA_GEMM sets the start-up value.
   */
  cudaGemm?: 'tf32' | 'fp32';
  /** Threads for native kernels (default 2). */
  threads?: number;
  /** Seed for model initialization and sampling. */
  seed?: number;
  /**
   * Record every native kernel call (process-wide) for engine.profile(); 'trace' also keeps the events for
   * engine.writeTrace(). FARM_PROFILE=1 turns it on and prints the table at exit; FARM_TRACE=file.json
   * writes a Chrome trace at exit.
   */
  profile?: boolean | 'trace';
}

export interface ForwardResult {
  batch: number;
  seqLen: number;
  /** [batch*seqLen, vocab] when asked for (default for forward()). */
  logits?: Float32Array;
  /** Log-prob of each target token [batch*seqLen] (0 where the target is -1). */
  logp?: Float32Array;
  entropy?: Float32Array;
  /** Scalar head output per position. */
  values?: Float32Array;
  /** Final hidden state [batch*seqLen, hidden_size] (after the final norm: what the heads read), when asked for. */
  hidden?: Float32Array;
}

/** What the CUDA backend of this addon can do here (native cudaInfo()). */
export interface CudaInfo {
  compiled: boolean;
  /** The CPU emulation build (tests only); never chosen by backend 'auto'. */
  emulated: boolean;
  available: boolean;
  /** Why not, when unavailable. */
  reason?: string;
  gemm?: 'tf32' | 'fp32';
  device?: {
    index: number; name: string; computeCapability: string; memoryBytes: number; multiprocessors: number; clockMHz: number;
    memoryClockMHz: number; memoryBusBits: number; driverVersion: number; runtimeVersion: number;
  };
}

/** The device an Engine runs on. */
export interface DeviceInfo {
  backend: 'cpu' | 'cuda';
  name: string;
  /** CUDA: compute capability, memory, multiprocessors, GEMM precision. */
  computeCapability?: string;
  memoryBytes?: number;
  multiprocessors?: number;
  gemm?: string;
  emulated?: boolean;
}

export interface StepStats { loss: number; gradNorm: number; tokens: number; lr: number; clipped: boolean }

export { Optimizer, type OptimizerOptions };

export class Engine {
  /** Where this engine's models live and run. */
  readonly backend: 'cpu' | 'cuda';
  readonly threads: number;
  readonly seed: number;
  /** The device: the GPU's name, compute capability and memory on CUDA; the CPU model otherwise. */
  readonly device: DeviceInfo;
  private constructor(backend: 'cpu' | 'cuda', threads: number, seed: number, device: DeviceInfo) {
    this.backend = backend;
    this.threads = threads;
    this.seed = seed;
    this.device = device;
  }

  static async create(opts: EngineOptions = {}): Promise<Engine> {
    checkOptionKeys('Engine.create', opts, ['backend', 'cudaGemm', 'threads', 'seed', 'profile']);
    const { threads = 2, seed = 1, cudaGemm } = opts;
    let backend = opts.backend ?? 'auto';
    const env = process.env.FARM_BACKEND;
    if (backend === 'auto' && env) {
      if (env !== 'cpu' && env !== 'cuda' && env !== 'auto') throw new Error(`FARM_BACKEND must be cpu, cuda or auto, got "${env}"`);
      backend = env;
    }
    if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new Error(`threads must be an integer in [1, 1024], got ${threads}`);
    if (!Number.isInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${seed}`);
    if (!['auto', 'cpu', 'cuda'].includes(backend)) throw new Error(`unknown backend "${backend}" (auto, cpu, cuda)`);
    if (cudaGemm !== undefined && cudaGemm !== 'tf32' && cudaGemm !== 'fp32') throw new Error(`cudaGemm must be 'tf32' or 'fp32', got ${cudaGemm}`);
    // Probing creates a CUDA context (GPU memory, a fraction of a second): only when CUDA may be used.
    const cuda: CudaInfo = backend === 'cpu' ? { compiled: false, emulated: false, available: false, reason: 'not asked for' } : Engine.cudaInfo();
    if (backend === 'cuda' && !cuda.available) throw new Error(`backend "cuda" requested, but the CUDA backend is unavailable: ${cuda.reason}`);
    const chosen = backend === 'cuda' || (backend === 'auto' && cuda.available && !cuda.emulated) ? 'cuda' : 'cpu';
    if (chosen === 'cuda' && cudaGemm) native.setCudaGemm(cudaGemm);
    const device: DeviceInfo = chosen === 'cuda'
      ? { backend: 'cuda', name: cuda.device?.name ?? 'CUDA device', computeCapability: cuda.device?.computeCapability,
        memoryBytes: cuda.device?.memoryBytes, multiprocessors: cuda.device?.multiprocessors, gemm: Engine.cudaInfo().gemm,
        emulated: cuda.emulated }
      : { backend: 'cpu', name: cpus()[0]?.model?.trim() || 'CPU', gemm: native.buildInfo().gemm };
    const envTrace = process.env.FARM_TRACE, envProfile = process.env.FARM_PROFILE;
    const wantTrace = opts.profile === 'trace' || !!envTrace;
    const wantTable = wantTrace || opts.profile === true || (!!envProfile && envProfile !== '0');
    if (wantTable && prof.profilingMode() !== 'trace') prof.setProfiling(wantTrace ? 'trace' : 'aggregate');
    if (envTrace) prof.atExit('trace', envTrace);
    if (envProfile && envProfile !== '0') prof.atExit('table', String(threads));
    return new Engine(chosen, threads, seed, device);
  }

  /**
   * The kernel profile so far (profiling must be on): one row per kernel, call site and shape with calls,
   * time, share, achieved GFLOP/s and GB/s against this machine's measured peaks. reset: start afresh after.
   */
  async profile(opts: { reset?: boolean } = {}): Promise<prof.ProfileTable> {
    if (prof.profilingMode() === 'off') throw new Error('profiling is off: create the engine with { profile: true } or set FARM_PROFILE=1');
    const t = await prof.profileTable({ threads: this.threads });
    if (opts.reset) prof.resetProfile();
    return t;
  }
  /** Clears the profile (table, trace events, JS phases). */
  resetProfile(): void { prof.resetProfile(); }
  /** Runs fn as a named JS-side phase: a span on the trace's "JS phases" track and a line in the profile. */
  phase<T>(name: string, fn: () => T | Promise<T>): Promise<T> { return prof.phase(name, fn); }
  /** Writes a Chrome trace-event file (profile: 'trace'); open it in https://ui.perfetto.dev or chrome://tracing. */
  writeTrace(path: string): void {
    if (prof.profilingMode() !== 'trace') throw new Error("tracing is off: create the engine with { profile: 'trace' } or set FARM_TRACE=file.json");
    prof.writeTrace(path);
  }

  /** Build details: GEMM implementations, OpenMP, CUDA (compiled in or not). */
  static buildInfo(): { version: string; gemm: string; gemmImpls: string[]; openmp: boolean; cuda: boolean } {
    return native.buildInfo();
  }

  /** Whether the CUDA backend was built and can run here, and why not. */
  static cudaInfo(): CudaInfo {
    return typeof native.cudaInfo === 'function' ? native.cudaInfo()
      : { compiled: false, emulated: false, available: false, reason: 'this addon build has no CUDA backend' };
  }

  /** A new model on this engine's backend (seeded: the same initial weights on CPU and CUDA). */
  createModel(config: ModelConfig, opts: { seed?: number; initStd?: number } = {}): Model {
    checkOptionKeys('createModel options', opts, ['seed', 'initStd']);
    return createModel(config, { seed: opts.seed ?? this.seed, initStd: opts.initStd ?? 0.02, backend: this.backend });
  }

  createOptimizer(model: Model, opts: OptimizerOptions): Optimizer {
    return new Optimizer(model, opts);
  }

  /** Forward pass over token sequences of equal length (number[][] or a flat Int32Array with `batch`). */
  async forward(model: Model, tokens: number[][] | Int32Array,
    opts: { batch?: number; targets?: Int32Array; logits?: boolean; entropy?: boolean; train?: boolean; hidden?: boolean } = {}): Promise<ForwardResult> {
    checkOptionKeys('forward options', opts, ['batch', 'targets', 'logits', 'entropy', 'train', 'hidden']);
    const end = prof.beginPhase('engine.forward');
    const { flat, batch, seqLen } = flatten(tokens, opts.batch);
    const wantLogits = opts.logits ?? (model.config.lm_head && !opts.targets);
    const r = await model.raw.forward({
      tokens: flat, targets: opts.targets, batch, seqLen, train: opts.train ?? false,
      entropy: opts.entropy ?? false, logits: wantLogits, hidden: opts.hidden ?? false, threads: this.threads,
    }).finally(end);
    return { batch, seqLen, ...r };
  }

  /**
   * Backward from per-position gradients of the last forward({train: true}); accumulates into gradients. `dhidden`
   * [batch*seqLen, hidden_size] is dL/d(final hidden state) of a loss computed outside the model (an encoder on the
   * hidden state, forward({hidden: true})); it joins the heads' gradients there and reaches every layer.
   */
  async backward(model: Model, grads: { dlogp?: Float32Array; dentropy?: Float32Array; dvalues?: Float32Array; dhidden?: Float32Array }): Promise<void> {
    await prof.phase('engine.backward', () => model.raw.backward({ ...grads, threads: this.threads }));
  }

  /**
   * One supervised step: mean negative log-likelihood of the response tokens (prompt tokens carry no loss),
   * gradient-norm clipping, AdamW with the optimizer's schedule. `batch` is a packed TokenBatch or examples.
   */
  async sftStep(model: Model, batch: TokenBatch | SequenceExample[], optimizer: Optimizer, opts: { padId?: number } = {}): Promise<StepStats> {
    if (optimizer.model !== model) throw new Error('sftStep: the optimizer belongs to another model');
    checkOptionKeys('sftStep options', opts, ['padId']);
    const b = Array.isArray(batch) ? packBatch(batch, { padId: opts.padId ?? 0, maxLen: model.config.max_position_embeddings }) : batch;
    if (b.numTargets === 0) throw new Error('sftStep: the batch has no response tokens to learn');
    const end = prof.beginPhase('engine.sftStep');
    try {
      return await this.sftStepPacked(model, b, optimizer);
    } finally {
      end();
    }
  }
  private async sftStepPacked(model: Model, b: TokenBatch, optimizer: Optimizer): Promise<StepStats> {
    model.zeroGrad();
    const { loss, tokens } = await model.raw.forwardBackward({
      tokens: b.tokens, targets: b.targets, weights: b.weights, batch: b.batch, seqLen: b.seqLen, threads: this.threads,
    });
    const lr = optimizer.currentLr();
    const { gradNorm, clipped } = await optimizer.adamw.step(lr, optimizer.maxGradNorm, this.threads);
    return { loss, gradNorm, tokens, lr, clipped };
  }

  /** Samples `n` continuations of every prompt with a shared, prefilled KV cache (see GenerateOptions). */
  generate(model: Model, prompts: number[][], options: GenerateOptions = {}): Promise<Sample[][]> {
    return prof.phase('engine.generate', () => generate(this, model, prompts, options));
  }

  /** Log-probs of given responses after their prompts, summed and per token, batched. */
  logprobs(model: Model, prompts: number[][], responses: number[][], opts?: Parameters<typeof logprobs>[4]): Promise<ScoredResponse[]> {
    return prof.phase('engine.logprobs', () => logprobs(this, model, prompts, responses, opts));
  }

  /** A forkable KV-cache session (prefill, sample, extend, fork): the building block of tree search (TreeBoN). */
  session(model: Model, opts: { maxSequences: number; maxLength?: number; decodePrecision?: 'fp32' | 'bf16' }): GenerationSession {
    return new GenerationSession(this, model, opts);
  }

  /** One PPO optimization phase over a rollout batch (epochs x shuffled minibatches); AlpacaFarm defaults. */
  ppoStep(args: PPOStepArgs): Promise<PPOStats> { return prof.phase('engine.ppoStep', () => ppoStep(this, args)); }

  /** One Bradley-Terry step of a reward model (scalar head at the last response token). */
  rewardStep(model: Model, pairs: PreferencePair[], optimizer: Optimizer, config?: RewardConfig): Promise<RewardStepStats> {
    return prof.phase('engine.rewardStep', () => rewardStep(this, { model, pairs, optimizer, config }));
  }

  /** Reward-model scores of prompt+response sequences (scalar head at the last token), in input order. */
  scoreResponses(model: Model, seqs: PromptResponse[], opts?: { batchSize?: number; padId?: number }): Promise<Float32Array> {
    return prof.phase('engine.scoreResponses', () => scoreResponses(this, model, seqs, opts));
  }

  /** One DPO step (sigmoid, IPO or label-smoothed) against a frozen reference or precomputed reference log-probs. */
  dpoStep(policy: Model, pairs: DPOPair[], optimizer: Optimizer, opts: { ref?: Model; config?: Partial<DPOConfig> } = {}): Promise<DPOStepStats> {
    return prof.phase('engine.dpoStep', () => dpoStep(this, { policy, ref: opts.ref, pairs, optimizer, config: opts.config }));
  }

  saveModel(model: Model, dir: string): Promise<void> { return ckpt.saveModel(model, dir); }
  loadModel(dir: string, opts: { config?: Partial<ModelConfig> } = {}): Promise<Model> { return ckpt.loadModel(dir, { ...opts, backend: this.backend }); }
  saveOptimizer(opt: Optimizer, path: string): Promise<void> { return ckpt.saveOptimizer(opt.adamw, path); }
  loadOptimizer(opt: Optimizer, path: string): Promise<void> { return ckpt.loadOptimizer(opt.adamw, path); }
}

function flatten(tokens: number[][] | Int32Array, batch?: number): { flat: Int32Array; batch: number; seqLen: number } {
  if (tokens instanceof Int32Array) {
    const B = batch ?? 1;
    if (!Number.isInteger(B) || B < 1 || tokens.length % B !== 0 || tokens.length === 0)
      throw new Error(`tokens of length ${tokens.length} do not split into batch ${B}`);
    return { flat: tokens, batch: B, seqLen: tokens.length / B };
  }
  if (!Array.isArray(tokens) || tokens.length === 0) throw new Error('tokens must be a non-empty number[][] or an Int32Array');
  const T = tokens[0].length;
  if (T === 0) throw new Error('sequences must not be empty');
  const flat = new Int32Array(tokens.length * T);
  tokens.forEach((row, b) => {
    if (row.length !== T) throw new Error(`all sequences must have the same length: row 0 has ${T}, row ${b} has ${row.length}`);
    row.forEach((t, i) => {
      if (!Number.isInteger(t)) throw new Error(`token [${b}][${i}] = ${t} is not an integer`);
      flat[b * T + i] = t;
    });
  });
  return { flat, batch: tokens.length, seqLen: T };
}
