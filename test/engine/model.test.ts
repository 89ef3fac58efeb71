// The whole model: gradients against finite differences, memorization, determinism, checkpoints, bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, type ModelConfig, type Model } from '../../ts/engine/index.ts';
import { dot64, fdRelativeError, randomArray, sampleIndices } from '../helpers/numeric.ts';

const engine = await Engine.create({ threads: 2, seed: 7 });
const tiny: ModelConfig = {
  vocab_size: 13, hidden_size: 16, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, max_position_embeddings: 16, rms_norm_eps: 1e-5, scalar_head: true,
};

function tokensFor(B: number, T: number, V: number, seed: number) {
  const r = randomArray(B * T, seed);
  const tokens = Int32Array.from(r, (x) => Math.floor((x * 0.5 + 0.5) * V) % V);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) targets[b * T + t] = t + 1 < T && t >= 1 ? tokens[b * T + t + 1] : -1;  // masked ends
  return { tokens, targets };
}

for (const tie of [false, true]) {
  test(`whole model (GQA, ${tie ? 'tied' : 'untied'} embeddings, LM + scalar heads): gradients of a·logp + b·entropy + c·values match finite differences`, async () => {
    const model = engine.createModel({ ...tiny, tie_word_embeddings: tie }, { initStd: 0.3, seed: 3 });
    // non-trivial norm weights and scalar head so their gradients are exercised
    for (const p of model.parameters()) if (p.name.endsWith('norm.weight') || p.name.startsWith('score'))
      p.data.set(randomArray(p.data.length, p.name.length, 0.5).map((x) => x + (p.name.startsWith('score') ? 0 : 1)));
    const B = 2, T = 7, n = B * T;
    const { tokens, targets } = tokensFor(B, T, tiny.vocab_size, 5);
    const a = randomArray(n, 31), b = randomArray(n, 32), c = randomArray(n, 33);
    // analytic
    model.zeroGrad();
    await engine.forward(model, tokens, { batch: B, targets, train: true, entropy: true, logits: false });
    await engine.backward(model, { dlogp: a, dentropy: b, dvalues: c });
    const grads = model.gradients();
    // numeric: forward is async, so collect losses first per perturbation
    const params = model.parameters();
    for (let pi = 0; pi < params.length; pi++) {
      const p = params[pi];
      const idx = sampleIndices(p.data.length, 6, pi + 1);
      const fd: number[] = [];
      for (const i of idx) {
        const orig = p.data[i], eps = 1e-2;
        const L: number[] = [];
        for (const s of [1, -1]) {
          p.data[i] = orig + s * eps;
          const r = await engine.forward(model, tokens, { batch: B, targets, entropy: true, logits: false });
          L.push(dot64(r.logp!, a) + dot64(r.entropy!, b) + dot64(r.values!, c));
        }
        p.data[i] = orig;
        fd.push((L[0] - L[1]) / (Math.fround(orig + 1e-2) - Math.fround(orig - 1e-2)));
      }
      const an = idx.map((i) => grads[pi].data[i]);
      let num = 0, den = 0;
      for (let k = 0; k < fd.length; k++) { num += (fd[k] - an[k]) ** 2; den += Math.max(fd[k] ** 2, an[k] ** 2); }
      const rel = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-4);
      assert.ok(rel < 5e-3, `${p.name}: relative error ${rel.toExponential(2)} (fd ${fd.map((x) => x.toFixed(5))} vs ${an.map((x) => x.toFixed(5))})`);
    }
  });
}

test('sftStep loss equals the mean NLL of response tokens only (prompt tokens carry no loss)', async () => {
  const model = engine.createModel({ ...tiny, scalar_head: false }, { seed: 11 });
  const examples = [{ prompt: [1, 2, 3], response: [4, 5] }, { prompt: [6], response: [7, 8, 9] }];
  const opt = engine.createOptimizer(model, { lr: 0 });
  const r = await engine.sftStep(model, examples, opt);
  // independent: full logits, log-softmax in float64
  const seqs = examples.map((e) => [...e.prompt, ...e.response]);
  let nllSum = 0;
  for (const [k, s] of seqs.entries()) {
    const out = await engine.forward(model, [s]);
    const V = tiny.vocab_size, P = examples[k].prompt.length;
    let part = 0;
    for (let t = P - 1; t < s.length - 1; t++) {
      const row = Array.from(out.logits!.subarray(t * V, (t + 1) * V));
      const m = Math.max(...row), lse = m + Math.log(row.reduce((acc, z) => acc + Math.exp(z - m), 0));
      part -= row[s[t + 1]] - lse;
    }
    nllSum += part;
  }
  // the loss is the mean over the batch's 5 response tokens
  assert.is(r.tokens, 5);
  assert.ok(Math.abs(r.loss - nllSum / 5) < 1e-5, `loss ${r.loss} vs reference ${nllSum / 5}`);
});

