// Sampling throughput with the KV cache: new tokens/s for batch 8, prompt 32, 128 new tokens (issue #3),
// the #2 model config and the larger one, 2 threads; plus n = 16 samples per prompt and prefill tokens/s.
// Times include prefill (one generate() call from prompts to samples). Medians after a warm-up; config.best
// is the fastest repetition (the machine is shared, and its neighbours' memory traffic moves the median).
import { Engine, type ModelConfig } from '../ts/engine/index.ts';
import { generate } from '../ts/engine/generate.ts';
import { native } from '../ts/engine/native.ts';
import { emit, median, quick, timeit } from './_lib.ts';
import { cudaBench } from './_cuda.ts';

if (await cudaBench('sample')) process.exit(0);  // --backend=cuda: the GPU variant (bench/_cuda.ts)

const threads = 2;
const engine = await Engine.create({ threads, seed: 1 });
const SMALL: ModelConfig = { vocab_size: 4096, hidden_size: 256, intermediate_size: 683, num_hidden_layers: 4, num_attention_heads: 4, max_position_embeddings: 512 };
const LARGE: ModelConfig = { vocab_size: 8192, hidden_size: 512, intermediate_size: 1365, num_hidden_layers: 8, num_attention_heads: 8, max_position_embeddings: 512 };
const PYTORCH = (value: number) => ({ name: 'pytorch-1.13-tuned', value, source: 'issue #3: OpenMP OpenBLAS, hand-written KV cache, measured on this kind of machine' });

function prompts(B: number, T: number, V: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 131 + t * 17 + 1) % V));
}

/** Tokens per second of `work` over its repetitions: median and best. */
async function rate(tokens: number, reps: number, work: () => Promise<unknown>) {
  const times = await timeit(work, reps, 1);
  return { median: tokens / median(times), best: tokens / Math.min(...times) };
}

// No stop tokens: every sample runs the full maxNewTokens, as the reference measures.
const sampleAll = (model: any, ps: number[][], n: number, maxNew: number) => () =>
  generate(engine, model, ps, { n, maxNewTokens: maxNew, temperature: 1, stepsPerCall: maxNew });

const reps = quick ? 3 : 7;
{
  const model = engine.createModel(SMALL);
  const B = 8, T = 32, NEW = 128;
  const config = { model: '#2: hidden 256, 4 layers, 4 heads, intermediate 683, vocab 4096', batch: B, prompt: T, newTokens: NEW, n: 1, threads, temperature: 1, includesPrefill: true, reps };
  const r = await rate(B * NEW, reps, sampleAll(model, prompts(B, T, SMALL.vocab_size), 1, NEW));
  emit({ bench: 'sample', figure: 'new_tokens_per_s', value: r.median, unit: 'tokens/s', config: { ...config, best: Math.round(r.best) }, reference: PYTORCH(2350) });
  emit({ bench: 'sample', figure: 'ratio_vs_pytorch-1.13-tuned', value: r.median / 2350, unit: 'x', config });
  const r16 = await rate(B * 16 * NEW, quick ? 1 : 3, sampleAll(model, prompts(B, T, SMALL.vocab_size), 16, NEW));
  emit({ bench: 'sample', figure: 'new_tokens_per_s_n16', value: r16.median, unit: 'tokens/s', config: { ...config, n: 16, sharedPrefix: true, reps: quick ? 1 : 3, best: Math.round(r16.best) } });
  // Prefill alone: 8 prompts of 256 tokens into a fresh session.
  const PB = 8, PT = 256, ps = prompts(PB, PT, SMALL.vocab_size);
  const tokens = Int32Array.from(ps.flat()), lengths = Int32Array.from(ps.map((p) => p.length));
  const rp = await rate(PB * PT, reps, async () => {
    const s = new native.DecodeSession(model.raw, { maxSequences: PB, maxLength: PT + 1 });
    await s.addPrompts({ tokens, lengths, copies: 1, streams: new Float64Array(PB), threads });
    s.dispose();
  });
  emit({ bench: 'sample', figure: 'prefill_tokens_per_s', value: rp.median, unit: 'tokens/s', config: { model: config.model, batch: PB, prompt: PT, threads, reps, best: Math.round(rp.best) } });
}
{
  const model = engine.createModel(LARGE);
  const B = 8, T = 32, NEW = quick ? 32 : 128, n = quick ? 1 : 3;
  const config = { model: 'hidden 512, 8 layers, 8 heads, intermediate 1365, vocab 8192', batch: B, prompt: T, newTokens: NEW, n: 1, threads, temperature: 1, includesPrefill: true, reps: n };
  const r = await rate(B * NEW, n, sampleAll(model, prompts(B, T, LARGE.vocab_size), 1, NEW));
  emit({ bench: 'sample', figure: 'new_tokens_per_s_large', value: r.median, unit: 'tokens/s', config: { ...config, best: Math.round(r.best) }, reference: PYTORCH(424) });
}
