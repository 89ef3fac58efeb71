// Training step (forward + backward + clipping + AdamW) and forward-only throughput of the #2 model, each
// interleaved repetition by repetition with the same model in PyTorch (bench/reference/llama_torch.py) when
// one is importable; GEMM GFLOP/s on the model's shapes; peak resident memory beside the theoretical need;
// the kernel profiler's overhead when on.
import { Engine } from '../ts/engine/index.ts';
import { native } from '../ts/engine/native.ts';
import { setProfiling, resetProfile } from '../ts/engine/profile.ts';
import { BENCH_MODEL, WORKLOADS } from '../ts/engine/workloads.ts';
import { emit, flag, interleaved, machineLoad, median, quick, timeit, TorchReference } from './_lib.ts';
import { cudaBench } from './_cuda.ts';

if (await cudaBench('train-step')) process.exit(0);  // --backend=cuda: the GPU variant (bench/_cuda.ts)

const threads = flag('threads', 2);
const B = 8, T = 256, reps = quick ? 5 : 15;
const cfg = { ...BENCH_MODEL, max_position_embeddings: T };
const config = { ...cfg, batch: B, seq: T, threads, gemm: native.buildInfo().gemm, reps, interleaved: true };
const baselineRss = process.memoryUsage().rss;

const engine = await Engine.create({ threads, seed: 1 });
const train = await WORKLOADS['train-step'].setup(engine);
const model = train.model;
await train.run();
// Memory (measured before the forward-only and GEMM runs allocate more): params + grads + Adam m, v (4 floats per parameter) + activations, beside the measured peak.
const theoreticalMb = (model.numParameters * 4 * 4 + model.activationBytes) / 2 ** 20;
const peakMb = process.resourceUsage().maxRSS / 1024;
emit({ bench: 'train-step', figure: 'peak_rss_mb', value: peakMb, unit: 'MiB',
  config: { ...config, node_baseline_mb: Math.round(baselineRss / 2 ** 20), theoretical_mb: Math.round(theoreticalMb),
    params: model.numParameters, activation_mb: Math.round(model.activationBytes / 2 ** 20) },
  reference: { name: 'theoretical params+grads+adam+activations (+ node baseline)', value: theoreticalMb + baselineRss / 2 ** 20, source: 'target: peak within 1.5x' } });
emit({ bench: 'train-step', figure: 'peak_rss_over_theoretical', value: (peakMb - baselineRss / 2 ** 20) / theoreticalMb, unit: 'x', config,
  reference: { name: 'target', value: 1.5, source: 'DESIGN.md section 7' } });

// ---- ours and PyTorch, alternated repetition by repetition
const torch = await TorchReference.start({ vocab: cfg.vocab_size, hidden: cfg.hidden_size, layers: cfg.num_hidden_layers,
  heads: cfg.num_attention_heads, intermediate: cfg.intermediate_size, batch: B, seq: T, max_pos: T }, threads);
const ref = torch instanceof TorchReference ? torch : null;
const why = torch instanceof TorchReference ? undefined : torch.reason;
const refName = ref ? `${ref.describe()} measured side by side` : 'pytorch';

async function sideBySide(figure: string, ratioFigure: string, run: () => Promise<unknown>, what: 'train' | 'forward') {
  const loadBefore = machineLoad();
  const r = await interleaved(run, ref ? () => ref.run(what) : null, reps, 2);
  const load = [loadBefore, machineLoad()];
  const ours = (B * T) / median(r.ours);
  const theirs = ref ? (B * T) / median(r.theirs) : null;
  // Per pair of neighbouring repetitions: how steady the ratio is under the machine's noise.
  const pairs = r.theirs.map((t, i) => t / r.ours[i]).sort((a, b) => a - b);
  emit({ bench: 'train-step', figure, value: ours, unit: 'tokens/s', config: { ...config, best: Math.round((B * T) / Math.min(...r.ours)) },
    reference: theirs !== null ? { name: refName, value: theirs, source: 'bench/reference/llama_torch.py, interleaved in this run' } : null,
    ...(why ? { note: `no side-by-side reference: ${why}` } : {}) });
  emit({ bench: 'train-step', figure: ratioFigure, value: theirs !== null ? ours / theirs : null, unit: 'x',
    config: { ...config, load_per_core: load, ...(pairs.length ? { pair_ratio_min: +pairs[0].toFixed(3), pair_ratio_max: +pairs[pairs.length - 1].toFixed(3) } : {}) },
    reference: { name: 'target', value: what === 'train' ? 1.5 : 1.2, source: 'DESIGN.md section 7 / issue #15' },
    ...(why ? { note: `null: ${why}` } : {}) });
  return { ours, theirs };
}

