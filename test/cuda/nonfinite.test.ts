// Issue 14, item 6 on the CUDA backend: NaN in a layer's q_proj reaches the logits (the softmax maxima used
// fmaxf, which drops NaN). Runs on a GPU or the CPU emulation (npm run test:cuda-emu); skipped elsewhere.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine } from '../../ts/engine/index.ts';
import { cudaTest } from './helpers.ts';

cudaTest('NaN in q_proj gives NaN logits on CUDA, and sampling from them fails', async () => {
  const engine = await Engine.create({ backend: 'cuda', threads: 1, seed: 3 });
  const model = engine.createModel({ vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 16 });
  const tokens = [[1, 4, 9, 16, 25, 36]];
  const clean = await engine.forward(model, tokens);
  assert.ok(clean.logits!.every(Number.isFinite));
  const q = model.parameters().find((p) => p.name === 'model.layers.0.self_attn.q_proj.weight')!;
  for (let i = 0; i < 40; i++) q.data[(i * 131) % q.data.length] = NaN;
  const r = await engine.forward(model, tokens);
  const bad = r.logits!.filter((v) => !Number.isFinite(v)).length;
  assert.ok(bad >= r.logits!.length / 2, `${bad} of ${r.logits!.length} logits non-finite`);
  await engine.generate(model, tokens, { maxNewTokens: 2 }).then(() => assert.unreachable('sampled from NaN logits'), (e: Error) => assert.match(e.message, /NaN|non-finite|not finite/i));
});

test.run();
