// Sampling throughput with the KV cache: new tokens/s for batch 8, prompt 32, 128 new tokens (issue #3) on the
// #2 model, with fp32 and bf16 decode weights, each repetition interleaved with the same sampling loop in
// PyTorch (bench/reference/llama_torch.py: preallocated KV cache, OpenMP OpenBLAS, same threads) when one is
// importable; the decode's share of the weight-streaming bound; n = 16 samples per prompt, prefill, and the
// larger model. Times include prefill (one generate() call from prompts to samples) unless named decode_only.
import { Engine, type ModelConfig } from '../ts/engine/index.ts';
import { generate } from '../ts/engine/generate.ts';
import { native } from '../ts/engine/native.ts';
import { BENCH_MODEL, benchPrompts, WORKLOADS } from '../ts/engine/workloads.ts';
import { emit, flag, machineLoad, median, quick, timeit, TorchReference } from './_lib.ts';
import { cudaBench } from './_cuda.ts';

if (await cudaBench('sample')) process.exit(0);  // --backend=cuda: the GPU variant (bench/_cuda.ts)

const threads = flag('threads', 2);
const engine = await Engine.create({ threads, seed: 1 });
const SMALL = BENCH_MODEL;
const LARGE: ModelConfig = { vocab_size: 8192, hidden_size: 512, intermediate_size: 1365, num_hidden_layers: 8, num_attention_heads: 8, max_position_embeddings: 512 };
const reps = quick ? 5 : 11;
const torchCfg = (c: ModelConfig, NEW: number) => ({ vocab: c.vocab_size, hidden: c.hidden_size, layers: c.num_hidden_layers, heads: c.num_attention_heads,
  intermediate: c.intermediate_size, max_pos: c.max_position_embeddings, sample_batch: 8, prompt: 32, new: NEW, batch: 1, seq: 1 });

/** Ours (one function per variant) and the reference, repetition by repetition; seconds per repetition. */
async function interleave(variants: Record<string, () => Promise<unknown>>, ref: TorchReference | null, n: number) {
  const t: Record<string, number[]> = { torch: [] };
  for (const k of Object.keys(variants)) t[k] = [];
  for (let i = -1; i < n; i++) {  // i = -1: warm-up
    for (const [k, fn] of Object.entries(variants)) {
      const s = process.hrtime.bigint();
      await fn();
      if (i >= 0) t[k].push(Number(process.hrtime.bigint() - s) / 1e9);
    }
    if (ref) { const s = await ref.run('sample'); if (i >= 0) t.torch.push(s); }
  }
  return t;
}

