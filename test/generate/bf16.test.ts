// bf16 decoding (decodePrecision: 'bf16': weights and KV cache in bfloat16): exact widening (a model whose
// weights are already bf16 decodes bit-identically with bf16 weights, on every kernel set this CPU has),
// log-prob tolerance and greedy agreement with fp32 on a trained model, seed and thread determinism.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../ts/engine/index.ts';
import { generate } from '../../ts/engine/generate.ts';
import { native } from '../../ts/engine/native.ts';
import { engine2, tinyModel } from './helpers.ts';

/** Rounds every weight to bfloat16 (nearest even), in place. */
function roundToBf16(model: ReturnType<typeof tinyModel>): void {
  for (const p of model.parameters()) {
    const u = new Uint32Array(p.data.buffer, p.data.byteOffset, p.data.length);
    for (let i = 0; i < u.length; i++) u[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
}

test('weights already in bf16: bf16 decoding is bit-identical to fp32 (every kernel set of this CPU)', async () => {
  if (process.env.FARM_BF16_CHILD) {  // one kernel set, in a child process (the set is chosen once per process)
    const probe = new native.DecodeSession(tinyModel().raw, { maxSequences: 1, maxLength: 8 });
    console.log(`NOTE decode kernels: ${probe.stats().kernels}`);
    probe.dispose();
    for (const over of [{}, { hidden_size: 64, num_attention_heads: 4, intermediate_size: 100, vocab_size: 70 }]) {
      const model = tinyModel(over, 31);
      roundToBf16(model);
      const prompts = [[1, 2, 3], [4, 5, 6, 7, 8], [9]];
      // native sessions: bf16 weights with an fp32 cache (the cache's rounding is not exact by design)
      const run = async (weights: string) => {
        const s = new native.DecodeSession(model.raw, { maxSequences: 9, maxLength: 24, weights, kvCache: 'fp32' });
        const slots = await s.addPrompts({ tokens: Int32Array.from(prompts.flat()), lengths: Int32Array.from(prompts.map((p) => p.length)),
          copies: 3, streams: Float64Array.from({ length: 9 }, (_, i) => i), threads: 2 });
        const r = await s.sample({ slots, steps: 10, maxNewTokens: 10, temperature: 1, seed: 4, threads: 2 });
        assert.is(s.stats().weights, weights);
        s.dispose();
        return r;
      };
      const a = await run('fp32'), b = await run('bf16');
      assert.equal(Array.from(b.token), Array.from(a.token));
      assert.equal(Array.from(b.logprob), Array.from(a.logprob), 'bit-identical log-probs');
    }
    return;
  }
  const ran = new Set<string>();
  for (const impl of ['portable', 'avx2', 'avx512']) {  // a set this CPU lacks falls back to another
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      encoding: 'utf8', env: { ...process.env, FARM_BF16_CHILD: '1', FARM_DECODE_IMPL: impl, NO_COLOR: '1' },
    });
    const out = (r.stdout ?? '') + (r.stderr ?? '');
    assert.ok(r.status === 0 && /Passed:\s+1/.test(out), `${impl}: ${out.slice(-1500)}`);
    ran.add(/decode kernels: (\w+)/.exec(out)![1]);
  }
  assert.ok(ran.has('portable') && ran.size >= 2, `kernel sets checked: ${[...ran]}`);
  console.log(`NOTE bf16 exactness checked on decode kernels: ${[...ran].join(', ')}`);
});

