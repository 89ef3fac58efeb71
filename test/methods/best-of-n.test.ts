// Best-of-n on a tiny SFT policy of the farm world: the choice is the argmax of the reward over exactly the
// samples generate() draws, n = 1 is the first sample, larger n never lowers an instruction's reward, and
// rewards come from a reward model, a function or a pair scorer alike.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type Model } from '../../ts/engine/index.ts';
import { createWorld } from '../../ts/world/index.ts';
import { generateSplits } from '../../ts/data/splits.ts';
import { trainBpe, type Tokenizer } from '../../ts/tokenizer/index.ts';
import { formatPrompt } from '../../ts/data/template.ts';
import { sft } from '../../ts/methods/sft.ts';
import { bestOfN, BEST_OF_N_DEFAULTS } from '../../ts/methods/best-of-n.ts';
import { encodePrompt, decodeResponse, type Candidate } from '../../ts/methods/common.ts';
import type { Pair } from '../../ts/feedback/types.ts';

const world = createWorld({ seed: 5 });
const splits = generateSplits(world, { sft: 400, preference: 0, unlabeled: 30, val: 0, eval: 0 }, { seed: 5 });
const records = splits.unlabeled;
let engine: Engine, tok: Tokenizer, policy: Model;

test.before(async () => {
  tok = trainBpe(splits.sft.map((r) => formatPrompt(r) + r.output), { vocabSize: 400 });
  engine = await Engine.create({ threads: 2, seed: 1 });
  policy = engine.createModel({ vocab_size: tok.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 160 });
  await sft(engine, policy, tok, splits.sft, { epochs: 3, lr: 5e-3, batchSize: 16 });
});

test('defaults follow AlpacaFarm (n 16, temperature 1, top-p 0.9)', () => {
  assert.equal([BEST_OF_N_DEFAULTS.n, BEST_OF_N_DEFAULTS.temperature, BEST_OF_N_DEFAULTS.topP], [16, 1, 0.9]);
});

test('picks the argmax of the reward model over the very samples generate() draws', async () => {
  const rm = engine.createModel({ vocab_size: tok.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4,
    max_position_embeddings: 160, lm_head: false, scalar_head: true }, { seed: 7, initStd: 0.3 });
  for (const p of rm.parameters()) if (p.name === 'score.weight') p.data.forEach((_, i) => { p.data[i] = Math.sin(i + 1); });
  const n = 6, cfg = { n, maxNewTokens: 20, seed: 3, promptBatchSize: 7, keepCandidates: true };
  const res = await bestOfN(engine, policy, rm, tok, records, cfg);
  assert.is(res.outputs.length, records.length);
  // Redo it by hand: the same streams, every sample scored, the argmax.
  const prompts = records.map((r) => encodePrompt(tok, r));
  const samples = await engine.generate(policy, prompts, { n, maxNewTokens: 20, temperature: 1, topP: 0.9, eosTokenId: tok.eosId, seed: 3 });
  const scores = await engine.scoreResponses(rm, samples.flatMap((g, i) => g.map((s) => ({ prompt: prompts[i], response: s.tokens }))), { padId: tok.padId! });
  let distinct = 0;
  records.forEach((r, i) => {
    const mine = Array.from(scores.subarray(i * n, (i + 1) * n));
    const best = mine.indexOf(Math.max(...mine));
    const o = res.outputs[i];
    assert.equal(o.tokens, samples[i][best].tokens, `record ${i}: chose sample ${o.index}, expected ${best}`);
    assert.is(o.index, best);
    assert.ok(Math.abs(o.reward - mine[best]) < 1e-4, `reward ${o.reward} vs ${mine[best]}`);
    assert.is(o.output, decodeResponse(tok, samples[i][best].tokens));
    assert.is(o.instruction, r.instruction);
    assert.is(o.generator, 'best-of-6');
    res.candidates![i].forEach((c, j) => assert.ok(Math.abs(c.reward - mine[j]) < 1e-4));
    if (new Set(mine).size > 1) distinct++;
  });
  assert.ok(distinct > records.length / 2, 'the rewards must actually differ between samples for the test to mean something');
  assert.ok(res.metrics['bon/reward_best'] > res.metrics['bon/reward_mean']);
  // Chunking does not change the samples.
  const again = await bestOfN(engine, policy, rm, tok, records, { ...cfg, promptBatchSize: 30, keepCandidates: false });
  assert.equal(again.outputs.map((o) => o.tokens), res.outputs.map((o) => o.tokens));
  assert.is(again.candidates, undefined);
});

test('with a reward that prefers a token, larger n raises it: per instruction best-of-16 >= best-of-4 >= best-of-1', async () => {
  const COMMA = tok.encode(',')[0];
  const reward = (c: Candidate[]) => c.map((x) => x.response.filter((t) => t === COMMA).length);
  const run = (n: number) => bestOfN(engine, policy, reward, tok, records, { n, maxNewTokens: 24, seed: 11 });
  const [b1, b4, b16] = [await run(1), await run(4), await run(16)];
  records.forEach((_, i) => {
    assert.ok(b4.outputs[i].reward >= b1.outputs[i].reward && b16.outputs[i].reward >= b4.outputs[i].reward, `record ${i}`);
  });
  // best-of-1 is the first sample of best-of-16 (same streams)
  assert.is(b16.metrics['bon/reward_first'], b1.metrics['bon/reward_best']);
  const m = [b1, b4, b16].map((b) => b.metrics['bon/reward_best']);
  if (process.env.DEBUG_METHODS) console.log('best-of-1/4/16 mean comma count', m, 'mean of all samples', b16.metrics['bon/reward_mean']);
  assert.ok(m[1] > m[0] + 0.3 && m[2] > m[1] + 0.3, `mean rewards ${m.join(' ')}`);
  assert.is(b16.metrics['bon/samples'], 16 * records.length);
});

test('a pair scorer (text rewards) is paired per instruction and mapped back to the right samples', async () => {
  let calls = 0;
  const byLength = { async score(pairs: Pair[]) { calls += pairs.length; return pairs.map((p) => [p.output_1.length, p.output_2.length] as [number, number]); } };
  const res = await bestOfN(engine, policy, byLength, tok, records, { n: 5, maxNewTokens: 20, seed: 2, keepCandidates: true });
  assert.is(calls, records.length * 3);  // 5 samples -> 2 pairs + 1 self-pair per instruction
  res.outputs.forEach((o, i) => {
    const lens = res.candidates![i].map((c) => c.output.length);
    assert.is(o.output.length, Math.max(...lens));
    res.candidates![i].forEach((c, j) => assert.is(c.reward, lens[j]));
  });
});

async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Error, `expected a rejection matching ${re}`);
  assert.match((err as Error).message, re);
}

test('bad arguments give clear errors', async () => {
  await rejects(bestOfN(engine, policy, () => [1], tok, records, { n: 2, maxNewTokens: 4 }), /returned 1 scores for/);
  await rejects(bestOfN(engine, policy, () => [], tok, records, { n: 0 }), /n must be an integer >= 1/);
  await rejects(bestOfN(engine, policy, policy, tok, records, { n: 2, maxNewTokens: 4 }), /no scalar head/);
  await rejects(bestOfN(engine, policy, (c) => c.map(() => NaN), tok, records.slice(0, 1), { n: 2, maxNewTokens: 4 }), /not a finite number/);
  await rejects(bestOfN(engine, policy, () => [], tok, [], {}), /no records/);
});

test.run();
