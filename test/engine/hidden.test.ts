// The final hidden state as an output (forward({hidden: true})) and an external gradient on it
// (backward({dhidden})): what a loss computed outside the model (RLP-UML's encoder on the reward model's
// hidden state) needs to reach every layer. Checked against finite differences of the whole model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type ModelConfig } from '../../ts/engine/index.ts';
import { dot64, randomArray, sampleIndices } from '../helpers/numeric.ts';

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
    for (let t = 0; t < T; t++) targets[b * T + t] = t + 1 < T && t >= 1 ? tokens[b * T + t + 1] : -1;
  return { tokens, targets };
}

test('the hidden state is what the scalar head reads (values = hidden . w + b), the same with and without training activations', async () => {
  const model = engine.createModel(tiny, { initStd: 0.3, seed: 4 });
  for (const p of model.parameters()) if (p.name.startsWith('score')) p.data.set(randomArray(p.data.length, 9, 0.5));
  const B = 2, T = 6, C = tiny.hidden_size;
  const { tokens } = tokensFor(B, T, tiny.vocab_size, 3);
  const r = await engine.forward(model, tokens, { batch: B, hidden: true, logits: false });
  assert.is(r.hidden!.length, B * T * C);
  const w = model.parameters().find((p) => p.name === 'score.weight')!.data, b = model.parameters().find((p) => p.name === 'score.bias')!.data[0];
  for (let i = 0; i < B * T; i++) assert.ok(Math.abs(dot64(r.hidden!.subarray(i * C, (i + 1) * C), w) + b - r.values![i]) < 1e-5, `position ${i}`);
  const t = await engine.forward(model, tokens, { batch: B, hidden: true, train: true, logits: false });
  assert.equal(Array.from(t.hidden!), Array.from(r.hidden!));
  const none = await engine.forward(model, tokens, { batch: B, logits: false });
  assert.is(none.hidden, undefined, 'no hidden state unless asked for');
});

for (const variant of [{ name: 'policy with a scalar head, untied', cfg: {} }, { name: 'tied embeddings', cfg: { tie_word_embeddings: true } },
  { name: 'reward model (no LM head)', cfg: { lm_head: false } }] as { name: string; cfg: Partial<ModelConfig> }[]) {
  test(`${variant.name}: gradients of a.logp + c.values + g.hidden match finite differences in every tensor`, async () => {
    const cfg = { ...tiny, ...variant.cfg };
    const lm = cfg.lm_head !== false;
    const model = engine.createModel(cfg, { initStd: 0.3, seed: 3 });
    for (const p of model.parameters()) if (p.name.endsWith('norm.weight') || p.name.startsWith('score'))
      p.data.set(randomArray(p.data.length, p.name.length, 0.5).map((x) => x + (p.name.startsWith('score') ? 0 : 1)));
    const B = 2, T = 7, n = B * T, C = cfg.hidden_size;
    const { tokens, targets } = tokensFor(B, T, cfg.vocab_size, 5);
    const a = randomArray(n, 31), c = randomArray(n, 33), g = randomArray(n * C, 34);
    const loss = (r: { logp?: Float32Array; values?: Float32Array; hidden?: Float32Array }) =>
      (lm ? dot64(r.logp!, a) : 0) + dot64(r.values!, c) + dot64(r.hidden!, g);
    model.zeroGrad();
    await engine.forward(model, tokens, { batch: B, targets: lm ? targets : undefined, train: true, hidden: true, logits: false });
    await engine.backward(model, { ...(lm ? { dlogp: a } : {}), dvalues: c, dhidden: g });
    const grads = model.gradients().map((p) => ({ name: p.name, data: new Float32Array(p.data) }));  // views: copy before the next backward
    // the hidden-state gradient alone must matter: without it the gradients differ
    model.zeroGrad();
    await engine.forward(model, tokens, { batch: B, targets: lm ? targets : undefined, train: true, logits: false });
    await engine.backward(model, { ...(lm ? { dlogp: a } : {}), dvalues: c });
    const without = model.gradients().map((p) => new Float32Array(p.data));
    const embed = grads.findIndex((p) => p.name === 'model.embed_tokens.weight');
    let diff = 0;
    for (let i = 0; i < without[embed].length; i++) diff = Math.max(diff, Math.abs(without[embed][i] - grads[embed].data[i]));
    assert.ok(diff > 1e-3, 'dhidden changes the embedding gradient');
    const params = model.parameters();
    for (let pi = 0; pi < params.length; pi++) {
      const p = params[pi];
      const idx = sampleIndices(p.data.length, 5, pi + 1);
      const fd: number[] = [];
      for (const i of idx) {
        const orig = p.data[i], eps = 1e-2;
        const L: number[] = [];
        for (const s of [1, -1]) {
          p.data[i] = orig + s * eps;
          L.push(loss(await engine.forward(model, tokens, { batch: B, targets: lm ? targets : undefined, hidden: true, logits: false })));
        }
        p.data[i] = orig;
        fd.push((L[0] - L[1]) / (Math.fround(orig + eps) - Math.fround(orig - eps)));
      }
      const an = idx.map((i) => grads[pi].data[i]);
      let num = 0, den = 0;
      for (let k = 0; k < fd.length; k++) { num += (fd[k] - an[k]) ** 2; den += Math.max(fd[k] ** 2, an[k] ** 2); }
      const rel = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-4);
      assert.ok(rel < 5e-3, `${p.name}: relative error ${rel.toExponential(2)} (fd ${fd.map((x) => x.toFixed(5))} vs ${an.map((x) => x.toFixed(5))})`);
    }
  });
}

test('a bad dhidden is a clear Error', async () => {
  const model = engine.createModel(tiny, { seed: 2 });
  const { tokens } = tokensFor(1, 5, tiny.vocab_size, 1);
  await engine.forward(model, tokens, { batch: 1, train: true, hidden: true, logits: false });
  let err = await engine.backward(model, { dhidden: new Float32Array(7) }).then(() => null, (e) => e);
  assert.match(String(err), /dhidden must have 80 elements, got 7/);
  const bad = new Float32Array(80); bad[3] = NaN;
  err = await engine.backward(model, { dhidden: bad }).then(() => null, (e) => e);
  assert.match(String(err), /dhidden has a non-finite value \(nan\) at index 3/);
  err = await engine.backward(model, { dhidden: new Float64Array(80) as unknown as Float32Array }).then(() => null, (e) => e);
  assert.match(String(err), /dhidden must be a Float32Array/);
  assert.throws(() => model.raw.forward({ tokens, batch: 1, seqLen: 5, hidden: 'yes' }), /hidden must be a boolean/);
});

test.run();