if (!process.env.FARM_BF16_CHILD) {
  // A small model trained to continue arithmetic progressions mod 60 (the step is known after two terms).
  const V = 64, T = 24;
  let seed = 1;
  const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 2 ** 32; };
  const progression = () => {
    const a = Math.floor(rnd() * 60), d = 1 + Math.floor(rnd() * 5);
    return [1, ...Array.from({ length: T - 1 }, (_, i) => 2 + ((a + d * i) % 60))];
  };
  const engine = await Engine.create({ threads: 2, seed: 3 });
  const model = engine.createModel({ vocab_size: V, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 64 });
  const opt = engine.createOptimizer(model, { lr: 3e-3, warmupSteps: 20, totalSteps: 250, kind: 'cosine' });
  let loss = 0;
  for (let step = 0; step < 250; step++) {
    const ex = Array.from({ length: 16 }, () => { const s = progression(); return { prompt: s.slice(0, 3), response: s.slice(3) }; });
    loss = (await engine.sftStep(model, ex, opt)).loss;
  }
  const prompts = Array.from({ length: 48 }, () => progression().slice(0, 4));

  test('trained model: greedy bf16 decoding equals fp32 on >= 95% of prompts (measured: 100%)', async () => {
    assert.ok(loss < 0.05, `the model trained (loss ${loss})`);
    const a = await generate(engine, model, prompts, { temperature: 0, maxNewTokens: 16 });
    const b = await generate(engine, model, prompts, { temperature: 0, maxNewTokens: 16, decodePrecision: 'bf16' });
    const same = prompts.filter((_, i) => a[i][0].tokens.join() === b[i][0].tokens.join()).length;
    assert.ok(same / prompts.length >= 0.95, `greedy agreement ${same}/${prompts.length}`);
  });

  test('trained model: per-token log-probs within 0.05 nats of fp32 (mean within 0.002), teacher-forced', async () => {
    const samples = await generate(engine, model, prompts, { temperature: 1, maxNewTokens: 16, seed: 5 });
    const fp = engine.session(model, { maxSequences: prompts.length, maxLength: 40 });
    const bf = engine.session(model, { maxSequences: prompts.length, maxLength: 40, decodePrecision: 'bf16' });
    let max = 0, sum = 0, n = 0;
    for (let i = 0; i < prompts.length; i++) {
      const [s1] = await fp.addPrompts([prompts[i]]), [s2] = await bf.addPrompts([prompts[i]]);
      const x = await fp.extend(s1, samples[i][0].tokens), y = await bf.extend(s2, samples[i][0].tokens);
      for (let j = 0; j < x.logprob.length; j++) {
        const d = Math.abs(x.logprob[j] - y.logprob[j]);
        max = Math.max(max, d);
        sum += d;
        n++;
      }
    }
    fp.dispose();
    bf.dispose();
    assert.ok(max < 0.05 && sum / n < 0.002, `max |Δ log p| ${max.toFixed(4)}, mean ${(sum / n).toFixed(5)} over ${n} tokens`);
  });

  test('bf16 sampling is seed-deterministic and independent of the thread count', async () => {
    const opts = { n: 4, maxNewTokens: 12, temperature: 1, seed: 9, decodePrecision: 'bf16' as const };
    const e1 = await Engine.create({ threads: 1, seed: 3 });
    const a = await generate(engine, model, prompts.slice(0, 6), opts);
    const b = await generate(engine, model, prompts.slice(0, 6), opts);
    const c = await generate(e1, model, prompts.slice(0, 6), opts);
    const flat = (r: typeof a) => r.flatMap((s) => s.map((x) => [x.tokens.join(), Array.from(x.logprobs).join()].join('|')));
    assert.equal(flat(b), flat(a), 'same seed, same samples');
    assert.equal(flat(c), flat(a), '1 thread == 2 threads');
    const d = await generate(engine, model, prompts.slice(0, 6), { ...opts, seed: 10 });
    assert.not.equal(flat(d), flat(a), 'another seed, other samples');
  });

  test('decodePrecision is checked', async () => {
    try {
      await generate(engine, model, [[1]], { decodePrecision: 'fp16' as any });
      assert.unreachable();
    } catch (e) {
      assert.match((e as Error).message, /decodePrecision must be 'fp32' or 'bf16'/);
    }
    assert.throws(() => new native.DecodeSession(model.raw, { maxSequences: 1, weights: 'int8' }), /weights must be 'fp32' or 'bf16'/);
    assert.throws(() => new native.DecodeSession(model.raw, { maxSequences: 1, kvCache: 1 }), /kvCache must be 'fp32' or 'bf16'/);
  });
}

test.run();
