// Quark on a tiny farm policy with a hand-built reward (commas in the response): the pool fills with
// quantile-tagged samples, the best quantile's reward and the rollouts' reward rise, the sampled KL gradient
// estimator matches the exact gradient of KL(π‖π_ref), and generation after the best token beats the worst.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packSequences } from '../../ts/engine/index.ts';
import { quark, quarkStep, quantiles, quantileTokens, QUARK_DEFAULTS, type QuarkLog } from '../../ts/methods/quark.ts';
import { cloneModel, encodePrompt, sampleResponses, seededUniform, type Candidate } from '../../ts/methods/common.ts';
import { tinyFarm, mean, type TinyFarm } from './helpers.ts';

let F: TinyFarm, COMMA: number;
const commas = (c: Candidate[]) => c.map((x) => x.response.filter((t) => t === COMMA).length);
const FAST = { rolloutBatchSize: 32, batchSize: 16, microBatchSize: 16, gradientStepsPerStep: 4, maxNewTokens: 16, learningRate: 3e-3, warmupSteps: 0, klCoef: 0.05 };

test.before(async () => {
  F = await tinyFarm(3, { unlabeled: 64 });
  COMMA = F.tok.encode(',')[0];
});

test('defaults are AlpacaFarm\'s Quark (4 quantiles, best quantile only, β 0.05, pool kept)', () => {
  const d = QUARK_DEFAULTS;
  assert.equal([d.numQuantiles, d.bestQuantileOnly, d.klCoef, d.clearPool, d.rolloutBatchSize, d.batchSize, d.learningRate], [4, true, 0.05, false, 512, 256, 3e-6]);
});

test('quantiles: sorted best first, equal chunks, the last takes the remainder', () => {
  const pool = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5].map((reward, row) => ({ row, response: [1], reward }));
  const q = quantiles(pool, 4);
  assert.equal(q.sizes, [2, 2, 2, 5]);
  assert.equal(q.sorted.map((s) => s.reward), [9, 6, 5, 5, 5, 4, 3, 3, 2, 1, 1]);
  assert.equal(q.sorted.slice(2, 5).map((s) => s.row), [4, 8, 10], 'ties keep pool order');
  assert.equal(q.quantile, [0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 3]);
});

test('the sampled KL gradient is an unbiased estimate of the exact gradient of KL(π‖π_ref)', async () => {
  // A policy one SFT-ish step away from the reference; compare the mean KL-only gradient over many seeds
  // with the finite-difference derivative of the exact KL along that mean direction.
  const { engine, tok } = F;
  const ref = cloneModel(engine, F.policy), policy = cloneModel(engine, F.policy);
  for (const p of policy.parameters()) for (let i = 0; i < p.data.length; i += 7) p.data[i] += 0.05 * Math.sin(i);
  const items = F.splits.unlabeled.slice(0, 3).map((r) => ({ plain: encodePrompt(tok, r), response: tok.encode(' a, b and c'), tag: [] as number[] }));
  const grads = async (seed: number) => {
    const opt = engine.createOptimizer(policy, { lr: 0, maxGradNorm: 0 });  // lr 0: the step leaves the weights alone
    await quarkStep(engine, policy, ref, opt, items, { klCoef: 1, microBatchSize: 8, padId: 0, V0: ref.config.vocab_size, bosId: tok.bosId, rand: seededUniform(seed) });
    return policy.gradients().map((g) => Float64Array.from(g.data));
  };
  const nllOnly = await (async () => {
    const opt = engine.createOptimizer(policy, { lr: 0, maxGradNorm: 0 });
    await quarkStep(engine, policy, ref, opt, items, { klCoef: 0, microBatchSize: 8, padId: 0, V0: ref.config.vocab_size, bosId: tok.bosId, rand: seededUniform(0) });
    return policy.gradients().map((g) => Float64Array.from(g.data));
  })();
  const S = 24;
  const avg = nllOnly.map((g) => new Float64Array(g.length));
  for (let s = 0; s < S; s++) (await grads(s + 1)).forEach((g, k) => g.forEach((v, i) => { avg[k][i] += (v - nllOnly[k][i]) / S; }));
  // exact KL (summed over tokens / N) as a function of the weights, by the same code with klCoef 1 reported
  const exactKl = async () => {
    const opt = engine.createOptimizer(policy, { lr: 0, maxGradNorm: 0 });
    const r = await quarkStep(engine, policy, ref, opt, items, { klCoef: 0, microBatchSize: 8, padId: 0, V0: ref.config.vocab_size, bosId: tok.bosId, rand: seededUniform(0) });
    return r.kl / r.tokens;
  };
  const norm = Math.sqrt(avg.reduce((s, g) => s + g.reduce((a, v) => a + v * v, 0), 0));
  const eps = 1e-3 / norm;
  const params = policy.parameters();
  const shift = (sign: number) => params.forEach((p, k) => avg[k].forEach((v, i) => { p.data[i] += sign * eps * v; }));
  shift(1); const up = await exactKl(); shift(-2); const down = await exactKl(); shift(1);
  const directional = (up - down) / (2 * eps);  // d KL / d t along avg, should equal |avg|^2
  const expected = norm * norm;
  assert.ok(Math.abs(directional - expected) / expected < 0.25, `finite difference ${directional} vs estimator ${expected}`);
});

