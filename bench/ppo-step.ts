// RL kernels (KL rewards, whitening, GAE, PPO losses) beside a full ppoStep on the #2 model config:
// 64 rollouts of 64 prompt + 64 response tokens, one model with LM and value heads plus a frozen reference.
// Target (DESIGN.md section 7): GAE, losses and KL together under 2% of the step.
import { Engine } from '../ts/engine/index.ts';
import { native } from '../ts/engine/native.ts';
import { ppoStep } from '../ts/engine/ppo.ts';
import { syntheticRollouts } from '../ts/engine/workloads.ts';
import { gae, klPenalizedRewards, ppoLoss, whiten } from '../ts/engine/rl.ts';
import { emit, flag, median, quick, timeit } from './_lib.ts';
import { cudaBench } from './_cuda.ts';

if (await cudaBench('ppo-step')) process.exit(0);  // --backend=cuda: the GPU variant (bench/_cuda.ts)

const threads = 2;
const cfg = { vocab_size: 4096, hidden_size: 256, intermediate_size: 683, num_hidden_layers: 4, num_attention_heads: 4,
  num_key_value_heads: 4, max_position_embeddings: 256, tie_word_embeddings: false, scalar_head: true };
const B = flag('rollouts', 64), P = flag('prompt', 64), R = flag('response', 64), T = P + R;
const ppo = { miniBatchSize: B / 2, gradientAccumulationSteps: 4, ppoEpochs: 2 };
const config = { model: 'hidden 256, 4 layers, 4 heads, vocab 4096, intermediate 683', rollouts: B, prompt: P, response: R, ...ppo, threads, gemm: native.buildInfo().gemm };

const engine = await Engine.create({ threads, seed: 1 });
const policy = engine.createModel(cfg), ref = engine.createModel(cfg);
ref.copyFrom(policy);

const rollouts = syntheticRollouts(B, P, R, cfg.vocab_size);
const { responseMask: mask, scores } = rollouts;

// The kernels alone, on the same batch (what a phase runs: rewards, 2 whitenings, GAE, one loss per micro-batch
// covering every rollout once per epoch; timed here as full-batch calls, 2 epochs).
const n = B * T;
const rnd = (s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5 - 1);
const logp = rnd(1), refLogp = rnd(2), values = rnd(3), entropy = rnd(4).map((x) => -x);
const kernels = () => {
  const kl = klPenalizedRewards({ logp, refLogp, mask, scores, batch: B, seqLen: T, klCoef: 0.0067, clamp: true });
  const rw = whiten(kl.rewards, { mask, shiftMean: false }).out;
  const g = gae({ rewards: rw, values, mask, batch: B, seqLen: T, gamma: 1, lambda: 1 });
  const adv = whiten(g.advantages, { mask }).out;
  for (let e = 0; e < ppo.ppoEpochs; e++)
    ppoLoss({ mask, logp: refLogp, oldLogp: logp, advantages: adv, values: refLogp, oldValues: values, returns: g.returns, entropy, normalizer: n / 2 });
};
const kt = await timeit(kernels, quick ? 20 : 100, 5);
const kernelsMs = median(kt) * 1e3;
emit({ bench: 'ppo-step', figure: 'kernels_ms', value: kernelsMs, unit: 'ms', config,
  reference: { name: 'budget-2pct-of-step', value: NaN, source: 'DESIGN.md section 7 (see kernels_share)' } });

const reps = quick ? 1 : 3;
const stats: Awaited<ReturnType<typeof ppoStep>>[] = [];
await ppoStep(engine, { policy, ref, rollouts, config: ppo });  // warm-up: activation buffers, optimizer state
for (let i = 0; i < reps; i++) stats.push(await ppoStep(engine, { policy, ref, rollouts, config: ppo }));
const med = (k: keyof (typeof stats)[number]) => median(stats.map((s) => s[k] as number));
const stepMs = med('time/total_ms');
const ref2pct = { name: 'target', value: 0.02, source: 'DESIGN.md section 7: GAE, losses and KL under 2% of a PPO step' };
emit({ bench: 'ppo-step', figure: 'step_ms', value: stepMs, unit: 'ms', config, reference: null });
for (const [k, name] of [['time/recompute_ms', 'recompute_ms'], ['time/forward_backward_ms', 'forward_backward_ms'], ['time/optimizer_ms', 'optimizer_ms'], ['time/rl_kernels_ms', 'in_step_kernels_ms']] as const)
  emit({ bench: 'ppo-step', figure: name, value: med(k), unit: 'ms', config, reference: null });
emit({ bench: 'ppo-step', figure: 'kernels_share', value: kernelsMs / stepMs, unit: 'fraction', config, reference: ref2pct });
emit({ bench: 'ppo-step', figure: 'in_step_kernels_share', value: med('time/rl_kernels_ms') / stepMs, unit: 'fraction', config, reference: ref2pct });

// Share of the step outside GEMM, estimated: the step's GEMMs (shapes and counts of the model's forward and
// backward per micro-batch) replayed through native.sgemm, against the measured step time.
const M = (B / 2 / ppo.gradientAccumulationSteps) * T, C = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size, L = cfg.num_hidden_layers;
const fwdShapes: [number, number, number][] = [...Array(4).fill([M, C, C]), [M, I, C], [M, I, C], [M, C, I]];
const gemmTime = async (m: number, nn: number, k: number, ta: boolean, tb: boolean) => {
  const A = new Float32Array(m * k).fill(0.01), Bm = new Float32Array(k * nn).fill(0.02), Cm = new Float32Array(m * nn);
  return median(await timeit(() => native.sgemm({ transA: ta, transB: tb, M: m, N: nn, K: k, A, B: Bm, C: Cm, threads }), quick ? 2 : 5, 1));
};
let fwdGemm = 0, bwdGemm = 0;
for (const [m, nn, k] of [...Array(L).fill(fwdShapes).flat(), [M, V, C]] as [number, number, number][]) {
  const f = await gemmTime(m, nn, k, false, true);
  fwdGemm += f;
  bwdGemm += (await gemmTime(m, k, nn, false, false)) + (await gemmTime(nn, k, m, true, false));  // dx, dW
}
const microBatches = (B * T) / M;
const gemmMs = microBatches * (2 * fwdGemm + ppo.ppoEpochs * (fwdGemm + bwdGemm)) * 1e3;  // recompute (policy, ref) + training
emit({ bench: 'ppo-step', figure: 'non_gemm_share', value: Math.max(0, 1 - gemmMs / stepMs), unit: 'fraction',
  config: { ...config, estimated_gemm_ms: Math.round(gemmMs), method: 'GEMMs of the step replayed with native.sgemm on the same shapes' },
  reference: null });
emit({ bench: 'ppo-step', figure: 'step_tokens_per_s', value: (B * T * (ppo.ppoEpochs + 2)) / (stepMs / 1e3), unit: 'tokens/s',
  config: { ...config, counted: 'recompute (policy + ref) and ppoEpochs training passes over every rollout token' }, reference: null });
