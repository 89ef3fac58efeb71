// The benchmarks' workloads, shared by bench/ (which times them beside references) and `farm profile`
// (which runs them under the kernel profiler), so that both measure the same thing.
import type { Engine } from './engine.ts';
import type { Model, ModelConfig } from './model.ts';
import type { DecodePrecision } from './generate.ts';
import type { Rollouts } from './ppo.ts';

/** The model of the speed targets (DESIGN.md section 7): hidden 256, 4 layers, 4 heads, vocab 4096. */
export const BENCH_MODEL: ModelConfig = {
  vocab_size: 4096, hidden_size: 256, intermediate_size: 683, num_hidden_layers: 4, num_attention_heads: 4,
  num_key_value_heads: 4, max_position_embeddings: 512, tie_word_embeddings: false,
};

export interface WorkloadRun {
  /** One repetition. */
  run: () => Promise<unknown>;
  /** Tokens one repetition processes (trained, scored or generated) and what they are. */
  tokens: number;
  unit: string;
  model: Model;
  config: Record<string, unknown>;
}

export interface Workload {
  description: string;
  setup: (engine: Engine, opts?: { quick?: boolean }) => WorkloadRun | Promise<WorkloadRun>;
}

/** Deterministic pseudo-random tokens and next-token targets for [B, T]. */
/** Deterministic pseudo-random rollouts of P prompt + R response tokens with ragged response lengths (right
 * padding) and scores sin(b): the PPO phase of `farm profile` and `bench ppo-step`. */
export function syntheticRollouts(B: number, P: number, R: number, V: number): Rollouts {
  const T = P + R;
  const tokens = new Int32Array(B * T), mask = new Uint8Array(B * T), scores = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    const len = R - (b % 8) * 4;
    for (let t = 0; t < T; t++) tokens[b * T + t] = ((b * 131 + t * 2654435761) >>> 0) % V;
    for (let t = P - 1; t < P - 1 + len && t < T - 1; t++) mask[b * T + t] = 1;
    scores[b] = Math.sin(b);
  }
  return { tokens, batch: B, seqLen: T, responseMask: mask, scores };
}

export function syntheticBatch(B: number, T: number, V: number) {
  const tokens = new Int32Array(B * T), targets = new Int32Array(B * T), weights = new Float32Array(B * T).fill(1 / (B * T));
  for (let i = 0; i < tokens.length; i++) {
    tokens[i] = ((i * 2654435761) >>> 0) % V;
    targets[i] = (tokens[i] * 7 + 3) % V;
  }
  return { tokens, targets, weights, batch: B, seqLen: T, numTargets: B * T };
}

/** Prompts of the sampling bench: B prompts of T tokens. */
export function benchPrompts(B: number, T: number, V: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 131 + t * 17 + 1) % V));
}

function sampling(decodePrecision: DecodePrecision): Workload {
  return {
    description: `KV-cache sampling, batch 8, prompt 32, 128 new tokens, temperature 1, ${decodePrecision} decode weights and KV cache (prefill included)`,
    setup: (engine) => {
      const model = engine.createModel(BENCH_MODEL);
      const B = 8, T = 32, NEW = 128, prompts = benchPrompts(B, T, BENCH_MODEL.vocab_size);
      return {
        // No stop tokens: every sample runs the full length, as the reference does.
        run: () => engine.generate(model, prompts, { n: 1, maxNewTokens: NEW, temperature: 1, stepsPerCall: NEW, decodePrecision }),
        tokens: B * NEW, unit: 'new tokens', model,
        config: { batch: B, prompt: T, newTokens: NEW, n: 1, temperature: 1, includesPrefill: true, decodePrecision },
      };
    },
  };
}

export const WORKLOADS: Record<string, Workload> = {
  'train-step': {
    description: 'SFT step (forward + backward + clipping + AdamW), batch 8 x 256 tokens',
    setup: (engine) => {
      const model = engine.createModel({ ...BENCH_MODEL, max_position_embeddings: 256 });
      const opt = engine.createOptimizer(model, { lr: 1e-4, weightDecay: 0.1 });
      const batch = syntheticBatch(8, 256, BENCH_MODEL.vocab_size);
      return { run: () => engine.sftStep(model, batch, opt), tokens: 8 * 256, unit: 'tokens', model, config: { batch: 8, seq: 256 } };
    },
  },
  forward: {
    description: 'forward pass with target log-probs (no logits kept), batch 8 x 256 tokens',
    setup: (engine) => {
      const model = engine.createModel({ ...BENCH_MODEL, max_position_embeddings: 256 });
      const b = syntheticBatch(8, 256, BENCH_MODEL.vocab_size);
      return {
        run: () => engine.forward(model, b.tokens, { batch: 8, targets: b.targets, logits: false }),
        tokens: 8 * 256, unit: 'tokens', model, config: { batch: 8, seq: 256 },
      };
    },
  },
  sample: sampling('fp32'),
  'sample-bf16': sampling('bf16'),
  'ppo-step': {
    description: 'one PPO phase: 64 rollouts of 64 prompt + 64 response tokens, policy with a value head and a frozen reference',
    setup: (engine, opts = {}) => {
      const cfg = { ...BENCH_MODEL, max_position_embeddings: 256, scalar_head: true };
      const policy = engine.createModel(cfg), ref = engine.createModel(cfg);
      ref.copyFrom(policy);
      const B = opts.quick ? 16 : 64, P = 64, R = 64, T = P + R;
      const rollouts = syntheticRollouts(B, P, R, cfg.vocab_size);
      const config = { miniBatchSize: B / 2, gradientAccumulationSteps: 4, ppoEpochs: 2 };
      return {
        run: () => engine.ppoStep({ policy, ref, rollouts, config }), tokens: B * T, unit: 'rollout tokens', model: policy,
        config: { rollouts: B, prompt: P, response: R, ...config },
      };
    },
  },
};