test('the LM head on target rows only gives the same log-probs and entropies as the full head', async () => {
  const model = engine.createModel({ ...tiny }, { seed: 8, initStd: 0.2 });
  const B = 3, T = 9;
  const { tokens, targets } = tokensFor(B, T, tiny.vocab_size, 12);
  targets.fill(-1, 9, 18);  // a row without any target
  const compact = await engine.forward(model, tokens, { batch: B, targets, entropy: true, logits: false });
  const full = await engine.forward(model, tokens, { batch: B, targets, entropy: true, logits: true });
  for (let i = 0; i < B * T; i++) {
    if (targets[i] < 0) { assert.is(compact.logp![i], 0); assert.is(compact.entropy![i], 0); continue; }
    assert.ok(Math.abs(compact.logp![i] - full.logp![i]) < 1e-5, `logp[${i}]`);
    assert.ok(Math.abs(compact.entropy![i] - full.entropy![i]) < 1e-5, `entropy[${i}]`);
  }
  const none = await engine.forward(model, tokens, { batch: B, targets: new Int32Array(B * T).fill(-1), logits: false });
  assert.ok(none.logp!.every((x) => x === 0));
});

const TEXT = 'the farm grows wheat and the cows eat hay. ';
test('a tiny model memorizes a short text: loss < 0.05 nats/token within 150 steps', async () => {
  const chars = [...new Set(TEXT)].sort();
  const ids = [...TEXT].map((ch) => chars.indexOf(ch));
  const model = engine.createModel({
    vocab_size: chars.length, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, max_position_embeddings: 64,
  }, { seed: 1 });
  const opt = engine.createOptimizer(model, { lr: 1e-2, warmupSteps: 10, totalSteps: 150, kind: 'cosine' });
  let last = Infinity, first = 0;
  for (let step = 0; step < 150; step++) {
    const r = await engine.sftStep(model, [{ prompt: ids.slice(0, 1), response: ids.slice(1) }], opt);
    if (step === 0) first = r.loss;
    last = r.loss;
  }
  assert.ok(first > 2, `initial loss ${first} should be near ln(${chars.length})`);
  assert.ok(last < 0.05, `final loss ${last} >= 0.05`);
});

async function trainLosses(seed: number, threads: number) {
  const e = await Engine.create({ threads, seed });
  const model = e.createModel({ ...tiny, scalar_head: false });
  const opt = e.createOptimizer(model, { lr: 3e-3, weightDecay: 0.1 });
  const { tokens } = tokensFor(3, 12, tiny.vocab_size, 9);
  const ex = [0, 1, 2].map((b) => ({ prompt: Array.from(tokens.subarray(b * 12, b * 12 + 4)), response: Array.from(tokens.subarray(b * 12 + 4, b * 12 + 12)) }));
  const losses: number[] = [];
  for (let i = 0; i < 5; i++) losses.push((await e.sftStep(model, ex, opt)).loss);
  return losses;
}

test('the same seed gives bit-identical losses (and 1 vs 2 threads agree bit for bit)', async () => {
  const a = await trainLosses(5, 2), b = await trainLosses(5, 2), c = await trainLosses(5, 1), d = await trainLosses(6, 2);
  assert.equal(a, b);
  assert.equal(a, c);
  assert.not.equal(a, d);
});

