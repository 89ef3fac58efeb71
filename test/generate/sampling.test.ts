// Sampling: distribution (chi-square), exact top-k / top-p support, greedy, determinism across threads,
// batch composition and chunking, stop tokens, max tokens, context limit, log-prob conventions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../ts/engine/native.ts';
import { generate, logprobs } from '../../ts/engine/generate.ts';
import { engine1, engine2, fullLogits, ranked, softmax64, tinyModel } from './helpers.ts';

// Critical chi-square values at p = 0.001 (deterministic seeds: the verdict is fixed, the margin generous).
const CHI2_001: Record<number, number> = { 4: 18.47, 7: 24.32, 15: 37.70 };

function chiSquare(counts: number[], probs: number[], N: number): number {
  let x = 0;
  for (let i = 0; i < counts.length; i++) if (probs[i] > 0) x += (counts[i] - N * probs[i]) ** 2 / (N * probs[i]);
  return x;
}

async function firstTokens(model: any, prompt: number[], N: number, opts: object) {
  const out = await generate(engine2, model, [prompt], { n: N, maxNewTokens: 1, seed: 77, ...opts });
  return out[0];
}

test('samples follow softmax(logits / T) (chi-square, 16 tokens, T = 1 and 0.7)', async () => {
  const model = tinyModel({ vocab_size: 16 }, 21, 0.15);
  const prompt = [1, 2, 3];
  const { logits } = await fullLogits(model, prompt);
  for (const T of [1, 0.7]) {
    const p = softmax64(logits, T), N = 6000;
    const samples = await firstTokens(model, prompt, N, { temperature: T });
    const counts = new Array(16).fill(0);
    for (const s of samples) counts[s.tokens[0]]++;
    const x = chiSquare(counts, p, N);
    assert.ok(x < CHI2_001[15], `chi-square ${x.toFixed(1)} at T=${T}; counts ${counts} vs ${p.map((q) => (q * N).toFixed(0))}`);
    // Log-prob conventions on the first token.
    for (const s of samples.slice(0, 20)) {
      const t = s.tokens[0];
      assert.ok(Math.abs(s.logprobs[0] - Math.log(softmax64(logits)[t])) < 1e-4);
      assert.ok(Math.abs(s.scaledLogprobs[0] - Math.log(p[t])) < 1e-4);
      assert.ok(Math.abs(s.sampleLogprobs[0] - Math.log(p[t])) < 1e-4);
    }
  }
});

test('the second token follows the conditional distribution too (chi-square on one context)', async () => {
  const model = tinyModel({ vocab_size: 8 }, 22, 0.15);
  const out = await generate(engine2, model, [[4, 5]], { n: 8000, maxNewTokens: 2, seed: 5 });
  // Condition on the most frequent first token.
  const first = new Array(8).fill(0);
  for (const s of out[0]) first[s.tokens[0]]++;
  const t0 = first.indexOf(Math.max(...first));
  const { logits } = await fullLogits(model, [4, 5, t0]);
  const p = softmax64(logits), counts = new Array(8).fill(0);
  let N = 0;
  for (const s of out[0]) if (s.tokens[0] === t0) { counts[s.tokens[1]]++; N++; }
  const x = chiSquare(counts, p, N);
  assert.ok(x < CHI2_001[7], `chi-square ${x.toFixed(1)} (N=${N})`);
});

test('top-k keeps exactly the k most likely tokens, renormalized', async () => {
  const model = tinyModel({ vocab_size: 40 }, 23, 0.3);
  const prompt = [7, 8];
  const { logits } = await fullLogits(model, prompt);
  const T = 0.8, k = 5, p = softmax64(logits, T), order = ranked(p), keep = new Set(order.slice(0, k));
  const mass = order.slice(0, k).reduce((a, i) => a + p[i], 0);
  const samples = await firstTokens(model, prompt, 4000, { temperature: T, topK: k });
  const counts = new Array(40).fill(0);
  for (const s of samples) {
    const t = s.tokens[0];
    assert.ok(keep.has(t), `token ${t} outside the top-${k}`);
    counts[t]++;
    assert.ok(Math.abs(s.sampleLogprobs[0] - Math.log(p[t] / mass)) < 1e-4, 'sample log-prob renormalized over the top-k');
    assert.ok(Math.abs(s.scaledLogprobs[0] - Math.log(p[t])) < 1e-4, 'scaled log-prob is untruncated');
  }
  const q = p.map((x, i) => (keep.has(i) ? x / mass : 0));
  const x = chiSquare(counts, q, 4000);
  assert.ok(x < CHI2_001[4], `chi-square ${x.toFixed(1)}`);
});

