// The CUDA backend against the CPU backend through the public API: the same seeded models give the same
// forward outputs, gradients, optimizer steps, training steps, samples (same seed) and PPO steps; the host
// mirrors stay coherent; results repeat bit for bit; bad calls are Errors. GEMMs run in exact fp32 here
// (cudaGemm 'fp32'), except in the test that bounds the TF32 mode's drift.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, type Model, type ModelConfig } from '../../ts/engine/index.ts';
import { ppoStep, type Rollouts } from '../../ts/engine/ppo.ts';
import { packSequences } from '../../ts/engine/rl.ts';
import { native } from '../../ts/engine/native.ts';
import { close, cuda, cudaTest, equal, rand, randInt, rejects, size } from './helpers.ts';

const cpu = await Engine.create({ backend: 'cpu', threads: 2, seed: 5 });
const gpu = cuda.available ? await Engine.create({ backend: 'cuda', threads: 2, seed: 5, cudaGemm: 'fp32' }) : cpu;

const tiny: ModelConfig = {
  vocab_size: 61, hidden_size: 32, intermediate_size: 44, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, max_position_embeddings: 40, rms_norm_eps: 1e-5,
};

function pair(cfg: ModelConfig, seed = 3, initStd = 0.2): [Model, Model] {
  const a = cpu.createModel(cfg, { seed, initStd }), b = gpu.createModel(cfg, { seed, initStd });
  return [a, b];
}
function paramsOf(m: Model): Float32Array[] { return m.parameters().map((p) => new Float32Array(p.data)); }
function gradsOf(m: Model): Float32Array[] { return m.gradients().map((p) => new Float32Array(p.data)); }
function batchOf(B: number, T: number, V: number, seed: number, promptLen = 3) {
  const tokens = randInt(B * T, seed, V), targets = new Int32Array(B * T).fill(-1), weights = new Float32Array(B * T);
  for (let b = 0; b < B; b++)
    for (let t = promptLen - 1; t < T - 1 - (b % 3); t++) { targets[b * T + t] = tokens[b * T + t + 1]; weights[b * T + t] = 1 / (B * T); }
  return { tokens, targets, weights, batch: B, seqLen: T, numTargets: B * T };
}

cudaTest('a model has the same seeded weights and the backend it was made on; views stay coherent both ways', async () => {
  assert.is(gpu.backend, 'cuda');
  assert.ok(gpu.device.name.length > 0);
  const [a, b] = pair(tiny);
  assert.is(a.backend, 'cpu');
  assert.is(b.backend, 'cuda');
  const pa = paramsOf(a), pb = paramsOf(b);
  pa.forEach((x, i) => equal(pb[i], x, `initial ${a.parameters()[i].name}`));
  // writes through views reach the device before the next operation
  const B = 2, T = 6, { tokens } = batchOf(B, T, tiny.vocab_size, 1);
  const before = await gpu.forward(b, tokens, { batch: B });
  b.parameters()[0].data.fill(0);  // the embedding
  a.parameters()[0].data.fill(0);
  const ra = await cpu.forward(a, tokens, { batch: B }), rb = await gpu.forward(b, tokens, { batch: B });
  close(rb.logits!, ra.logits!, 1e-5, 1e-4, 'logits after writing zeros to the embedding');
  assert.ok(Math.abs(before.logits![0] - rb.logits![0]) > 1e-6, 'the write did not reach the device');
  // copyFrom across backends, both ways
  const [c, d] = pair(tiny, 9);
  d.copyFrom(a);
  equal(paramsOf(d)[0], paramsOf(a)[0], 'copyFrom cpu -> cuda');
  c.copyFrom(b);
  paramsOf(c).forEach((x, i) => equal(x, paramsOf(b)[i], `copyFrom cuda -> cpu ${i}`));
});

