// Cached incremental decoding equals the full forward pass at every step (GQA, tied/untied heads,
// scalar head, after forks), and teacher-forced extension scores tokens as the forward pass does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { native } from '../../ts/engine/native.ts';
import { engine2, fullLogits, relErr, tinyModel } from './helpers.ts';

const TOL = 1e-4;
const variants: [string, object][] = [
  ['GQA untied', { num_key_value_heads: 2 }],
  ['MHA tied', { num_key_value_heads: 4, tie_word_embeddings: true }],
  ['MQA + scalar head', { num_key_value_heads: 1, scalar_head: true }],
  ['3 layers, head_dim 16', { num_hidden_layers: 3, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 100 }],
];

for (const [name, over] of variants) {
  test(`cached decoding == full forward at every step (${name})`, async () => {
    const model = tinyModel(over, 11);
    const s = new native.DecodeSession(model.raw, { maxSequences: 4, maxLength: 40 });
    if (process.env.FARM_DECODE_IMPL === 'portable') assert.is(s.stats().kernels, 'portable');
    const prompts = [[1, 2, 3, 4, 5], [7], [9, 8, 7, 6, 5, 4, 3, 2, 1]];
    const slots: Int32Array = await s.addPrompts({
      tokens: Int32Array.from(prompts.flat()), lengths: Int32Array.from(prompts.map((p) => p.length)), copies: 1,
      streams: Float64Array.from([1, 2, 3]), threads: 2,
    });
    let worst = 0, worstV = 0;
    for (let step = 0; step < 12; step++) {
      for (const slot of slots) {
        const got = await s.nextLogits({ slot, threads: 2 });
        const toks = Array.from(s.info(slot).tokens as Int32Array);
        const ref = await fullLogits(model, toks);
        worst = Math.max(worst, relErr(got.logits, ref.logits));
        if (model.config.scalar_head) worstV = Math.max(worstV, Math.abs(got.value - ref.value!) / Math.max(1, Math.abs(ref.value!)));
      }
      await s.sample({ slots, steps: 1, maxNewTokens: 100, temperature: 1, seed: 3, threads: 2 });
    }
    assert.ok(worst < TOL, `max relative logit error ${worst}`);
    assert.ok(worstV < TOL, `max relative value error ${worstV}`);
    s.dispose();
  });
}

test('forked sequences decode exactly as their parent would, and match the forward pass', async () => {
  const model = tinyModel({}, 12);
  const s = new native.DecodeSession(model.raw, { maxSequences: 8, maxLength: 40 });
  const [a] = await s.addPrompts({ tokens: Int32Array.from([3, 1, 4, 1, 5]), lengths: Int32Array.from([5]), copies: 1, streams: Float64Array.from([42]) });
  await s.sample({ slots: Int32Array.from([a]), steps: 4, maxNewTokens: 100, seed: 9 });
  const [same, other] = s.fork({ parent: a, streams: Float64Array.from([42, 43]) });
  assert.equal(Array.from(s.info(same).tokens), Array.from(s.info(a).tokens));
  await s.sample({ slots: Int32Array.from([a, same, other]), steps: 6, maxNewTokens: 100, seed: 9 });
  assert.equal(Array.from(s.info(same).tokens), Array.from(s.info(a).tokens), 'same stream: same continuation');
  assert.not.equal(Array.from(s.info(other).tokens), Array.from(s.info(a).tokens), 'another stream diverges');
  const la = await s.nextLogits({ slot: a }), ls = await s.nextLogits({ slot: same });
  assert.equal(Array.from(la.logits), Array.from(ls.logits), 'bit-identical logits');
  const ref = await fullLogits(model, Array.from(s.info(other).tokens as Int32Array));
  const lo = await s.nextLogits({ slot: other });
  assert.ok(relErr(lo.logits, ref.logits) < TOL);
  // An unforked sequence with the same stream, sampled in one call, gives the same 10 tokens.
  const s2 = new native.DecodeSession(model.raw, { maxSequences: 1, maxLength: 40 });
  const [b] = await s2.addPrompts({ tokens: Int32Array.from([3, 1, 4, 1, 5]), lengths: Int32Array.from([5]), copies: 1, streams: Float64Array.from([42]) });
  await s2.sample({ slots: Int32Array.from([b]), steps: 10, maxNewTokens: 100, seed: 9 });
  assert.equal(Array.from(s2.info(b).tokens), Array.from(s.info(a).tokens));
  s.dispose(); s2.dispose();
});

test('extend scores forced tokens as the forward pass does (log-probs and values)', async () => {
  const model = tinyModel({ scalar_head: true }, 13);
  const s = new native.DecodeSession(model.raw, { maxSequences: 2, maxLength: 64 });
  const prompt = [5, 6, 7], resp = [8, 9, 10, 11, 12, 13, 14];
  const [a] = await s.addPrompts({ tokens: Int32Array.from(prompt), lengths: Int32Array.from([3]), copies: 1, streams: Float64Array.from([0]) });
  const r = await s.extend({ slot: a, tokens: Int32Array.from(resp) });
  const seq = [...prompt, ...resp], T = seq.length - 1;
  const targets = new Int32Array(T).fill(-1);
  for (let t = 2; t < T; t++) targets[t] = seq[t + 1];
  const f = await engine2.forward(model, [seq.slice(0, T)], { targets, logits: false });
  for (let j = 0; j < resp.length; j++) {
    assert.ok(Math.abs(r.logprob[j] - f.logp![2 + j]) < 1e-4, `logprob ${j}: ${r.logprob[j]} vs ${f.logp![2 + j]}`);
    assert.ok(Math.abs(r.value[j] - f.values![2 + j]) < 1e-4, `value ${j}`);
  }
  assert.equal(Array.from(s.info(a).tokens), seq);
  s.dispose();
});

test('long prompts are prefilled in pieces with the same result', async () => {
  // A vocabulary of 2^17 bounds the session's rows per run to 63, so a 150-token prompt goes in 3 pieces.
  const model = tinyModel({ vocab_size: 1 << 17, hidden_size: 16, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 24, max_position_embeddings: 160 }, 14, 0.2);
  const prompt = Array.from({ length: 150 }, (_, i) => (i * 7919) % (1 << 17));
  const s = new native.DecodeSession(model.raw, { maxSequences: 2, maxLength: 155 });
  const [a] = await s.addPrompts({ tokens: Int32Array.from([...prompt, 1, 2]), lengths: Int32Array.from([150, 2]), copies: 1, streams: Float64Array.from([0, 1]) });
  const got = await s.nextLogits({ slot: a });
  const ref = await fullLogits(model, prompt);
  assert.ok(relErr(got.logits, ref.logits) < TOL);
  s.dispose();
});

// The same checks through the portable (non-AVX2) kernels, in a child process (the choice is per process).
if (!process.env.FARM_DECODE_IMPL) {
  test('the portable kernels pass the same checks', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      encoding: 'utf8', env: { ...process.env, FARM_DECODE_IMPL: 'portable', NO_COLOR: '1' },
    });
    assert.is(r.status, 0, (r.stdout ?? '') + (r.stderr ?? ''));
    assert.match(r.stdout, /Passed:\s+7/);
  });
}

test.run();
