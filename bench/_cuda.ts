// The GPU variants of bench gemm / train-step / sample / ppo-step (`npm run bench -- NAME --backend=cuda`,
// scripts/gpu-check.sh). Every line names the device; configs: #2 (hidden 256, 4 layers, vocab 4096: the CPU
// benches' model, "c1") and a ~125M-parameter LLaMA-style model (hidden 768, 12 layers, 12 heads,
// intermediate 2048, vocab 32000). GEMM figures are set against the device's nominal peak, computed as
// multiprocessors x max clock x dense FLOP per clock per multiprocessor of its architecture.
import { Engine, type ModelConfig } from '../ts/engine/index.ts';
import { native } from '../ts/engine/native.ts';
import { ppoStep, type Rollouts } from '../ts/engine/ppo.ts';
import { emit, median, quick, timeit, type Figure } from './_lib.ts';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  if (eq) return eq.slice(name.length + 3);
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};

/** Runs the GPU variant of a bench when --backend=cuda was given; returns false otherwise. */
export async function cudaBench(name: 'gemm' | 'train-step' | 'sample' | 'ppo-step'): Promise<boolean> {
  if (opt('backend') !== 'cuda') return false;
  const info = Engine.cudaInfo();
  if (!info.available) {
    console.error(`bench ${name}: --backend=cuda, but the CUDA backend is unavailable: ${info.reason}`);
    process.exit(2);
  }
  const gemm = (opt('cuda-gemm') ?? 'tf32') as 'tf32' | 'fp32';
  const engine = await Engine.create({ backend: 'cuda', seed: 1, cudaGemm: gemm });
  await BENCHES[name](engine, gemm);
  return true;
}

const C1: ModelConfig = { vocab_size: 4096, hidden_size: 256, intermediate_size: 683, num_hidden_layers: 4, num_attention_heads: 4,
  num_key_value_heads: 4, max_position_embeddings: 512 };
const M125: ModelConfig = { vocab_size: 32000, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12,
  num_key_value_heads: 12, max_position_embeddings: 1024 };
// --smoke: tiny sizes that check the plumbing end to end (also under the CPU emulation); no figures to quote.
const smoke = args.includes('--smoke');
const TINY: ModelConfig = { vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 2,
  num_key_value_heads: 2, max_position_embeddings: 64 };
const MODELS = (smoke ? [['smoke', TINY]] : quick ? [['c1', C1]] : [['c1', C1], ['125M', M125]]) as [string, ModelConfig][];

function device(engine: Engine) {
  const d = engine.device;
  return { name: d.name, computeCapability: d.computeCapability, multiprocessors: d.multiprocessors, memoryGiB: d.memoryBytes ? Math.round(d.memoryBytes / 2 ** 30) : undefined,
    emulated: d.emulated || undefined };
}
function out(engine: Engine, f: Figure): void {
  emit({ ...f, config: { ...f.config, device: device(engine), ...(f.config?.precision ? {} : { gemm: engine.device.gemm }) } });
}

// Dense FLOP per clock per multiprocessor: [TF32 tensor cores, FP32 CUDA cores] (NVIDIA architecture
// whitepapers: A100 156 / 19.5 TFLOPS at 108 SMs x 1410 MHz; GA10x and Ada 256 / 256; H100 2048 / 256).
const PER_SM: Record<string, [number, number]> = { '8.0': [1024, 128], '8.6': [256, 256], '8.7': [256, 256], '8.9': [256, 256], '9.0': [2048, 256] };
function nominalPeak(precision: 'tf32' | 'fp32'): { tflops: number; source: string } | null {
  const d = Engine.cudaInfo().device;
  const rate = d && PER_SM[d.computeCapability];
  if (!d || !rate || !d.clockMHz) return null;
  const per = precision === 'tf32' ? rate[0] : rate[1];
  return { tflops: (d.multiprocessors * d.clockMHz * 1e6 * per) / 1e12,
    source: `${d.multiprocessors} SMs x ${d.clockMHz} MHz (max clock) x ${per} dense ${precision} FLOP/clock/SM (sm_${d.computeCapability.replace('.', '')})` };
}

