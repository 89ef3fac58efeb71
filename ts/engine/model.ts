// Typed wrappers over the addon's Model and AdamW.
import { native } from './native.ts';
import { checkOptionKeys } from './options.ts';

const CONFIG_KEYS = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads',
  'max_position_embeddings', 'rms_norm_eps', 'rope_theta', 'tie_word_embeddings', 'lm_head', 'scalar_head'];

/** Hugging Face LlamaConfig fields (a real checkpoint's config.json maps 1:1), plus which heads exist. */
export interface ModelConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** Grouped-query attention: KV heads (defaults to num_attention_heads). */
  num_key_value_heads?: number;
  max_position_embeddings: number;
  rms_norm_eps?: number;
  rope_theta?: number;
  tie_word_embeddings?: boolean;
  /** Next-token head (policies). Reward and value models may go without. Default true. */
  lm_head?: boolean;
  /** Scalar head (value / reward) on the final hidden state at every position, `score.weight` + `score.bias`. */
  scalar_head?: boolean;
}
export type ResolvedConfig = Required<ModelConfig>;

export interface ParamView { name: string; shape: number[]; data: Float32Array; decay: boolean }

/** Where a model's weights live and its kernels run. */
export type ModelBackend = 'cpu' | 'cuda';

export class Model {
  /** @internal */ readonly raw: any;
  readonly config: ResolvedConfig;
  constructor(raw: any) {
    this.raw = raw;
    this.config = raw.config();
  }
  /** 'cuda' when the weights live on the GPU (created by an Engine with the CUDA backend). */
  get backend(): ModelBackend { return typeof this.raw.backend === 'function' ? this.raw.backend() : 'cpu'; }
  /**
   * Views over the native parameters; writes go to the model. On the CUDA backend they view a host copy brought
   * up to date by this call, and what is written through them reaches the GPU before the next operation: take
   * fresh views after training steps instead of keeping old ones.
   */
  parameters(): ParamView[] { return this.raw.parameters(); }
  /** Views over the gradients (on CUDA, a host copy as for parameters()). */
  gradients(): ParamView[] { return this.raw.gradients(); }
  get numParameters(): number { return this.raw.numParameters(); }
  /** Bytes held by the activation buffers of the last batch shape. */
  get activationBytes(): number { return this.raw.activationBytes(); }
  zeroGrad(): void { this.raw.zeroGrad(); }
  gradNorm(): number { return this.raw.gradNorm(); }
  /** Copies every parameter from another model of the same config (e.g. a frozen reference). */
  copyFrom(other: Model): void {
    const src = other.parameters(), dst = this.parameters();
    if (src.length !== dst.length) throw new Error('copyFrom: models have different parameter sets');
    for (let i = 0; i < dst.length; i++) {
      if (src[i].name !== dst[i].name || src[i].data.length !== dst[i].data.length)
        throw new Error(`copyFrom: parameter ${dst[i].name} does not match ${src[i].name}`);
      dst[i].data.set(src[i].data);
    }
  }
}

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  /** AlpacaFarm PPO uses 1e-5; PyTorch's default is 1e-8. */
  eps?: number;
  /** Decoupled weight decay (not applied to norms and biases). */
  weightDecay?: number;
}

export class AdamW {
  /** @internal */ readonly raw: any;
  readonly model: Model;
  readonly options: Required<AdamWOptions>;
  constructor(model: Model, options: AdamWOptions = {}) {
    this.model = model;
    this.options = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...options };
    this.raw = model.backend === 'cuda' ? new native.CudaAdamW(model.raw, this.options) : new native.AdamW(model.raw, this.options);
  }
  get stepCount(): number { return this.raw.stepCount; }
  /** Clips the global gradient norm to maxGradNorm (0: no clipping), then updates the parameters. */
  async step(lr: number, maxGradNorm = 0, threads = 1): Promise<{ gradNorm: number; clipped: boolean }> {
    return this.raw.step({ lr, maxGradNorm, threads });
  }
  /** Views over the moment buffers (same layout as the model's parameter buffer; on CUDA, host copies as for parameters()). */
  state(): { step: number; m: Float32Array; v: Float32Array } { return this.raw.state(); }
  setStepCount(n: number): void { this.raw.setStepCount(n); }
}

/**
 * A new model with seeded weights (the same values on either backend). backend 'cuda' puts it on the GPU; it then
 * needs an addon built with CUDA and a visible device (Engine.create({ backend }) checks both).
 */
export function createModel(config: ModelConfig, options: { seed?: number; initStd?: number; backend?: ModelBackend } = {}): Model {
  checkOptionKeys('model config', config, CONFIG_KEYS);
  const { backend = 'cpu', ...init } = options;
  if (backend === 'cuda') {
    if (typeof native.CudaModel !== 'function') throw new Error(`the CUDA backend is unavailable: ${native.cudaInfo?.().reason ?? 'this addon was built without it'}`);
    return new Model(new native.CudaModel(config, init));
  }
  if (backend !== 'cpu') throw new Error(`unknown backend "${backend}" (cpu, cuda)`);
  return new Model(new native.Model(config, init));
}
