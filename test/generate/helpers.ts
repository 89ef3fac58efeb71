// Shared fixtures of the generation tests: tiny models and a float64 softmax.
import { Engine } from '../../ts/engine/index.ts';
import type { Model, ModelConfig } from '../../ts/engine/index.ts';

export const engine1 = await Engine.create({ threads: 1, seed: 5 });
export const engine2 = await Engine.create({ threads: 2, seed: 5 });

export function tinyModel(over: Partial<ModelConfig> = {}, seed = 1, initStd = 0.3): Model {
  return engine2.createModel({
    vocab_size: 48, hidden_size: 32, intermediate_size: 45, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, max_position_embeddings: 64, ...over,
  }, { seed, initStd });
}

/** Last-position logits of the full (uncached) forward pass over `tokens`. */
export async function fullLogits(model: Model, tokens: number[]): Promise<{ logits: Float32Array; value?: number }> {
  const f = await engine2.forward(model, [tokens], { logits: model.config.lm_head });
  const V = model.config.vocab_size, T = tokens.length;
  return { logits: f.logits ? f.logits.slice((T - 1) * V, T * V) : new Float32Array(0), value: f.values?.[T - 1] };
}

/** max |a - b| / max(1, max |b|): error relative to the row's scale. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 1;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return d / m;
}

export function softmax64(z: ArrayLike<number>, temperature = 1): number[] {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i] / temperature);
  const e = Array.from(z, (x) => Math.exp(x / temperature - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** Indices by probability, descending (ties: lower id first). */
export function ranked(p: number[]): number[] {
  return p.map((_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
}
