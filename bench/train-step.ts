// Training step (forward + backward + AdamW) and forward-only throughput of the #2 model, GEMM GFLOP/s on
// its shapes, and peak resident memory beside the theoretical need. Optional side-by-side PyTorch run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Engine } from '../ts/engine/index.ts';
import { native } from '../ts/engine/native.ts';
import { emit, median, quick, timeit } from './_lib.ts';
import { cudaBench } from './_cuda.ts';

if (await cudaBench('train-step')) process.exit(0);  // --backend=cuda: the GPU variant (bench/_cuda.ts)

const threads = 2;
const cfg = { vocab_size: 4096, hidden_size: 256, intermediate_size: 683, num_hidden_layers: 4, num_attention_heads: 4,
  num_key_value_heads: 4, max_position_embeddings: 256, tie_word_embeddings: false };
const B = 8, T = 256, reps = quick ? 3 : 10;
const config = { ...cfg, batch: B, seq: T, threads, gemm: native.buildInfo().gemm };
const baselineRss = process.memoryUsage().rss;

const engine = await Engine.create({ threads, seed: 1 });
const model = engine.createModel(cfg);
const opt = engine.createOptimizer(model, { lr: 1e-4, weightDecay: 0.1 });
const tokens = new Int32Array(B * T), targets = new Int32Array(B * T), weights = new Float32Array(B * T).fill(1 / (B * T));
for (let i = 0; i < tokens.length; i++) { tokens[i] = (i * 2654435761) % cfg.vocab_size >>> 0; targets[i] = (tokens[i] * 7 + 3) % cfg.vocab_size; }
const batch = { tokens, targets, weights, batch: B, seqLen: T, numTargets: B * T };

const train = await timeit(() => engine.sftStep(model, batch, opt), reps, 2);
const trainTps = (B * T) / median(train);
// Memory (measured before the forward-only and GEMM runs allocate more): params + grads + Adam m, v (4 floats per parameter) + activations, beside the measured peak.
const theoreticalMb = (model.numParameters * 4 * 4 + model.activationBytes) / 2 ** 20;
const peakMb = process.resourceUsage().maxRSS / 1024;
emit({ bench: 'train-step', figure: 'peak_rss_mb', value: peakMb, unit: 'MiB',
  config: { ...config, node_baseline_mb: Math.round(baselineRss / 2 ** 20), theoretical_mb: Math.round(theoreticalMb),
    params: model.numParameters, activation_mb: Math.round(model.activationBytes / 2 ** 20) },
  reference: { name: 'theoretical params+grads+adam+activations (+ node baseline)', value: theoreticalMb + baselineRss / 2 ** 20, source: 'target: peak within 1.5x' } });
emit({ bench: 'train-step', figure: 'peak_rss_over_theoretical', value: (peakMb - baselineRss / 2 ** 20) / theoreticalMb, unit: 'x', config,
  reference: { name: 'target', value: 1.5, source: 'DESIGN.md section 7' } });

const torch = runTorch();
emit({ bench: 'train-step', figure: 'tokens_per_s', value: trainTps, unit: 'tokens/s', config,
  reference: { name: 'pytorch-1.13', value: 4600, source: 'issue #2: tuned PyTorch 1.13 (OpenBLAS OpenMP), same machine kind; target 1.4x = 6,400' } });
// ~6 * params-ish FLOPs per token: 2 (fwd) + 4 (bwd) per weight, plus attention
const flopsPerToken = 6 * (model.numParameters - cfg.vocab_size * cfg.hidden_size) + 12 * cfg.num_hidden_layers * T * cfg.hidden_size / 2;
emit({ bench: 'train-step', figure: 'model_gflops', value: (trainTps * flopsPerToken) / 1e9, unit: 'GFLOP/s', config,
  reference: { name: 'fp32-fma-peak-2-cores', value: 234, source: 'DESIGN.md section 7' } });
if (torch) emit({ bench: 'train-step', figure: 'ratio_vs_pytorch', value: trainTps / torch.train_tokens_per_s, unit: 'x', config,
  reference: { name: `pytorch-${torch.torch} measured side by side`, value: torch.train_tokens_per_s, source: 'bench/reference/train_step_torch.py, this run' } });

const fwd = await timeit(() => engine.forward(model, tokens, { batch: B, targets, logits: false }), reps, 1);
const fwdTps = (B * T) / median(fwd);
emit({ bench: 'train-step', figure: 'forward_tokens_per_s', value: fwdTps, unit: 'tokens/s', config,
  reference: { name: 'onnxruntime-node', value: 14350, source: 'issue #2: same model forward, same machine kind; target 1.2x = 17,220' } });
if (torch) emit({ bench: 'train-step', figure: 'forward_ratio_vs_pytorch', value: fwdTps / torch.forward_tokens_per_s, unit: 'x', config,
  reference: { name: `pytorch-${torch.torch} measured side by side`, value: torch.forward_tokens_per_s, source: 'this run' } });

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

function runTorch(): { train_tokens_per_s: number; forward_tokens_per_s: number; torch: string } | null {
  if (process.argv.includes('--no-torch')) return null;
  // Debian's python3-torch lives under the system Python, which a pyenv `python3` on PATH may shadow.
  const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
  const ok = python !== undefined;
  if (!ok) { console.error('train-step: PyTorch not found (apt-get install python3-torch libopenblas0-openmp); skipping the side-by-side run'); return null; }
  const omp = '/usr/lib/x86_64-linux-gnu/openblas-openmp';
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), ...(existsSync(omp) ? { LD_LIBRARY_PATH: omp } : {}) };
  const args = JSON.stringify({ vocab: cfg.vocab_size, hidden: cfg.hidden_size, layers: cfg.num_hidden_layers, heads: cfg.num_attention_heads,
    intermediate: cfg.intermediate_size, batch: B, seq: T, threads, reps: quick ? 3 : 7 });
  const r = spawnSync(python!, [new URL('./reference/train_step_torch.py', import.meta.url).pathname, args], { env, encoding: 'utf8' });
  if (r.status !== 0) { console.error(`train-step: PyTorch reference failed: ${r.stderr.slice(-500)}`); return null; }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}