for (const variant of [{}, { tie_word_embeddings: true }, { scalar_head: true }, { lm_head: false, scalar_head: true }] as Partial<ModelConfig>[]) {
  cudaTest(`forward and backward match the CPU backend (${JSON.stringify(variant)})`, async () => {
    const cfg = { ...tiny, ...variant };
    const [a, b] = pair(cfg, 4);
    for (const m of [a, b]) for (const p of m.parameters()) if (p.name.startsWith('score')) p.data.set(rand(p.data.length, 3, 0.5));
    const B = 3, T = size(17, 9), { tokens, targets } = batchOf(B, T, cfg.vocab_size, 2);
    const lm = cfg.lm_head !== false;
    for (const opts of lm ? [{ targets, entropy: true }, { logits: true, entropy: true }, { targets, logits: true, hidden: true }] : [{}, { hidden: true }]) {
      const ra = await cpu.forward(a, tokens, { batch: B, ...opts }), rb = await gpu.forward(b, tokens, { batch: B, ...opts });
      for (const k of ['logits', 'logp', 'entropy', 'values', 'hidden'] as const) {
        assert.is(rb[k] === undefined, ra[k] === undefined, `${k} present on one backend only`);
        if (ra[k]) close(rb[k]!, ra[k]!, 2e-5, 2e-4, `forward ${JSON.stringify(Object.keys(opts))} ${k}`);
      }
    }
    // backward from arbitrary per-position gradients (log-prob, entropy, value) and one on the final hidden state
    const n = B * T, dl = rand(n, 7), de = rand(n, 8), dv = rand(n, 9), dh = rand(n * cfg.hidden_size, 10);
    const grads = { ...(lm ? { dlogp: dl, dentropy: de } : {}), ...(cfg.scalar_head ? { dvalues: dv } : {}), dhidden: dh };
    for (const [e, m] of [[cpu, a], [gpu, b]] as const) {
      m.zeroGrad();
      await e.forward(m, tokens, { batch: B, targets: lm ? targets : undefined, train: true, entropy: lm, logits: false });
      await e.backward(m, grads);
    }
    const ga = gradsOf(a), gb = gradsOf(b), names = a.gradients().map((p) => p.name);
    ga.forEach((g, i) => {
      let scale = 0;
      for (const x of g) scale = Math.max(scale, Math.abs(x));
      close(gb[i], g, 1e-4 * Math.max(scale, 1e-3), 1e-3, `gradient ${names[i]}`);
    });
    close([b.gradNorm()], [a.gradNorm()], 0, 1e-4, 'gradient norm');
  });
}

cudaTest('AdamW: the same gradients give the same step (decay on weights only, clipping)', async () => {
  const [a, b] = pair(tiny, 6);
  const oa = cpu.createOptimizer(a, { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 0.5 });
  const ob = gpu.createOptimizer(b, { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 0.5 });
  for (let step = 0; step < 3; step++) {
    const g = a.gradients().map((p, i) => rand(p.data.length, 100 * step + i, 0.3));
    a.gradients().forEach((p, i) => p.data.set(g[i]));
    b.gradients().forEach((p, i) => p.data.set(g[i]));
    const sa = await oa.adamw.step(1e-2, 0.5), sb = await ob.adamw.step(1e-2, 0.5);
    close([sb.gradNorm], [sa.gradNorm], 0, 1e-6, 'pre-clip gradient norm');
    assert.is(sb.clipped, sa.clipped);
  }
  const pa = paramsOf(a), pb = paramsOf(b);
  pa.forEach((x, i) => close(pb[i], x, 1e-6, 1e-5, `weights after 3 AdamW steps, ${a.parameters()[i].name}`));
  const ma = oa.adamw.state(), mb = ob.adamw.state();
  assert.is(mb.step, 3);
  close(mb.m, ma.m, 1e-7, 1e-5, 'first moments');
  close(mb.v, ma.v, 1e-9, 1e-5, 'second moments');
});