const tr = await sideBySide('tokens_per_s', 'ratio_vs_pytorch', train.run, 'train');
// ~6 * params-ish FLOPs per token: 2 (fwd) + 4 (bwd) per weight, plus attention
const flopsPerToken = 6 * (model.numParameters - cfg.vocab_size * cfg.hidden_size) + 12 * cfg.num_hidden_layers * T * cfg.hidden_size / 2;
emit({ bench: 'train-step', figure: 'model_gflops', value: (tr.ours * flopsPerToken) / 1e9, unit: 'GFLOP/s', config,
  reference: { name: 'fp32-fma-peak-2-cores', value: (await native.profiler.peaks({ threads })).fmaGflops, source: 'measured by the profiler (per core x threads)' } });

const fwd = await WORKLOADS.forward.setup(engine);
await sideBySide('forward_tokens_per_s', 'forward_ratio_vs_pytorch', fwd.run, 'forward');
ref?.close();

// ---- the profiler's cost: steps with profiling off, aggregating, and tracing, interleaved
{
  const modes = ['off', 'aggregate', 'trace'] as const;
  const times: Record<string, number[]> = { off: [], aggregate: [], trace: [] };
  for (let i = 0; i < reps; i++)
    for (let j = 0; j < modes.length; j++) {  // the order rotates, so no mode always follows another
      const m = modes[(i + j) % modes.length];
      setProfiling(m);
      const t = process.hrtime.bigint();
      await train.run();
      times[m].push(Number(process.hrtime.bigint() - t) / 1e9);
      resetProfile();
    }
  setProfiling('off');
  // Medians, and the best repetitions (the least disturbed by other work on a shared machine).
  for (const m of ['aggregate', 'trace'] as const)
    emit({ bench: 'train-step', figure: `profiler_overhead_${m}`, value: median(times[m]) / median(times.off) - 1, unit: 'fraction',
      config: { ...config, workload: 'train-step', best_of_reps: +(Math.min(...times[m]) / Math.min(...times.off) - 1).toFixed(4) },
      reference: { name: 'target', value: 0.05, source: 'issue #15: < 5% when on (< 1% off: see README "Profiling", instruction counts)' } });
}

// GEMM on the model's shapes: [M,N,K], transA, transB as the linear layers call it (y = x W^T; dW = dy^T x; dx = dy W).
const BT = B * T, C = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size;
const shapes: [string, number, number, number, boolean, boolean][] = [
  ['qkvo_fwd', BT, C, C, false, true], ['mlp_up_fwd', BT, I, C, false, true], ['mlp_down_fwd', BT, C, I, false, true],
  ['lm_head_fwd', BT, V, C, false, true], ['lm_head_dx', BT, C, V, false, false], ['lm_head_dw', V, C, BT, true, false],
  ['mlp_up_dw', I, C, BT, true, false],
];
for (const [name, M, N, K, ta, tb] of shapes) {
  const A = new Float32Array(M * K).fill(0.01), Bm = new Float32Array(K * N).fill(0.02), Cm = new Float32Array(M * N);
  const t = await timeit(() => native.sgemm({ transA: ta, transB: tb, M, N, K, A, B: Bm, C: Cm, threads }), quick ? 3 : 7, 1);
  emit({ bench: 'train-step', figure: `gemm_gflops_${name}`, value: (2 * M * N * K) / median(t) / 1e9, unit: 'GFLOP/s',
    config: { M, N, K, transA: ta, transB: tb, threads, impl: native.buildInfo().gemm },
    reference: { name: 'openblas', value: 175, source: 'issue #2: OpenBLAS sgemm 150-200 GFLOP/s on these shapes (bench/gemm.ts measures it side by side)' } });
}
