// Shared helpers of the RL tests: comparisons, seeded randomness, padded batches, tiny models, a sampler.
import * as assert from 'uvu/assert';
import { createModel, type Model, type ModelConfig } from '../../ts/engine/model.ts';
import type { EngineLike } from '../../ts/engine/rl.ts';

export function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what = ''): void {
  assert.is(a.length, b.length, `${what} length`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= tol * Math.max(1, Math.abs(b[i])))) assert.unreachable(`${what}[${i}]: ${a[i]} vs ${b[i]} (diff ${d})`);
  }
}

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    let z = Math.imul(s ^ (s >>> 12), 0x297a2d39);
    z ^= z >>> 15;
    return (z >>> 0) / 4294967296;
  };
}

/** A padded batch: prompt (0), response (1, optionally with holes), padding (0); the last column is 0. */
export function randomBatch(rand: () => number, o: { holes?: boolean }): { B: number; T: number; mask: Uint8Array } {
  const B = 1 + Math.floor(rand() * 6), T = 3 + Math.floor(rand() * 20);
  const mask = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) {
    const p = Math.floor(rand() * (T - 2));
    const len = 1 + Math.floor(rand() * (T - 1 - p));
    for (let t = p; t < p + len; t++) mask[b * T + t] = o.holes && t > p && rand() < 0.2 ? 0 : 1;
  }
  return { B, T, mask };
}

export const engine: EngineLike = { threads: 1, seed: 1 };

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    vocab_size: 8, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2,
    max_position_embeddings: 24, lm_head: true, scalar_head: true, ...over,
  };
}
export function tinyModel(over: Partial<ModelConfig> = {}, seed = 3, initStd = 0.2): Model {
  return createModel(tinyConfig(over), { seed, initStd });
}

/** Samples responses token by token at temperature 1 (full forward per step: fine for tiny models). */
export async function sample(model: Model, prompts: number[][], len: number, rand: () => number): Promise<number[][]> {
  const V = model.config.vocab_size;
  const seqs = prompts.map((p) => [...p]);
  const out: number[][] = prompts.map(() => []);
  for (let step = 0; step < len; step++) {
    const T = seqs[0].length;  // all prompts have the same length here
    const tokens = Int32Array.from(seqs.flat());
    const r = await model.raw.forward({ tokens, batch: seqs.length, seqLen: T, logits: true, threads: 1 });
    seqs.forEach((s, b) => {
      const row = r.logits.subarray(((b + 1) * T - 1) * V, (b + 1) * T * V);
      let mx = -Infinity;
      for (const x of row) mx = Math.max(mx, x);
      const p = Array.from(row, (x: number) => Math.exp(x - mx));
      const z = p.reduce((a, c) => a + c, 0);
      let u = rand() * z, k = 0;
      while (k < V - 1 && u >= p[k]) { u -= p[k]; k++; }
      s.push(k);
      out[b].push(k);
    });
  }
  return out;
}
