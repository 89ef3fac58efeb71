// Expert iteration on a tiny SFT policy of the farm world with a known reward (count of one token): best-of-n
// choices, SFT on them, and the policy's own greedy outputs earn more reward afterwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type Model } from '../../ts/engine/index.ts';
import { createWorld } from '../../ts/world/index.ts';
import { generateSplits } from '../../ts/data/splits.ts';
import { trainBpe, type Tokenizer } from '../../ts/tokenizer/index.ts';
import { formatPrompt } from '../../ts/data/template.ts';
import { sft } from '../../ts/methods/sft.ts';
import { expertIteration, EXPERT_ITERATION_DEFAULTS, type ExpertIterationRound } from '../../ts/methods/expert-iteration.ts';
import { cloneModel, encodePrompt, type Candidate } from '../../ts/methods/common.ts';

const world = createWorld({ seed: 3 });
const splits = generateSplits(world, { sft: 400, preference: 0, unlabeled: 64, val: 0, eval: 0 }, { seed: 3 });
const records = splits.unlabeled;
let engine: Engine, tok: Tokenizer, sftPolicy: Model, COMMA: number;

test.before(async () => {
  tok = trainBpe(splits.sft.map((r) => formatPrompt(r) + r.output), { vocabSize: 400 });
  COMMA = tok.encode(',')[0];
  engine = await Engine.create({ threads: 2, seed: 1 });
  sftPolicy = engine.createModel({ vocab_size: tok.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 160 });
  await sft(engine, sftPolicy, tok, splits.sft, { epochs: 3, lr: 5e-3, batchSize: 16 });
});

const commas = (c: Candidate[]) => c.map((x) => x.response.filter((t) => t === COMMA).length);
async function greedyReward(policy: Model): Promise<number> {
  const g = await engine.generate(policy, records.map((r) => encodePrompt(tok, r)), { n: 1, temperature: 0, maxNewTokens: 16, eosTokenId: tok.eosId });
  return g.reduce((a, s) => a + s[0].tokens.filter((t) => t === COMMA).length, 0) / g.length;
}

test('defaults: one round of best-of-16 (AlpacaFarm)', () => {
  assert.is(EXPERT_ITERATION_DEFAULTS.rounds, 1);
  assert.is(EXPERT_ITERATION_DEFAULTS.minReward, -Infinity);
});

test('expert iteration raises the mean reward of greedy outputs and of fresh samples', async () => {
  const policy = cloneModel(engine, sftPolicy);
  const before = await greedyReward(policy);
  const seen: ExpertIterationRound[] = [];
  const r = await expertIteration(engine, policy, commas, tok, records, {
    rounds: 2, bestOfN: { n: 8, maxNewTokens: 16 }, sft: { epochs: 3, lr: 3e-3, batchSize: 16 }, onRound: (x) => { seen.push(x); },
  });
  const after = await greedyReward(policy);
  if (process.env.DEBUG_METHODS) console.log({ before, after, rounds: r.rounds.map((x) => [x.bestOfN['bon/reward_mean'], x.bestOfN['bon/reward_best'], x.sft.finalLoss]) });
  assert.equal(seen, r.rounds);
  assert.is(r.rounds.length, 2);
  assert.is(r.data.length, records.length);
  const [r1, r2] = r.rounds;
  assert.ok(r1.bestOfN['bon/reward_best'] > r1.bestOfN['bon/reward_mean'], 'the choices beat an average sample');
  assert.ok(r2.bestOfN['bon/reward_mean'] > r1.bestOfN['bon/reward_mean'] + 0.1, `mean sample reward ${r1.bestOfN['bon/reward_mean']} -> ${r2.bestOfN['bon/reward_mean']}`);
  // commas are rare in this world's answers (v2 states lists in sentences): greedy 0 -> 0.31 per answer here
  assert.ok(after > before + 0.25, `greedy reward ${before} -> ${after}`);
  // The SFT targets are the best-of-n texts.
  assert.ok(r.data.every((d) => typeof d.output === 'string' && d.reward >= 0));
});

test('minReward keeps only good choices; with none left it says so', async () => {
  const policy = cloneModel(engine, sftPolicy);
  const r = await expertIteration(engine, policy, commas, tok, records, { bestOfN: { n: 4, maxNewTokens: 16 }, sft: { epochs: 1 }, minReward: 1 });
  assert.ok(r.rounds[0].kept > 0 && r.rounds[0].kept < records.length && r.data.every((d) => d.reward >= 1));
  const err = await expertIteration(engine, policy, (c: Candidate[]) => c.map(() => 0), tok, records,
    { bestOfN: { n: 2, maxNewTokens: 4 }, minReward: 5 }).then(() => null, (e: Error) => e);
  assert.match(String(err), /no choice has reward >= minReward 5/);
  const bad = await expertIteration(engine, policy, commas, tok, records, { rounds: 0 }).then(() => null, (e: Error) => e);
  assert.match(String(bad), /rounds must be an integer >= 1/);
});

test.run();