cudaTest('a whole training step (sftStep: forward, backward, clipping, AdamW) tracks the CPU backend over 3 steps', async () => {
  const [a, b] = pair(tiny, 8);
  const oa = cpu.createOptimizer(a, { lr: 3e-3, weightDecay: 0.01 }), ob = gpu.createOptimizer(b, { lr: 3e-3, weightDecay: 0.01 });
  for (let step = 0; step < 3; step++) {
    const batch = batchOf(4, size(24, 12), tiny.vocab_size, 20 + step);
    const sa = await cpu.sftStep(a, batch, oa), sb = await gpu.sftStep(b, batch, ob);
    close([sb.loss], [sa.loss], 0, 1e-4, `step ${step} loss`);
    close([sb.gradNorm], [sa.gradNorm], 0, step === 0 ? 1e-4 : 3e-3, `step ${step} gradient norm`);
    assert.is(sb.tokens, sa.tokens);
  }
});

cudaTest('TF32 GEMMs stay close to fp32: logits and a training loss', async () => {
  const [, b] = pair(tiny, 12);
  const batch = batchOf(3, 12, tiny.vocab_size, 5);
  const r32 = await gpu.forward(b, batch.tokens, { batch: 3 });
  native.setCudaGemm('tf32');
  try {
    const r19 = await gpu.forward(b, batch.tokens, { batch: 3 });
    let worst = 0;
    for (let i = 0; i < r32.logits!.length; i++) worst = Math.max(worst, Math.abs(r19.logits![i] - r32.logits![i]));
    assert.ok(worst < 2e-2 && worst > 0, `TF32 logits differ from fp32 by ${worst}`);
  } finally {
    native.setCudaGemm('fp32');
  }
});

cudaTest('the CUDA backend repeats itself bit for bit (same seed, same steps)', async () => {
  const run = async () => {
    const m = gpu.createModel(tiny, { seed: 21 });
    const o = gpu.createOptimizer(m, { lr: 1e-2 });
    const losses: number[] = [];
    for (let s = 0; s < 2; s++) losses.push((await gpu.sftStep(m, batchOf(3, 10, tiny.vocab_size, s), o)).loss);
    const samples = await gpu.generate(m, [[1, 2, 3], [4]], { n: 2, maxNewTokens: 6, seed: 3, topP: 0.9 });
    return { losses, weights: paramsOf(m), samples };
  };
  native.setCudaGemm('tf32');  // the default mode must repeat too
  try {
    const x = await run(), y = await run();
    assert.equal(y.losses, x.losses);
    x.weights.forEach((w, i) => equal(y.weights[i], w, `weights ${i}`));
    assert.equal(y.samples.map((p) => p.map((s) => s.tokens)), x.samples.map((p) => p.map((s) => s.tokens)));
  } finally {
    native.setCudaGemm('fp32');
  }
});

cudaTest('generate with the same seed samples the CPU backend\'s tokens (greedy, temperature, top-k, top-p, n > 1, stop tokens)', async () => {
  const [a, b] = pair(tiny, 13, 0.6);
  const prompts = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10, 11], [12]];
  let same = 0, total = 0;
  for (const o of [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.8, topK: 5 }, { temperature: 1, topP: 0.8, topK: 20 }, { temperature: 1.2, topP: 0.9 }]) {
    const opts = { ...o, n: 3, maxNewTokens: size(12, 6), seed: 17, stopTokens: [0] };
    const sa = await cpu.generate(a, prompts, opts), sb = await gpu.generate(b, prompts, opts);
    for (let p = 0; p < prompts.length; p++)
      for (let j = 0; j < 3; j++) {
        const x = sa[p][j], y = sb[p][j];
        total++;
        if (x.tokens.join() !== y.tokens.join()) continue;  // a draw on a rounding boundary: checked below
        same++;
        assert.is(y.finishReason, x.finishReason);
        close(y.logprobs, x.logprobs, 1e-4, 1e-4, `logprobs ${JSON.stringify(o)} prompt ${p} sample ${j}`);
        close(y.scaledLogprobs, x.scaledLogprobs, 1e-4, 1e-4, 'scaled logprobs');
        close(y.sampleLogprobs, x.sampleLogprobs, 1e-4, 1e-4, 'sample logprobs');
      }
  }
  // Logits differ from the CPU's in the last bits; a uniform that falls that close to a boundary moves the draw.
  assert.ok(same >= total - 1, `${total - same} of ${total} samples differ from the CPU backend's`);
});