{
  const B = 8, T = 32, NEW = 128;
  const fp32 = await WORKLOADS.sample.setup(engine), bf16 = await WORKLOADS['sample-bf16'].setup(engine);
  bf16.model.copyFrom(fp32.model);
  const started = await TorchReference.start(torchCfg(SMALL, NEW), threads);
  const ref = started instanceof TorchReference ? started : null;
  const why = started instanceof TorchReference ? undefined : started.reason;
  const loadBefore = machineLoad();
  const t = await interleave({ fp32: fp32.run, bf16: bf16.run }, ref, reps);
  const load = [loadBefore, machineLoad()];
  ref?.close();
  const rate = (xs: number[]) => (B * NEW) / median(xs);
  const theirs = ref ? rate(t.torch) : null;
  const config = { model: '#2: hidden 256, 4 layers, 4 heads, intermediate 683, vocab 4096', batch: B, prompt: T, newTokens: NEW, n: 1, threads, temperature: 1, includesPrefill: true, reps, interleaved: true };
  const refObj = theirs !== null ? { name: `${ref!.describe()} measured side by side`, value: theirs, source: 'bench/reference/llama_torch.py, interleaved in this run' } : null;
  for (const [k, suffix] of [['fp32', ''], ['bf16', '_bf16']] as const) {
    const ours = rate(t[k]);
    emit({ bench: 'sample', figure: `new_tokens_per_s${suffix}`, value: ours, unit: 'tokens/s', config: { ...config, decodePrecision: k, best: Math.round((B * NEW) / Math.min(...t[k])) },
      reference: refObj, ...(why ? { note: `no side-by-side reference: ${why}` } : {}) });
    emit({ bench: 'sample', figure: `ratio_vs_pytorch${suffix}`, value: theirs !== null ? ours / theirs : null, unit: 'x', config: { ...config, decodePrecision: k, load_per_core: load },
      reference: { name: 'target', value: 4, source: 'DESIGN.md section 7 / issue #15' }, ...(why ? { note: `null: ${why}` } : {}) });
  }

  // Decode alone (after prefill) against the weight-streaming bound: a step reads every linear weight once,
  // at the read bandwidth this machine measures for a buffer of that size (same threads, this run).
  const weightBytes = 4 * (SMALL.num_hidden_layers * (4 * SMALL.hidden_size * SMALL.hidden_size + 3 * SMALL.hidden_size * SMALL.intermediate_size) + SMALL.vocab_size * SMALL.hidden_size);
  const ps = benchPrompts(B, T, SMALL.vocab_size);
  const tokens = Int32Array.from(ps.flat()), lengths = Int32Array.from(ps.map((p) => p.length));
  for (const w of ['fp32', 'bf16'] as const) {
    const times: number[] = [];
    let gbps = 0;
    for (let i = -1; i < reps; i++) {
      const s = new native.DecodeSession(fp32.model.raw, { maxSequences: B, maxLength: T + NEW, weights: w, kvCache: w });
      const slots = await s.addPrompts({ tokens, lengths, copies: 1, streams: Float64Array.from({ length: B }, (_, j) => j), threads });
      const t0 = process.hrtime.bigint();
      await s.sample({ slots, steps: NEW, maxNewTokens: NEW, temperature: 1, seed: 1, threads });
      if (i >= 0) times.push(Number(process.hrtime.bigint() - t0) / 1e9);
      s.dispose();
      // the bound's bandwidth, measured between repetitions (best of them: the machine is shared)
      gbps = Math.max(gbps, await native.profiler.readGbps({ bytes: weightBytes, threads }));
    }
    const decodeRate = (B * NEW) / median(times);
    const bound = B * gbps * 1e9 / weightBytes;  // tokens/s if a step cost only streaming the fp32 weights
    const c = { batch: B, prompt: T, newTokens: NEW, threads, decodePrecision: w, fp32WeightMB: +(weightBytes / 1e6).toFixed(2), readGbps: +gbps.toFixed(1), boundTokensPerS: Math.round(bound), reps };
    emit({ bench: 'sample', figure: `decode_only_tokens_per_s${w === 'bf16' ? '_bf16' : ''}`, value: decodeRate, unit: 'tokens/s', config: c });
    emit({ bench: 'sample', figure: `decode_share_of_streaming_bound${w === 'bf16' ? '_bf16' : ''}`, value: decodeRate / bound, unit: 'x', config: c,
      reference: { name: 'target', value: 0.7, source: 'issue #15: >= 70% of the fp32 weight-streaming bound at batch 8 (bf16 streams half the bytes, so it may pass 1)' } });
  }

  const r16 = await timeit(() => generate(engine, fp32.model, ps, { n: 16, maxNewTokens: NEW, temperature: 1, stepsPerCall: NEW }), quick ? 1 : 3, 1);
  emit({ bench: 'sample', figure: 'new_tokens_per_s_n16', value: (B * 16 * NEW) / median(r16), unit: 'tokens/s', config: { ...config, n: 16, sharedPrefix: true, interleaved: false, reps: quick ? 1 : 3 } });
  // Prefill alone: 8 prompts of 256 tokens into a fresh session.
  const PB = 8, PT = 256, pp = benchPrompts(PB, PT, SMALL.vocab_size);
  const ptok = Int32Array.from(pp.flat()), plen = Int32Array.from(pp.map((p) => p.length));
  const rp = await timeit(async () => {
    const s = new native.DecodeSession(fp32.model.raw, { maxSequences: PB, maxLength: PT + 1 });
    await s.addPrompts({ tokens: ptok, lengths: plen, copies: 1, streams: new Float64Array(PB), threads });
    s.dispose();
  }, reps, 1);
  emit({ bench: 'sample', figure: 'prefill_tokens_per_s', value: (PB * PT) / median(rp), unit: 'tokens/s', config: { model: config.model, batch: PB, prompt: PT, threads, reps } });
}
{
  const model = engine.createModel(LARGE);
  const B = 8, T = 32, NEW = quick ? 32 : 128, n = quick ? 3 : 5;
  const ps = benchPrompts(B, T, LARGE.vocab_size);
  const started = await TorchReference.start(torchCfg(LARGE, NEW), threads);
  const ref = started instanceof TorchReference ? started : null;
  const why = started instanceof TorchReference ? undefined : started.reason;
  const t = await interleave({
    fp32: () => generate(engine, model, ps, { n: 1, maxNewTokens: NEW, temperature: 1, stepsPerCall: NEW }),
    bf16: () => generate(engine, model, ps, { n: 1, maxNewTokens: NEW, temperature: 1, stepsPerCall: NEW, decodePrecision: 'bf16' }),
  }, ref, n);
  ref?.close();
  const config = { model: 'hidden 512, 8 layers, 8 heads, intermediate 1365, vocab 8192', batch: B, prompt: T, newTokens: NEW, n: 1, threads, temperature: 1, includesPrefill: true, reps: n, interleaved: true };
  const theirs = ref ? (B * NEW) / median(t.torch) : null;
  for (const [k, suffix] of [['fp32', ''], ['bf16', '_bf16']] as const) {
    const ours = (B * NEW) / median(t[k]);
    emit({ bench: 'sample', figure: `new_tokens_per_s_large${suffix}`, value: ours, unit: 'tokens/s', config: { ...config, decodePrecision: k },
      reference: theirs !== null ? { name: `${ref!.describe()} measured side by side`, value: theirs, source: 'bench/reference/llama_torch.py, interleaved in this run' } : null,
      ...(why ? { note: `no side-by-side reference: ${why}` } : {}) });
    emit({ bench: 'sample', figure: `ratio_vs_pytorch_large${suffix}`, value: theirs !== null ? ours / theirs : null, unit: 'x', config: { ...config, decodePrecision: k }, ...(why ? { note: `null: ${why}` } : {}) });
  }
}