test('top-p keeps the smallest prefix holding the mass (exact support), alone and after top-k', async () => {
  const model = tinyModel({ vocab_size: 40 }, 24, 0.3);
  const prompt = [9, 10, 11];
  const { logits } = await fullLogits(model, prompt);
  const T = 1, p = softmax64(logits, T), order = ranked(p);
  for (const [topK, topP] of [[0, 0.5], [0, 0.9], [6, 0.7]] as const) {
    const cand = topK ? order.slice(0, topK) : order;
    const universe = cand.reduce((a, i) => a + p[i], 0);
    const support: number[] = [];
    let before = 0;
    for (const i of cand) {
      if (support.length > 0 && before >= topP * universe) break;
      support.push(i); before += p[i];
    }
    // Stay clear of a boundary that float32 could round either way.
    const margin = Math.abs(before - p[support[support.length - 1]] - topP * universe);
    assert.ok(margin > 1e-4, `test setup: top-p boundary too close (${margin})`);
    const samples = await firstTokens(model, prompt, 3000, { temperature: T, topK, topP });
    const seen = new Set(samples.map((s) => s.tokens[0]));
    assert.equal([...seen].sort((a, b) => a - b), [...support].sort((a, b) => a - b), `support for topK=${topK} topP=${topP}`);
    for (const s of samples.slice(0, 50))
      assert.ok(Math.abs(s.sampleLogprobs[0] - Math.log(p[s.tokens[0]] / before)) < 1e-4);
  }
});

test('temperature 0 is greedy decoding (argmax of the forward pass at every step)', async () => {
  const model = tinyModel({}, 25);
  const prompt = [1, 5, 9];
  const [[s]] = await generate(engine2, model, [prompt], { temperature: 0, maxNewTokens: 12 });
  const seq = [...prompt];
  for (const t of s.tokens) {
    const { logits } = await fullLogits(model, seq);
    assert.is(t, ranked(Array.from(logits))[0]);
    seq.push(t);
  }
  assert.ok(s.sampleLogprobs.every((x) => x === 0) && s.scaledLogprobs.every((x) => x === 0));
  assert.is(s.finishReason, 'length');
});

test('same seed, same samples: 1 vs 2 threads, any batch composition, any chunking', async () => {
  const model = tinyModel({ scalar_head: true }, 26);
  const prompts = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10], [11]];
  const opts = { n: 3, maxNewTokens: 20, temperature: 0.9, topP: 0.95, seed: 123 };
  const a = await generate(engine1, model, prompts, opts);
  const b = await generate(engine2, model, prompts, { ...opts, stepsPerCall: 3, maxBatchSequences: 5 });
  const sa = JSON.stringify(a), sb = JSON.stringify(b);
  let at = 0;
  while (at < sa.length && sa[at] === sb[at]) at++;
  assert.ok(sa === sb, `differ at ${at}: ${sa.slice(at - 40, at + 20)} vs ${sb.slice(at - 40, at + 20)}`);
  const e = await generate(engine2, model, prompts, { ...opts, maxCacheBytes: 1 });  // one prompt per group
  assert.ok(JSON.stringify(e) === sa, 'grouped by the cache budget: same samples');
  // Sample j does not depend on n (the shared prompt cache computes exactly as a private one).
  const one = await generate(engine1, model, prompts, { ...opts, n: 1 });
  one.forEach((ps, i) => assert.ok(JSON.stringify(ps[0]) === JSON.stringify(a[i][0]), `prompt ${i}: n = 1 vs n = 3`));
  // Prompt 2 alone, with its id: the same samples.
  const c = await generate(engine2, model, [prompts[2]], { ...opts, promptIds: [2] });
  const same = (x: any, y: any) => x.tokens.join() === y.tokens.join() && Array.from(x.logprobs).join() === Array.from(y.logprobs).join() &&
    Array.from(x.values).join() === Array.from(y.values).join();
  for (let j = 0; j < 3; j++) assert.ok(same(c[0][j], a[2][j]), `sample ${j}`);
  // Another seed differs.
  const d = await generate(engine2, model, prompts, { ...opts, seed: 124 });
  assert.ok(JSON.stringify(d) !== sa, 'another seed gives other samples');
});

