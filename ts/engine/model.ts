// Typed wrappers over the addon's Model and AdamW.
import { native } from './native.ts';

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

export class Model {
  /** @internal */ readonly raw: any;
  readonly config: ResolvedConfig;
  constructor(raw: any) {
    this.raw = raw;
    this.config = raw.config();
  }
  /** Views over the native parameters (writes go straight to the model). */
  parameters(): ParamView[] { return this.raw.parameters(); }
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
    this.raw = new native.AdamW(model.raw, this.options);
  }
  get stepCount(): number { return this.raw.stepCount; }
  /** Clips the global gradient norm to maxGradNorm (0: no clipping), then updates the parameters. */
  async step(lr: number, maxGradNorm = 0, threads = 1): Promise<{ gradNorm: number; clipped: boolean }> {
    return this.raw.step({ lr, maxGradNorm, threads });
  }
  /** Views over the moment buffers (same layout as the model's parameter buffer). */
  state(): { step: number; m: Float32Array; v: Float32Array } { return this.raw.state(); }
  setStepCount(n: number): void { this.raw.setStepCount(n); }
}

export function createModel(config: ModelConfig, options: { seed?: number; initStd?: number } = {}): Model {
  return new Model(new native.Model(config, options));
}
