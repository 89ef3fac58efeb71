// The engine facade: one object that owns the backend choice, threads and seed, and runs native work
// off the event loop. Methods (SFT, PPO, DPO, ...) talk to models only through it.
import { native } from './native.ts';
import { AdamW, createModel, Model, type AdamWOptions, type ModelConfig } from './model.ts';
import { packBatch, type SequenceExample, type TokenBatch } from './batch.ts';
import { learningRate, type ScheduleOptions } from './schedule.ts';
import * as ckpt from './checkpoint.ts';

export type Backend = 'auto' | 'cpu' | 'cuda';
export interface EngineOptions {
  /** Backend: 'auto' uses CUDA when built and a device is present, else CPU. */
  backend?: Backend;
  /** Threads for native kernels (default 2). */
  threads?: number;
  /** Seed for model initialization and sampling. */
  seed?: number;
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
}

export interface StepStats { loss: number; gradNorm: number; tokens: number; lr: number; clipped: boolean }

/** An optimizer with its learning-rate schedule and gradient clipping. */
export class Optimizer {
  readonly adamw: AdamW;
  readonly schedule: ScheduleOptions;
  readonly maxGradNorm: number;
  constructor(model: Model, opts: AdamWOptions & ScheduleOptions & { maxGradNorm?: number }) {
    const { lr, warmupSteps, totalSteps, kind, minLrRatio, maxGradNorm = 1.0, ...adam } = opts;
    learningRate(0, { lr, warmupSteps, totalSteps, kind, minLrRatio });  // validates early
    this.adamw = new AdamW(model, adam);
    this.schedule = { lr, warmupSteps, totalSteps, kind, minLrRatio };
    if (!(maxGradNorm >= 0)) throw new Error(`maxGradNorm must be >= 0, got ${maxGradNorm}`);
    this.maxGradNorm = maxGradNorm;
  }
  get model(): Model { return this.adamw.model; }
  get step(): number { return this.adamw.stepCount; }
  currentLr(): number { return learningRate(this.step, this.schedule); }
}

export class Engine {
  readonly backend: 'cpu' | 'cuda';
  readonly threads: number;
  readonly seed: number;
  private constructor(backend: 'cpu' | 'cuda', threads: number, seed: number) {
    this.backend = backend;
    this.threads = threads;
    this.seed = seed;
  }

  static async create(opts: EngineOptions = {}): Promise<Engine> {
    const { backend = 'auto', threads = 2, seed = 1 } = opts;
    if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new Error(`threads must be an integer in [1, 1024], got ${threads}`);
    if (!Number.isInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${seed}`);
    const info = native.buildInfo();
    if (backend === 'cuda' && !info.cuda) throw new Error('backend "cuda" requested, but this build has no CUDA backend (no nvcc at build time or no device)');
    if (!['auto', 'cpu', 'cuda'].includes(backend)) throw new Error(`unknown backend "${backend}" (auto, cpu, cuda)`);
    return new Engine(info.cuda && backend !== 'cpu' ? 'cuda' : 'cpu', threads, seed);
  }

  /** Build details: GEMM implementations, OpenMP, CUDA. */
  static buildInfo(): { version: string; gemm: string; gemmImpls: string[]; openmp: boolean; cuda: boolean } {
    return native.buildInfo();
  }

  createModel(config: ModelConfig, opts: { seed?: number; initStd?: number } = {}): Model {
    return createModel(config, { seed: opts.seed ?? this.seed, initStd: opts.initStd ?? 0.02 });
  }

  createOptimizer(model: Model, opts: AdamWOptions & ScheduleOptions & { maxGradNorm?: number }): Optimizer {
    return new Optimizer(model, opts);
  }

  /** Forward pass over token sequences of equal length (number[][] or a flat Int32Array with `batch`). */
  async forward(model: Model, tokens: number[][] | Int32Array,
    opts: { batch?: number; targets?: Int32Array; logits?: boolean; entropy?: boolean; train?: boolean } = {}): Promise<ForwardResult> {
    const { flat, batch, seqLen } = flatten(tokens, opts.batch);
    const wantLogits = opts.logits ?? (model.config.lm_head && !opts.targets);
    const r = await model.raw.forward({
      tokens: flat, targets: opts.targets, batch, seqLen, train: opts.train ?? false,
      entropy: opts.entropy ?? false, logits: wantLogits, threads: this.threads,
    });
    return { batch, seqLen, ...r };
  }

  /** Backward from per-position gradients of the last forward({train: true}); accumulates into gradients. */
  async backward(model: Model, grads: { dlogp?: Float32Array; dentropy?: Float32Array; dvalues?: Float32Array }): Promise<void> {
    await model.raw.backward({ ...grads, threads: this.threads });
  }

  /**
   * One supervised step: mean negative log-likelihood of the response tokens (prompt tokens carry no loss),
   * gradient-norm clipping, AdamW with the optimizer's schedule. `batch` is a packed TokenBatch or examples.
   */
  async sftStep(model: Model, batch: TokenBatch | SequenceExample[], optimizer: Optimizer, opts: { padId?: number } = {}): Promise<StepStats> {
    if (optimizer.model !== model) throw new Error('sftStep: the optimizer belongs to another model');
    const b = Array.isArray(batch) ? packBatch(batch, { padId: opts.padId ?? 0, maxLen: model.config.max_position_embeddings }) : batch;
    if (b.numTargets === 0) throw new Error('sftStep: the batch has no response tokens to learn');
    model.zeroGrad();
    const { loss, tokens } = await model.raw.forwardBackward({
      tokens: b.tokens, targets: b.targets, weights: b.weights, batch: b.batch, seqLen: b.seqLen, threads: this.threads,
    });
    const lr = optimizer.currentLr();
    const { gradNorm, clipped } = await optimizer.adamw.step(lr, optimizer.maxGradNorm, this.threads);
    return { loss, gradNorm, tokens, lr, clipped };
  }

  saveModel(model: Model, dir: string): Promise<void> { return ckpt.saveModel(model, dir); }
  loadModel(dir: string, opts: { config?: Partial<ModelConfig> } = {}): Promise<Model> { return ckpt.loadModel(dir, opts); }
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
