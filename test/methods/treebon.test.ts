// TreeBoN on a tiny SFT policy of the farm world: with one child per candidate it is best-of-N exactly
// (same samples, same choice, same token count); its token count is best-of-N's at equal N and length; a
// forked continuation equals the unforked one; the weighted implicit DPO reward computed incrementally over
// the tree equals Σ w_k (log π_dpo − log π_ref) from engine.logprobs; a partial reward aligned with the final one
// makes the tree beat best-of-n at no more generated tokens.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Model } from '../../ts/engine/index.ts';
import { bestOfN } from '../../ts/methods/best-of-n.ts';
import { cloneModel, encodePrompt, type Candidate } from '../../ts/methods/common.ts';
import {
  ImplicitRewardScorer, implicitRewardWeight, resolveTreeBoNConfig, segmentLengths, treeBoN, weightedImplicitReward,
} from '../../ts/methods/treebon.ts';
import { tinyFarm, type TinyFarm } from './helpers.ts';

let F: TinyFarm, rm: Model;
const records = () => F.splits.unlabeled.slice(0, 24);

test.before(async () => {
  F = await tinyFarm(3, { unlabeled: 24 });
  rm = F.engine.createModel(F.arch({ num_hidden_layers: 1, lm_head: false, scalar_head: true }), { seed: 7, initStd: 0.3 });
  for (const p of rm.parameters()) if (p.name === 'score.weight') p.data.forEach((_, i) => { p.data[i] = Math.sin(i + 1); });
});

test('settings: N divisible by N_children, segments sum to l_max, the implicit reward needs its two models', () => {
  assert.equal(segmentLengths({ maxNewTokens: 10, depth: 3, segmentLength: null }), [3, 3, 4]);
  assert.equal(segmentLengths({ maxNewTokens: 10, depth: 3, segmentLength: 2 }), [2, 2, 6]);
  assert.throws(() => resolveTreeBoNConfig({ n: 6, branchingFactor: 4 }), /n \(6\) must be divisible by branchingFactor \(4\)/);
  assert.throws(() => resolveTreeBoNConfig({ depth: 5, maxNewTokens: 4 }), /depth \(5\) exceeds maxNewTokens/);
  assert.throws(() => resolveTreeBoNConfig({ depth: 3, maxNewTokens: 8, segmentLength: 4 }), /leaves no token/);
  assert.throws(() => resolveTreeBoNConfig({ partialReward: 'gold' as never }), /partialReward must be/);
  assert.throws(() => resolveTreeBoNConfig({ branchingFactr: 2 } as never), /did you mean "branchingFactor"/);
  assert.is(implicitRewardWeight(0), 1);
  assert.is(implicitRewardWeight(3), 0.25);
});

test('implicit-dpo without a DPO model and its reference is refused before any work', async () => {
  const err = await treeBoN(F.engine, { policy: F.policy, reward: rm, tokenizer: F.tok, records: records() }).then(() => null, (e) => e);
  assert.match(String(err), /needs the DPO model and its reference/);
});

for (const depth of [1, 3]) {
  test(`N_children = 1, depth ${depth}: best-of-N exactly (same outputs, rewards, token count)`, async () => {
    const cfg = { n: 6, maxNewTokens: 18, seed: 5, temperature: 1, topP: 0.9 };
    const bon = await bestOfN(F.engine, F.policy, rm, F.tok, records(), { ...cfg, promptBatchSize: 7 });
    const tree = await treeBoN(F.engine, { policy: F.policy, reward: rm, partialReward: rm, tokenizer: F.tok, records: records(),
      config: { ...cfg, branchingFactor: 1, depth, partialReward: 'reward-model', promptBatchSize: 5 } });
    assert.equal(tree.outputs.map((o) => o.tokens), bon.outputs.map((o) => o.tokens));
    assert.equal(tree.outputs.map((o) => o.output), bon.outputs.map((o) => o.output));
    tree.outputs.forEach((o, i) => assert.ok(Math.abs(o.reward - bon.outputs[i].reward) < 1e-5, `record ${i}`));
    assert.is(tree.metrics['treebon/generated_tokens'], bon.metrics['bon/generated_tokens']);
    assert.is(tree.outputs.reduce((a, o) => a + o.generatedTokens, 0), bon.metrics['bon/generated_tokens']);
    assert.is(tree.metrics['treebon/leaves_per_instruction'], 6);
  });
}