const BENCHES: Record<string, (engine: Engine, gemm: 'tf32' | 'fp32') => Promise<void>> = {
  async gemm(engine) {
    const reps = quick ? 5 : 20;
    const shapes: [string, number, number, number, boolean, boolean][] = [
      ['square 4096', 4096, 4096, 4096, false, false],
      ['square 8192', 8192, 8192, 8192, false, false],
      ['c1 mlp_up fwd', 2048, 683, 256, false, true], ['c1 lm_head fwd', 2048, 4096, 256, false, true],
      ['c1 lm_head dW', 4096, 256, 2048, true, false],
      ['125M qkv fwd', 8192, 2304, 768, false, true], ['125M mlp_up fwd', 8192, 2048, 768, false, true],
      ['125M mlp_down dX', 8192, 2048, 768, false, false], ['125M mlp_up dW', 2048, 768, 8192, true, false],
      ['125M lm_head fwd', 8192, 32000, 768, false, true],
      ['decode 125M mlp_up (8 rows)', 8, 2048, 768, false, true],
    ];
    if (smoke) shapes.splice(0, shapes.length, ['smoke', 64, 48, 40, false, true], ['smoke rows', 3, 48, 40, false, true]);
    for (const precision of ['tf32', 'fp32'] as const) {
      const peak = nominalPeak(precision);
      for (const [name, M, N, K, ta, tb] of shapes) {
        if (quick && name.includes('8192')) continue;
        const { msPerCall } = native.cudaBench.gemm({ M, N, K, transA: ta, transB: tb, precision, reps: M * N * K > 1e11 ? Math.max(3, reps >> 2) : reps });
        const tflops = (2 * M * N * K) / (msPerCall * 1e-3) / 1e12;
        out(engine, { bench: 'gemm', figure: `cuda ${precision} ${name} ${M}x${N}x${K}${ta ? ' transA' : ''}${tb ? ' transB' : ''}`, value: tflops, unit: 'TFLOP/s',
          config: { precision, M, N, K, transA: ta, transB: tb, msPerCall: Number(msPerCall.toPrecision(4)), share_of_peak: peak ? Number((tflops / peak.tflops).toFixed(3)) : null },
          reference: peak ? { name: `nominal ${precision} peak`, value: Number(peak.tflops.toFixed(1)), source: peak.source } : null });
      }
    }
  },

  async 'train-step'(engine) {
    for (const [label, cfg] of MODELS) {
      const B = smoke ? 2 : 8, T = smoke ? 16 : label === 'c1' ? 256 : 512, reps = smoke ? 1 : quick ? 3 : 10;
      const model = engine.createModel(cfg);
      const opt = engine.createOptimizer(model, { lr: 1e-4, weightDecay: 0.1 });
      const tokens = new Int32Array(B * T), targets = new Int32Array(B * T), weights = new Float32Array(B * T).fill(1 / (B * T));
      for (let i = 0; i < tokens.length; i++) { tokens[i] = ((i * 2654435761) >>> 0) % cfg.vocab_size; targets[i] = (tokens[i] * 7 + 3) % cfg.vocab_size; }
      const batch = { tokens, targets, weights, batch: B, seqLen: T, numTargets: B * T };
      const train = await timeit(() => engine.sftStep(model, batch, opt), reps, 2);
      const tps = (B * T) / median(train);
      const config = { model: label, params: model.numParameters, batch: B, seq: T, reps, activation_mib: Math.round(model.activationBytes / 2 ** 20) };
      const flopsPerToken = 6 * model.numParameters + 6 * cfg.num_hidden_layers * T * cfg.hidden_size;
      out(engine, { bench: 'train-step', figure: `cuda ${label} tokens_per_s`, value: tps, unit: 'tokens/s', config, reference: null });
      out(engine, { bench: 'train-step', figure: `cuda ${label} model_tflops`, value: (tps * flopsPerToken) / 1e12, unit: 'TFLOP/s', config,
        reference: nominalPeak('tf32') ? { name: 'nominal tf32 peak', value: Number(nominalPeak('tf32')!.tflops.toFixed(1)), source: nominalPeak('tf32')!.source } : null });
      const fwd = await timeit(() => engine.forward(model, tokens, { batch: B, targets, logits: false }), reps, 1);
      out(engine, { bench: 'train-step', figure: `cuda ${label} forward_tokens_per_s`, value: (B * T) / median(fwd), unit: 'tokens/s', config, reference: null });
    }
  },

  async sample(engine) {
    for (const [label, cfg] of MODELS) {
      const model = engine.createModel(cfg);
      const B = smoke ? 2 : 8, P = smoke ? 4 : 32, NEW = smoke ? 4 : 128, reps = smoke ? 1 : quick ? 3 : 7;
      const prompts = Array.from({ length: B }, (_, b) => Array.from({ length: P }, (_, t) => (b * 131 + t * 17 + 1) % cfg.vocab_size));
      const times = await timeit(() => engine.generate(model, prompts, { maxNewTokens: NEW, temperature: 1, stepsPerCall: NEW }), reps, 1);
      const config = { model: label, params: model.numParameters, batch: B, prompt: P, newTokens: NEW, includesPrefill: true, reps };
      out(engine, { bench: 'sample', figure: `cuda ${label} new_tokens_per_s`, value: (B * NEW) / median(times), unit: 'tokens/s', config, reference: null });
      const timesP = await timeit(() => engine.generate(model, prompts, { maxNewTokens: NEW, temperature: 1, topP: 0.9, topK: 50, stepsPerCall: NEW }), reps, 1);
      out(engine, { bench: 'sample', figure: `cuda ${label} new_tokens_per_s top-k 50 top-p 0.9`, value: (B * NEW) / median(timesP), unit: 'tokens/s', config, reference: null });
    }
  },

  async 'ppo-step'(engine) {
    const cfg = { ...(smoke ? TINY : C1), scalar_head: true, max_position_embeddings: 256 };
    const B = smoke ? 4 : 64, P = smoke ? 4 : 64, R = smoke ? 8 : 64, T = P + R;
    const policy = engine.createModel(cfg), ref = engine.createModel(cfg);
    ref.copyFrom(policy);
    const tokens = new Int32Array(B * T), mask = new Uint8Array(B * T), scores = new Float32Array(B);
    for (let b = 0; b < B; b++) {
      const len = Math.max(1, R - (b % 8) * (smoke ? 1 : 4));
      for (let t = 0; t < T; t++) tokens[b * T + t] = ((b * 131 + t * 2654435761) >>> 0) % cfg.vocab_size;
      for (let t = P - 1; t < P - 1 + len && t < T - 1; t++) mask[b * T + t] = 1;
      scores[b] = Math.sin(b);
    }
    const rollouts: Rollouts = { tokens, batch: B, seqLen: T, responseMask: mask, scores };
    const ppo = { miniBatchSize: B / 2, gradientAccumulationSteps: 4, ppoEpochs: 2 };
    const stats: Record<string, number>[] = [];
    const times = await timeit(async () => { stats.push(await ppoStep(engine, { policy, ref, rollouts, config: ppo }) as unknown as Record<string, number>); }, smoke ? 1 : quick ? 2 : 5, smoke ? 0 : 1);
    const config = { model: `${smoke ? 'smoke' : 'c1'} + value head, frozen reference`, rollouts: B, prompt: P, response: R, ...ppo };
    const stepMs = median(times) * 1e3;
    out(engine, { bench: 'ppo-step', figure: 'cuda step_ms', value: stepMs, unit: 'ms', config, reference: null });
    const share = median(stats.map((s) => s['time/rl_kernels_ms'])) / stepMs;
    out(engine, { bench: 'ppo-step', figure: 'cuda rl_kernels_share', value: share, unit: 'fraction', config,
      reference: { name: 'target', value: 0.02, source: 'DESIGN.md section 7 (RL kernels on the host, over per-token arrays)' } });
    out(engine, { bench: 'ppo-step', figure: 'cuda step_tokens_per_s', value: (B * T * (ppo.ppoEpochs + 2)) / (stepMs / 1e3), unit: 'tokens/s', config, reference: null });
  },
};