test('best-quantile Quark raises the reward; the pool keeps every sample', async () => {
  const policy = cloneModel(F.engine, F.policy);
  const logs: QuarkLog[] = [];
  const r = await quark(F.engine, { policy, tokenizer: F.tok, reward: commas, prompts: F.splits.unlabeled, config: { ...FAST, steps: 10 }, onStep: (l) => { logs.push(l); } });
  if (process.env.DEBUG_METHODS) console.log(logs.map((l) => [l['objective/scores'], l['quark/best_quantile_reward'], l['objective/kl']].map((x) => x.toFixed(2)).join(' ')));
  assert.is(r.model, policy, 'trained in place, no tokens');
  assert.is(r.conditioning, null);
  assert.is(r.pool.length, 10 * 32);
  assert.equal(logs.map((l) => l['quark/pool_size']), logs.map((_, i) => 32 * (i + 1)));
  for (const l of logs) for (const [k, v] of Object.entries(l)) assert.ok(Number.isFinite(v), `${k} = ${v}`);
  const scores = logs.map((l) => l['objective/scores']), best = logs.map((l) => l['quark/best_quantile_reward']);
  if (process.env.DEBUG_METHODS) console.log('scores', scores.join(' '));
  assert.ok(mean(scores.slice(-3)) > mean(scores.slice(0, 3)) + 0.5, `rollout rewards ${scores.join(' ')}`);
  assert.ok(best[best.length - 1] > best[0], `best-quantile reward ${best.join(' ')}`);
  assert.ok(logs[0]['objective/kl'] >= 0 && logs[logs.length - 1]['objective/kl'] > logs[0]['objective/kl']);
});

// Response length as the reward: it varies among a tiny policy's samples in any farm world (commas are rare in
// some), so each quantile has its own samples to condition on.
const tokens = (c: Candidate[]) => c.map((x) => x.response.length);

test('full variant: quantile tokens added, every pool sample tagged, generation after the best token beats the worst', async () => {
  const logs: QuarkLog[] = [];
  const r = await quark(F.engine, { policy: F.policy, tokenizer: F.tok, reward: tokens, prompts: F.splits.unlabeled,
    config: { ...FAST, steps: 10, gradientStepsPerStep: 8, bestQuantileOnly: false, maxNewTokens: 32 }, onStep: (l) => { logs.push(l); } });
  const ids = quantileTokens(4).map((t) => r.tokenizer.tokenToId(t));
  assert.equal(ids, [0, 1, 2, 3].map((i) => F.tok.vocabSize + i));
  assert.is(r.model.config.vocab_size, F.tok.vocabSize + 4);
  assert.is(F.policy.config.vocab_size, F.tok.vocabSize, 'the input policy is untouched');
  assert.equal(r.conditioning, { method: 'quark', tokens: quantileTokens(4), generateWith: '<|quark_q0|>' });
  assert.equal(logs.map((l) => l['quark/train_examples']), logs.map((l) => l['quark/pool_size']), 'every quantile is trained on');
  const prompts = F.splits.unlabeled.map((x) => encodePrompt(r.tokenizer, x));
  const reward = async (tag: number) => {
    const s = await sampleResponses(F.engine, r.model, r.tokenizer, prompts.map((p) => [p[0], tag, ...p.slice(1)]), prompts.map((_, i) => i),
      { n: 4, seed: 9, temperature: 1, topP: 1, topK: 0, maxNewTokens: 32 });
    return mean(s.flat().map((x) => x.tokens.length));
  };
  const bestR = await reward(ids[0]!), worstR = await reward(ids[3]!);
  if (process.env.DEBUG_METHODS) console.log('best', bestR, 'worst', worstR);
  assert.ok(bestR > worstR + 4, `tokens after the best token ${bestR}, after the worst ${worstR}`);
});

test.run();