test('token count: without EOS the tree generates exactly N x l_max per instruction, as best-of-N; with EOS at most that', async () => {
  const noEos = Object.create(F.tok, { eosId: { value: null } });
  const n = 8, L = 12, recs = records().slice(0, 10);
  const bon = await bestOfN(F.engine, F.policy, rm, noEos, recs, { n, maxNewTokens: L });
  const tree = await treeBoN(F.engine, { policy: F.policy, reward: rm, tokenizer: noEos, records: recs,
    config: { n, branchingFactor: 4, depth: 3, maxNewTokens: L, partialReward: 'reward-model' } });
  assert.is(bon.metrics['bon/generated_tokens'], n * L * recs.length);
  assert.is(tree.metrics['treebon/generated_tokens'], n * L * recs.length);
  tree.outputs.forEach((o) => { assert.is(o.generatedTokens, n * L); assert.is(o.tokens.length, L); assert.is(o.leaves, n); });
  const withEos = await treeBoN(F.engine, { policy: F.policy, reward: rm, tokenizer: F.tok, records: recs,
    config: { n, branchingFactor: 4, depth: 3, maxNewTokens: 40, partialReward: 'reward-model', keepCandidates: true } });
  withEos.outputs.forEach((o, i) => {
    assert.ok(o.generatedTokens <= n * 40, `record ${i}: ${o.generatedTokens}`);
    // n leaves from the last layer at most, plus those that ended early
    assert.ok(o.leaves >= 1 && o.leaves <= n * 3, `record ${i}: ${o.leaves} leaves`);
  });
  assert.ok(withEos.metrics['treebon/early_leaf_fraction'] > 0, 'the SFT policy stops early sometimes: those candidates stay as leaves');
  assert.ok(withEos.candidates!.flat().some((c) => c.layer < 3 && c.tokens[c.tokens.length - 1] === F.tok.eosId));
});

test('forked continuations: a leaf on root j\'s stream is best-of-N\'s sample j; a child continues exactly as the unforked prefix would', async () => {
  const n = 8, L = 24, recs = records().slice(0, 12), seed = 9;
  const tree = await treeBoN(F.engine, { policy: F.policy, reward: rm, tokenizer: F.tok, records: recs,
    config: { n, branchingFactor: 2, depth: 3, maxNewTokens: L, seed, partialReward: 'reward-model', keepCandidates: true } });
  const bon = await bestOfN(F.engine, F.policy, rm, F.tok, recs, { n, maxNewTokens: L, seed, keepCandidates: true });
  let roots = 0, kids = 0;
  for (let i = 0; i < recs.length; i++) {
    for (const leaf of tree.candidates![i]) {
      if (leaf.sample < n) { assert.equal(leaf.tokens, bon.candidates![i][leaf.sample].tokens, `record ${i} sample ${leaf.sample}`); roots++; }
      else kids++;
    }
  }
  assert.ok(roots > 0 && kids > 0, `${roots} root leaves, ${kids} forked leaves`);
  // fork vs teacher-forced prefix: the same stream, the same position, the same tokens
  const prompt = encodePrompt(F.tok, recs[0]);
  const s = F.engine.session(F.policy, { maxSequences: 3, maxLength: 160 });
  const u = F.engine.session(F.policy, { maxSequences: 1, maxLength: 160 });
  try {
    const [a] = await s.addPrompts([prompt], { streams: [5] });
    await s.sample([a], { steps: 6, maxNewTokens: 30, seed });
    const prefix = Array.from(s.info(a).tokens).slice(prompt.length);
    const [kid] = s.fork(a, [77]);
    const forked = await s.sample([kid], { steps: 10, maxNewTokens: 30, seed });
    const [b] = await u.addPrompts([prompt], { streams: [77] });
    await u.extend(b, prefix);
    const unforked = await u.sample([b], { steps: 10, maxNewTokens: 30, seed });
    assert.equal(Array.from(forked.token), Array.from(unforked.token));
    for (let k = 0; k < forked.logprob.length; k++) assert.ok(Math.abs(forked.logprob[k] - unforked.logprob[k]) < 1e-4);
  } finally { s.dispose(); u.dispose(); }
});