cudaTest('GenerationSession on CUDA: extend, nextLogits, fork and values match the CPU session', async () => {
  const cfg = { ...tiny, scalar_head: true };
  const [a, b] = pair(cfg, 14, 0.5);
  const sa = cpu.session(a, { maxSequences: 4 }), sb = gpu.session(b, { maxSequences: 4 });
  try {
    const [xa] = await sa.addPrompts([[1, 2, 3, 4]]), [xb] = await sb.addPrompts([[1, 2, 3, 4]]);
    const ea = await sa.extend(xa, [5, 6, 7]), eb = await sb.extend(xb, [5, 6, 7]);
    close(eb.logprob, ea.logprob, 1e-5, 1e-4, 'extend logprob');
    close(eb.value!, ea.value!, 1e-5, 1e-4, 'extend value');
    const na = await sa.nextLogits(xa), nb = await sb.nextLogits(xb);
    close(nb.logits!, na.logits!, 1e-5, 1e-4, 'next logits');
    close([nb.value!], [na.value!], 1e-5, 1e-4, 'next value');
    const [fa] = sa.fork(xa, [77]), [fb] = sb.fork(xb, [77]);
    const oa = await sa.sample([fa, xa], { steps: 5, maxNewTokens: 5, seed: 2 }), ob = await sb.sample([fb, xb], { steps: 5, maxNewTokens: 5, seed: 2 });
    assert.equal(Array.from(ob.token), Array.from(oa.token));
    close(ob.value!, oa.value!, 1e-5, 1e-4, 'sampled values');
    assert.equal(sb.info(fb).tokens, sa.info(fa).tokens);
    sb.release([fb]);
    assert.throws(() => sb.info(fb), /not a live sequence/);
  } finally {
    sa.dispose();
    sb.dispose();
  }
});

async function rolloutsFor(policy: Model, engine: Engine, B: number): Promise<Rollouts> {
  const prompts = Array.from({ length: B }, (_, i) => [1 + (i % 5), 2 + (i % 3)]);
  const samples = await engine.generate(policy, prompts, { maxNewTokens: 6, seed: 4 });
  const p = packSequences(prompts.map((q, i) => ({ prompt: q, response: samples[i][0].tokens })));
  const scores = Float32Array.from(samples, (s) => s[0].tokens.filter((t) => t % 2 === 0).length);
  return { tokens: p.tokens, batch: p.batch, seqLen: p.seqLen, responseMask: p.mask, scores };
}

cudaTest('ppoStep: the same rollouts give the same statistics and the same trained policy as on the CPU', async () => {
  const cfg = { ...tiny, scalar_head: true };
  const [pa, pb] = pair(cfg, 15, 0.3);
  const [ra, rb] = pair(cfg, 15, 0.3);
  const R = await rolloutsFor(pa, cpu, size(8, 4));
  const config = { learningRate: 1e-3, warmupSteps: 0, ppoEpochs: 2, seed: 3 };
  const sa = await ppoStep(cpu, { policy: pa, ref: ra, rollouts: R, config });
  const sb = await ppoStep(gpu, { policy: pb, ref: rb, rollouts: R, config });
  for (const k of ['objective/kl', 'objective/entropy', 'loss/policy_avg', 'loss/value_avg', 'policy/approxkl_avg', 'val/vpred',
    'returns/mean', 'advantages/var'] as const)
    close([sb[k]], [sa[k]], 1e-5, 2e-3, `ppoStep ${k}`);
  close([sb['ppo/grad_norm']], [sa['ppo/grad_norm']], 1e-5, 5e-3, 'ppoStep grad norm');
  // the policies after the step score the rollouts alike
  const fa = await cpu.forward(pa, R.tokens, { batch: R.batch, logits: true }), fb = await gpu.forward(pb, R.tokens, { batch: R.batch, logits: true });
  close(fb.logits!, fa.logits!, 1e-3, 1e-2, 'logits after ppoStep');
});

