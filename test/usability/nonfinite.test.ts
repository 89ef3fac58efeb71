// Issue 14, item 6: NaN or Inf in weights must propagate to the outputs (a max that skipped NaN and an exp
// clamp that mapped NaN to a large finite value turned 100 NaN in q_proj into finite, wrong logits), and a
// checkpoint holding them is refused at load with the tensor named.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, type Model } from '../../ts/engine/index.ts';

const engine = await Engine.create({ threads: 1, seed: 5 });
const CONFIG = { vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 32 };
const dir = mkdtempSync(join(tmpdir(), 'farm-nonfinite-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const tokens = [[1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45]];
function poison(model: Model, name: string, values: number[]) {
  const p = model.parameters().find((x) => x.name === name)!;
  assert.ok(p, name);
  values.forEach((v, i) => { p.data[(i * 7919) % p.data.length] = v; });
}
const nonFinite = (xs: Float32Array) => xs.reduce((n, v) => n + (Number.isFinite(v) ? 0 : 1), 0);

test('100 NaN in a layer\'s q_proj make the logits NaN, not finite and wrong', async () => {
  const model = engine.createModel(CONFIG);
  const clean = await engine.forward(model, tokens);
  assert.is(nonFinite(clean.logits!), 0);
  poison(model, 'model.layers.1.self_attn.q_proj.weight', new Array(100).fill(NaN));
  const r = await engine.forward(model, tokens);
  // every position attends with NaN queries in every head that holds a poisoned row
  assert.ok(nonFinite(r.logits!) >= r.logits!.length / 2, `only ${nonFinite(r.logits!)} of ${r.logits!.length} logits are non-finite`);
  // the fp32 decoder and the bf16 one (weights and KV cache rounded: NaN must stay NaN there too)
  for (const decodePrecision of ['fp32', 'bf16'] as const) {
    await engine.generate(model, tokens, { maxNewTokens: 4, temperature: 1, decodePrecision }).then(
      () => assert.unreachable(`sampling from NaN logits must fail (${decodePrecision} decode)`),
      (e: Error) => assert.match(e.message, /NaN|non-finite|not finite/i),
    );
  }
});

test('one Inf in q_proj gives non-finite logits too', async () => {
  const model = engine.createModel(CONFIG);
  const p = model.parameters().find((x) => x.name === 'model.layers.0.self_attn.q_proj.weight')!;
  p.data.fill(0.5, 0, 32);  // row 0 sees every input feature, so the Inf reaches the scores of every position
  p.data[3] = Infinity;
  const r = await engine.forward(model, tokens);
  assert.ok(nonFinite(r.logits!) > 0, 'an Inf weight must not vanish');
});

test('non-finite weights are refused at load, naming the tensor', async () => {
  const model = engine.createModel(CONFIG);
  poison(model, 'model.layers.0.mlp.up_proj.weight', [NaN, NaN, Infinity]);
  await engine.saveModel(model, join(dir, 'bad'));
  await engine.loadModel(join(dir, 'bad')).then(
    () => assert.unreachable('loaded a checkpoint with NaN weights'),
    (e: Error) => assert.match(e.message, /tensor "model\.layers\.0\.mlp\.up_proj\.weight" holds 2 NaN and 1 infinite values/),
  );
  const ok = engine.createModel(CONFIG);
  await engine.saveModel(ok, join(dir, 'ok'));
  await engine.loadModel(join(dir, 'ok'));
});

test.run();