test('save -> load gives bit-identical logits; optimizer state resumes bit-identically', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'farm-ckpt-'));
  try {
    const model = engine.createModel({ ...tiny }, { seed: 21 });
    const opt = engine.createOptimizer(model, { lr: 1e-3 });
    const ex = [{ prompt: [1, 2], response: [3, 4, 5] }];
    await engine.sftStep(model, ex, opt);
    await engine.saveModel(model, dir);
    await engine.saveOptimizer(opt, join(dir, 'optimizer.safetensors'));
    assert.ok(existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'model.safetensors')));
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    assert.is(cfg.architectures[0], 'LlamaForCausalLM');
    const loaded = await engine.loadModel(dir);
    const seq = [[1, 2, 3, 4, 5, 6]];
    const x = await engine.forward(model, seq), y = await engine.forward(loaded, seq);
    assert.equal(Buffer.from(x.logits!.buffer, x.logits!.byteOffset, x.logits!.byteLength),
      Buffer.from(y.logits!.buffer, y.logits!.byteOffset, y.logits!.byteLength));
    // resume: a step on the original and on the reloaded pair must agree bit for bit
    const opt2 = engine.createOptimizer(loaded, { lr: 1e-3 });
    await engine.loadOptimizer(opt2, join(dir, 'optimizer.safetensors'));
    assert.is(opt2.step, 1);
    const s1 = await engine.sftStep(model, ex, opt), s2 = await engine.sftStep(loaded, ex, opt2);
    assert.is(s1.loss, s2.loss);
    const p1 = model.parameters(), p2 = loaded.parameters();
    for (let i = 0; i < p1.length; i++) assert.ok(p1[i].data.every((v, j) => Object.is(v, p2[i].data[j])), p1[i].name);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('bad input gives clear errors, never a crash', async () => {
  const model = engine.createModel({ ...tiny, scalar_head: false });
  let err = await engine.forward(model, [[1, 13]]).then(() => null, (e) => e);
  assert.match(String(err), /tokens\[1\] = 13 is outside \[0, vocab_size=13\)/);
  err = await engine.forward(model, [[1, -2]]).then(() => null, (e) => e);
  assert.match(String(err), /outside/);
  assert.throws(() => model.raw.forward({ tokens: new Float32Array(4), batch: 1, seqLen: 4 }), /tokens must be a Int32Array|tokens must be an Int32Array/);
  assert.throws(() => model.raw.forward({ tokens: new Int32Array(5), batch: 2, seqLen: 2 }), /tokens must have 4 elements, got 5/);
  err = await engine.forward(model, [[1, 2], [3]]).then(() => null, (e) => e);
  assert.match(String(err), /same length/);
  err = await engine.forward(model, new Int32Array(20), { batch: 1 }).then(() => null, (e) => e);
  assert.match(String(err), /max_position_embeddings|seqLen/);
  const opt = engine.createOptimizer(model, { lr: 1e-3 });
  assert.ok(await opt.adamw.step(NaN).then(() => false, (e) => /lr must be finite/.test(String(e))));
  assert.throws(() => engine.createOptimizer(model, { lr: Infinity }), /lr/);
  assert.throws(() => engine.createModel({ ...tiny, hidden_size: 18 }), /hidden_size \(18\) must be divisible by num_attention_heads \(4\)/);
  assert.throws(() => engine.createModel({ ...tiny, vocab_size: 0 }), /vocab_size/);
  err = await engine.backward(model, { dlogp: new Float32Array(3) }).then(() => null, (e) => e);
  assert.match(String(err), /backward\(\) needs a preceding forward/);
  // checkpoints
  const dir = mkdtempSync(join(tmpdir(), 'farm-bad-'));
  try {
    err = await engine.loadModel(join(dir, 'nope')).then(() => null, (e) => e);
    assert.match(String(err), /config\.json/);
    await engine.saveModel(model, dir);
    const st = join(dir, 'model.safetensors'), good = readFileSync(st);
    writeFileSync(st, good.subarray(0, 20));  // truncated header
    err = await engine.loadModel(dir).then(() => null, (e) => e);
    assert.match(String(err), /truncated|header/i);
    const corrupt = Buffer.from(good);
    corrupt.write('{"x":', 8, 'utf8');  // corrupt JSON header
    writeFileSync(st, corrupt);
    err = await engine.loadModel(dir).then(() => null, (e) => e);
    assert.match(String(err), /header|JSON/i);
    writeFileSync(st, good.subarray(0, good.length - 16));  // tensor data cut short
    err = await engine.loadModel(dir).then(() => null, (e) => e);
    assert.match(String(err), /truncated|beyond|size|extends/i);
    rmSync(st);
    err = await engine.loadModel(dir).then(() => null, (e) => e);
    assert.match(String(err), /model\.safetensors/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test.run();