cudaTest('checkpoints and optimizer state round-trip through the host mirrors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-cuda-'));
  try {
    const m = gpu.createModel(tiny, { seed: 30 });
    const o = gpu.createOptimizer(m, { lr: 1e-2 });
    await gpu.sftStep(m, batchOf(2, 8, tiny.vocab_size, 3), o);
    await gpu.saveModel(m, join(dir, 'model'));
    await gpu.saveOptimizer(o, join(dir, 'opt.safetensors'));
    const m2 = await gpu.loadModel(join(dir, 'model'));
    assert.is(m2.backend, 'cuda');
    const o2 = gpu.createOptimizer(m2, { lr: 1e-2 });
    await gpu.loadOptimizer(o2, join(dir, 'opt.safetensors'));
    const batch = batchOf(2, 8, tiny.vocab_size, 4);
    const s1 = await gpu.sftStep(m, batch, o), s2 = await gpu.sftStep(m2, batch, o2);
    assert.is(s2.loss, s1.loss);
    paramsOf(m).forEach((w, i) => equal(paramsOf(m2)[i], w, `weights ${i} after resuming`));
    const c = await cpu.loadModel(join(dir, 'model'));  // a CUDA checkpoint loads on the CPU backend
    assert.is(c.backend, 'cpu');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

cudaTest('bad calls are Errors, not crashes', async () => {
  const m = gpu.createModel(tiny);
  await rejects(gpu.backward(m, { dlogp: new Float32Array(4) }), /needs a preceding forward/);
  await rejects(gpu.forward(m, [[1, 2, 999]]), /outside \[0, vocab_size=61\)/);
  await rejects(gpu.forward(m, Int32Array.from({ length: 41 }, () => 1)), /seqLen must be in \[1, 40\]/);
  const p = gpu.forward(m, [[1, 2, 3]]);
  assert.throws(() => m.parameters(), /busy/);
  await p;
  assert.throws(() => gpu.createModel({ ...tiny, hidden_size: 512, num_attention_heads: 2 }), /head_dim up to 128/);
  assert.throws(() => new native.CudaAdamW(cpu.createModel(tiny).raw, {}), /model must be a CudaModel/);
  assert.throws(() => new native.CudaDecodeSession(cpu.createModel(tiny).raw, { maxSequences: 1 }), /model must be a CudaModel/);
});

test('Engine.create: backend "cuda" without a usable device is an Error that says why; "auto" falls back to the CPU', async () => {
  const info = Engine.cudaInfo();
  assert.type(info.available, 'boolean');
  if (!info.available) {
    await rejects(Engine.create({ backend: 'cuda' }), /backend "cuda" requested, but the CUDA backend is unavailable: .+/);
    assert.is((await Engine.create({ backend: 'auto' })).backend, 'cpu');
    console.log(`NOTE cuda unavailable: ${info.reason}`);
  } else {
    assert.is((await Engine.create({ backend: 'cuda' })).backend, 'cuda');
    assert.is((await Engine.create({ backend: 'auto' })).backend, info.emulated ? 'cpu' : 'cuda');
  }
  await rejects(Engine.create({ backend: 'tpu' as 'cpu' }), /unknown backend "tpu"/);
  await rejects(Engine.create({ cudaGemm: 'fp16' as 'fp32' }), /cudaGemm must be 'tf32' or 'fp32'/);
  assert.is((await Engine.create({ backend: 'cpu' })).device.backend, 'cpu');
  // FARM_BACKEND decides what 'auto' means (npm test sets it to cpu)
  const saved = process.env.FARM_BACKEND;
  try {
    process.env.FARM_BACKEND = 'cpu';
    assert.is((await Engine.create()).backend, 'cpu');
    process.env.FARM_BACKEND = 'gpu';
    await rejects(Engine.create(), /FARM_BACKEND must be cpu, cuda or auto, got "gpu"/);
    assert.is((await Engine.create({ backend: 'cpu' })).backend, 'cpu');  // an explicit backend wins
  } finally {
    if (saved === undefined) delete process.env.FARM_BACKEND;
    else process.env.FARM_BACKEND = saved;
  }
});

test.run();