test('the weighted implicit DPO reward over a forked tree equals Σ w_k (log π_dpo − log π_ref) from engine.logprobs', async () => {
  const dpo = cloneModel(F.engine, F.policy);
  for (const p of dpo.parameters()) if (p.name.includes('mlp.down_proj')) p.data.forEach((x, i) => { p.data[i] = x * (1 + 0.3 * Math.sin(i)); });
  const ref = F.policy;
  const prompts = records().slice(0, 2).map((r) => encodePrompt(F.tok, r));
  const sc = new ImplicitRewardScorer(F.engine, dpo, ref, { maxSequences: 6, maxLength: 160 });
  try {
    const [h0, h1] = await sc.start(prompts, 1);
    const segA = [40, 41, 42, 43], segB = [50, 51, 52], segC = [60, 61];
    await sc.extend(h0, segA);
    const [k1] = sc.fork(h0, 1);
    const r0 = await sc.extend(h0, segB);
    const rk = await sc.extend(k1, segC);
    const r1 = await sc.extend(h1, [...segA, ...segB]);  // another prompt, one segment
    const want = async (p: number[], resp: number[]) => {
      const [d] = await F.engine.logprobs(dpo, [p], [resp]), [r] = await F.engine.logprobs(ref, [p], [resp]);
      let s = 0;
      resp.forEach((_, k) => { s += (1 / (k + 1)) * (d.tokens[k] - r.tokens[k]); });
      assert.ok(Math.abs(s - weightedImplicitReward(d.tokens, r.tokens)) < 1e-9);
      return s;
    };
    const w0 = await want(prompts[0], [...segA, ...segB]), wk = await want(prompts[0], [...segA, ...segC]), w1 = await want(prompts[1], [...segA, ...segB]);
    assert.ok(Math.abs(w0) > 1e-3, 'the two models differ, so the reward is not trivially 0');
    for (const [got, exp, name] of [[r0, w0, 'parent'], [rk, wk, 'fork'], [r1, w1, 'one segment']] as const)
      assert.ok(Math.abs(got - exp) < 2e-4 * Math.max(1, Math.abs(exp)), `${name}: ${got} vs ${exp}`);
    assert.is(sc.tokens, 4 + 3 + 2 + 7);
  } finally { sc.dispose(); }
  // the DPO model as the policy: the sampler's log-probs stand in for its session
  const solo = new ImplicitRewardScorer(F.engine, null, ref, { maxSequences: 1, maxLength: 160 });
  try {
    const [h] = await solo.start([prompts[0]], 1);
    const [d] = await F.engine.logprobs(dpo, [prompts[0]], [[40, 41, 42]]), [r] = await F.engine.logprobs(ref, [prompts[0]], [[40, 41, 42]]);
    const got = await solo.extend(h, [40, 41, 42], d.tokens);
    assert.ok(Math.abs(got - weightedImplicitReward(d.tokens, r.tokens)) < 1e-4);
    await assert.not.throws(() => solo.reward(h));
    const err = await solo.extend(h, [5]).then(() => null, (e) => e);
    assert.match(String(err), /pass the sampled log-probs/);
  } finally { solo.dispose(); }
});

test('implicit-dpo end to end: a DPO model and its reference guide the tree; partial-reward tokens are counted', async () => {
  const dpo = cloneModel(F.engine, F.policy);
  for (const p of dpo.parameters()) if (p.name.includes('mlp.down_proj')) p.data.forEach((x, i) => { p.data[i] = x * (1 + 0.3 * Math.sin(i)); });
  const recs = records().slice(0, 8);
  const r = await treeBoN(F.engine, { policy: F.policy, reward: rm, dpo, ref: F.policy, tokenizer: F.tok, records: recs,
    config: { n: 4, branchingFactor: 2, depth: 2, maxNewTokens: 16 } });
  assert.is(r.outputs.length, recs.length);
  assert.ok(r.metrics['treebon/partial_reward_tokens'] > 0);
  assert.ok(r.metrics['treebon/reward_best'] >= r.metrics['treebon/reward_mean']);
  // the DPO model being the policy uses the sampler's log-probs: the same search as with a copy of it
  const copy = cloneModel(F.engine, F.policy);
  const a = await treeBoN(F.engine, { policy: F.policy, reward: rm, dpo: F.policy, ref: dpo, tokenizer: F.tok, records: recs, config: { n: 4, branchingFactor: 2, depth: 2, maxNewTokens: 16 } });
  const b = await treeBoN(F.engine, { policy: F.policy, reward: rm, dpo: copy, ref: dpo, tokenizer: F.tok, records: recs, config: { n: 4, branchingFactor: 2, depth: 2, maxNewTokens: 16 } });
  assert.equal(a.outputs.map((o) => o.tokens), b.outputs.map((o) => o.tokens));
});

test('a partial reward aligned with the final one: the tree beats best-of-n with more generated tokens', async () => {
  const COMMA = F.tok.encode(',')[0];
  const commas = (c: Candidate[]) => c.map((x) => x.response.filter((t) => t === COMMA).length);
  const recs = F.splits.unlabeled.slice(0, 24), n = 8, L = 24;
  // Candidates that end early leave the beam and the kept ones refill it, so with EOS the tree generates more than
  // best-of-8 (no EOS: exactly as much, above); best-of-12 generates more than the tree here.
  const bon = await bestOfN(F.engine, F.policy, commas, F.tok, recs, { n: 12, maxNewTokens: L, seed: 3 });
  const tree = await treeBoN(F.engine, { policy: F.policy, reward: commas, tokenizer: F.tok, records: recs,
    config: { n, branchingFactor: 4, depth: 3, maxNewTokens: L, seed: 3, partialReward: 'reward-model' } });
  const [t, b] = [tree.metrics['treebon/reward_best'], bon.metrics['bon/reward_best']];
  if (process.env.DEBUG_METHODS) console.log('commas: treebon', t, 'best-of-12', b, 'tokens', tree.metrics['treebon/generated_tokens'], bon.metrics['bon/generated_tokens']);
  assert.ok(tree.metrics['treebon/generated_tokens'] <= bon.metrics['bon/generated_tokens'], 'the tree spends at most best-of-12\'s tokens');
  assert.ok(t > b + 0.2, `treebon ${t} vs best-of-12 ${b}`);
});

test.run();