test('stop tokens end a sample (emitted, then stop); the rest runs to maxNewTokens', async () => {
  const model = tinyModel({ vocab_size: 12 }, 27, 0.2);
  const prompts = [[1, 2], [3, 4, 5]];
  const free = await generate(engine2, model, prompts, { n: 6, maxNewTokens: 15, seed: 8 });
  const stopped = await generate(engine2, model, prompts, { n: 6, maxNewTokens: 15, seed: 8, stopTokens: [3], eosTokenId: 7 });
  let stops = 0;
  for (let p = 0; p < 2; p++)
    for (let j = 0; j < 6; j++) {
      const f = free[p][j].tokens, s = stopped[p][j];
      const cut = f.findIndex((t) => t === 3 || t === 7);
      if (cut < 0) {
        assert.equal(s.tokens, f);
        assert.is(s.finishReason, 'length');
        assert.is(s.tokens.length, 15);
      } else {
        stops++;
        assert.equal(s.tokens, f.slice(0, cut + 1), 'a prefix of the free-running sample, stop token included');
        assert.is(s.finishReason, 'stop');
        assert.is(s.logprobs.length, cut + 1);
      }
    }
  assert.ok(stops >= 3, `test setup: only ${stops} samples hit a stop token`);
});

test('the context limit ends samples with finishReason "context"', async () => {
  const model = tinyModel({ max_position_embeddings: 16 }, 28);
  const [[s]] = await generate(engine2, model, [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], { maxNewTokens: 50 });
  assert.is(s.tokens.length, 6);
  assert.is(s.finishReason, 'context');
});

test('sampled log-probs agree with logprobs() scoring of the same responses', async () => {
  const model = tinyModel({ scalar_head: true }, 29);
  const prompts = [[1, 2, 3], [4, 5, 6, 7, 8]];
  const out = await generate(engine2, model, prompts, { n: 2, maxNewTokens: 10, temperature: 0.8, topK: 10 });
  const flatP = [prompts[0], prompts[0], prompts[1], prompts[1]];
  const flatR = out.flat().map((s) => s.tokens);
  const scored = await logprobs(engine2, model, flatP, flatR, { maxBatchTokens: 16 });
  out.flat().forEach((s, i) => {
    let sum = 0;
    s.tokens.forEach((_, j) => {
      assert.ok(Math.abs(scored[i].tokens[j] - s.logprobs[j]) < 1e-4, `pair ${i} token ${j}`);
      assert.ok(Math.abs(scored[i].values![j] - s.values![j]) < 1e-4, `value ${i} ${j}`);
      sum += s.logprobs[j];
    });
    assert.ok(Math.abs(scored[i].sum - sum) < 1e-3);
  });
});

test('progress callbacks report steps and finished sequences', async () => {
  const model = tinyModel({}, 30);
  const seen: any[] = [];
  await generate(engine2, model, [[1], [2]], { n: 2, maxNewTokens: 10, stepsPerCall: 4, onProgress: (p) => seen.push(p) });
  assert.equal(seen.map((p) => p.step), [4, 8, 10]);
  assert.is(seen[seen.length - 1].finishedSequences, 4);
  assert.is(seen[seen.length - 1].newTokens, 40);
});

test.run();
