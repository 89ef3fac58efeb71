// ppoStep on tiny models: learning a known reward, separate or shared value model, gradient accumulation,
// determinism, KL controllers, bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Optimizer } from '../../ts/engine/engine.ts';
import type { Model } from '../../ts/engine/model.ts';
import { AdaptiveKLController, FixedKLController, klControllerFromState } from '../../ts/engine/kl.ts';
import { ppoStep, resolvePPOConfig, PPO_DEFAULTS, type Rollouts } from '../../ts/engine/ppo.ts';
import { packSequences } from '../../ts/engine/rl.ts';
import { engine, rng, sample, tinyModel } from './helpers.ts';

const GOOD = 5;  // reward = number of GOOD tokens in the response

async function rollouts(policy: Model, rand: () => number, B: number, len = 6): Promise<Rollouts & { meanReward: number }> {
  const prompts = Array.from({ length: B }, (_, b) => [1 + (b % 3), 2 + (b % 2)]);
  const responses = await sample(policy, prompts, len, rand);
  const p = packSequences(prompts.map((q, b) => ({ prompt: q, response: responses[b] })));
  const scores = Float32Array.from(responses, (r) => r.filter((t) => t === GOOD).length);
  return { tokens: p.tokens, batch: p.batch, seqLen: p.seqLen, responseMask: p.mask, scores, meanReward: scores.reduce((a, b) => a + b, 0) / B };
}

test('KL controllers: fixed, adaptive with clipped proportional error, save and restore', () => {
  const f = new FixedKLController(0.1);
  f.update(100, 512);
  assert.is(f.value, 0.1);
  const a = new AdaptiveKLController({ init: 0.1, target: 6, horizon: 10000 });
  a.update(9, 512);  // error 0.5 clipped to 0.2
  assert.ok(Math.abs(a.value - 0.1 * (1 + 0.2 * 512 / 10000)) < 1e-15);
  a.update(5.4, 1000);  // error -0.1
  assert.ok(Math.abs(a.value - 0.1 * (1 + 0.2 * 512 / 10000) * (1 - 0.1 * 1000 / 10000)) < 1e-15);
  const saved = JSON.parse(JSON.stringify(a.state()));
  const b = klControllerFromState(saved);
  a.update(7, 64); b.update(7, 64);
  assert.is(a.value, b.value);
  assert.throws(() => f.restore(saved), /cannot restore a 'adaptive'/);
  assert.throws(() => new AdaptiveKLController({ init: 0.1, target: 0, horizon: 10 }), /target must be > 0/);
  assert.throws(() => a.update(NaN, 1), /current KL must be finite/);
  assert.throws(() => new FixedKLController(-1), /must be a finite number >= 0/);
});

test('config defaults follow AlpacaFarm and are validated', () => {
  const c = resolvePPOConfig();
  assert.equal([c.cliprange, c.cliprangeValue, c.vfCoef, c.gamma, c.lam, c.whitenRewards, c.initKlCoef, c.klTarget, c.klHorizon, c.ppoEpochs, c.learningRate, c.adamEps, c.maxGradNorm, c.klClamp],
    [0.2, 0.2, 0.1, 1, 1, true, 0.0067, 6, 10000, 2, 1e-5, 1e-5, 1.0, true]);
  assert.ok(Object.isFrozen(PPO_DEFAULTS));
  assert.throws(() => resolvePPOConfig({ cliprange: 0 }), /cliprange must be in \(0, 1\]/);
  assert.throws(() => resolvePPOConfig({ cliprange: 1 }), /cliprange must be in \(0, 1\)/);
  assert.throws(() => resolvePPOConfig({ gamma: 2 }), /gamma must be in \[0, 1\]/);
  assert.throws(() => resolvePPOConfig({ ppoEpochs: 0 }), /ppoEpochs must be an integer/);
  assert.throws(() => resolvePPOConfig({ klEstimator: 'kx' as 'k1' }), /klEstimator/);
});

async function learn(klCoef: number, steps: number): Promise<{ rewards: number[]; kls: number[] }> {
  const policy = tinyModel({}, 11, 0.1);
  const ref = tinyModel({}, 11, 0.1);
  ref.copyFrom(policy);
  const rand = rng(42);
  const config = { learningRate: 3e-3, warmupSteps: 0, ppoEpochs: 4, initKlCoef: klCoef, seed: 9 };
  const rewards: number[] = [], kls: number[] = [];
  for (let step = 0; step < steps; step++) {
    const r = await rollouts(policy, rand, 32);
    const s = await ppoStep(engine, { policy, ref, rollouts: r, config });
    for (const [k, v] of Object.entries(s)) assert.ok(Number.isFinite(v), `${k} = ${v}`);
    assert.is(s['ppo/optimizer_steps'], 8);
    assert.is(s['objective/kl_coef'], klCoef);
    assert.ok(s['policy/clipfrac_avg'] >= 0 && s['policy/clipfrac_avg'] <= 1);
    assert.ok(s['policy/approxkl_avg'] < 0.1, 'clipping keeps each phase close to the rollout policy');
    rewards.push(r.meanReward);
    kls.push(s['objective/kl']);
  }
  if (process.env.DEBUG_PPO) console.log(klCoef, rewards, kls);
  return { rewards, kls };
}
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

test('PPO on a tiny model with a known reward raises the mean reward; the KL penalty bounds the KL', async () => {
  // reward = count of one token among 6 sampled from 8; the reference gives it about 1/8 per position.
  const weak = await learn(0.05, 12);
  assert.ok(mean(weak.rewards.slice(-2)) > mean(weak.rewards.slice(0, 2)) + 2, `weak penalty: rewards ${weak.rewards.join(' ')}`);
  // β = 1: choosing the token costs about log 8 ≈ 2 nats for a reward of 1, so the optimum stays near the reference.
  const strong = await learn(1, 12);
  assert.ok(mean(strong.rewards.slice(-3)) > mean(strong.rewards.slice(0, 2)) + 0.3, `strong penalty: rewards ${strong.rewards.join(' ')}`);
  assert.ok(Math.max(...strong.kls) < 5, `strong penalty: KL ${strong.kls.join(' ')}`);
  assert.ok(mean(strong.kls.slice(-3)) < mean(weak.kls.slice(-3)) / 2.5, `KL ${strong.kls.join(' ')} vs ${weak.kls.join(' ')}`);
});

test('separate policy and value models, explicit optimizers; adaptive KL moves the coefficient', async () => {
  const policy = tinyModel({ scalar_head: false }, 12, 0.1);
  const value = tinyModel({ lm_head: false }, 13, 0.1);
  const ref = tinyModel({ scalar_head: false }, 12, 0.1);
  const optimizer = new Optimizer(policy, { lr: 1e-3, maxGradNorm: 1 });
  const valueOptimizer = new Optimizer(value, { lr: 1e-3, maxGradNorm: 1 });
  const before = { p: Float32Array.from(policy.parameters()[2].data), v: Float32Array.from(value.parameters().at(-2)!.data) };
  const r = await rollouts(policy, rng(1), 8);
  const klController = new AdaptiveKLController({ init: 0.1, target: 0.001, horizon: 100 });
  const s1 = await ppoStep(engine, { policy, value, ref, rollouts: r, optimizer, valueOptimizer, klController, config: { miniBatchSize: 4 } });
  assert.is(s1['ppo/optimizer_steps'], 4);
  assert.is(optimizer.step, 4);
  assert.is(valueOptimizer.step, 4);
  assert.ok(policy.parameters()[2].data.some((x, i) => x !== before.p[i]), 'policy changed');
  assert.ok(value.parameters().at(-2)!.data.some((x, i) => x !== before.v[i]), 'value head changed');
  assert.is(s1['objective/kl'], 0);  // policy = reference at the start
  assert.ok(klController.value < 0.1, 'KL below target lowers the coefficient');
  const s2 = await ppoStep(engine, { policy, value, ref, rollouts: r, optimizer, valueOptimizer, klController, config: { miniBatchSize: 4 } });
  assert.ok(s2['objective/kl'] > 0 && s2['objective/kl_coef'] === klController.state().value / (1 + 0.2 * 8 / 100));
});

async function pair(seed: number): Promise<{ policy: Model; ref: Model }> {
  const policy = tinyModel({}, seed, 0.1), ref = tinyModel({}, seed, 0.1);
  // a non-zero value head, so the value loss moves the shared trunk too
  for (const p of policy.parameters()) if (p.name === 'score.weight') p.data.set(Float32Array.from(p.data, (_, i) => Math.sin(i)));
  return { policy, ref };
}

test('gradient accumulation keeps the minibatch loss: same gradient norm and statistics', async () => {
  const a = await pair(21), b = await pair(21);
  const r = await rollouts(a.policy, rng(5), 8);
  const base = { ppoEpochs: 1, miniBatchSize: 8, learningRate: 1e-3, warmupSteps: 0 };
  const sa = await ppoStep(engine, { ...a, rollouts: r, config: { ...base, gradientAccumulationSteps: 1 } });
  const sb = await ppoStep(engine, { ...b, rollouts: r, config: { ...base, gradientAccumulationSteps: 4 } });
  assert.ok(Math.abs(sa['ppo/grad_norm'] - sb['ppo/grad_norm']) < 1e-4 * sa['ppo/grad_norm'], `${sa['ppo/grad_norm']} vs ${sb['ppo/grad_norm']}`);
  for (const k of ['loss/policy_avg', 'loss/value_avg', 'val/ratio', 'val/ratio_var', 'policy/entropy_avg', 'val/error'] as const)
    assert.ok(Math.abs(sa[k] - sb[k]) < 1e-5 * Math.max(1, Math.abs(sa[k])), `${k}: ${sa[k]} vs ${sb[k]}`);
});

test('deterministic: same seed, same rollouts -> bit-identical parameters; the seed drives the shuffling', async () => {
  const run = async (seed: number) => {
    const { policy, ref } = await pair(31);
    const r = await rollouts(policy, rng(6), 8);
    await ppoStep(engine, { policy, ref, rollouts: r, config: { miniBatchSize: 2, seed, learningRate: 1e-3, warmupSteps: 0 } });
    return Float32Array.from(policy.parameters()[2].data);
  };
  const x = await run(1), y = await run(1), z = await run(2);
  assert.equal(Array.from(x), Array.from(y));
  assert.ok(x.some((v, i) => v !== z[i]));
});

test('bad input: shapes, masks, NaN scores, empty batches, minibatch larger than the batch, missing models', async () => {
  const { policy, ref } = await pair(41);
  const r = await rollouts(policy, rng(7), 4);
  const go = (over: Partial<Rollouts>, extra: Record<string, unknown> = {}) => ppoStep(engine, { policy, ref, rollouts: { ...r, ...over }, ...extra });
  const rejects = async (p: Promise<unknown>, re: RegExp) => {
    try { await p; } catch (e) { assert.match((e as Error).message, re); return; }
    assert.unreachable(`expected an error matching ${re}`);
  };
  await rejects(go({ responseMask: r.responseMask.slice(1) }), /rollouts.responseMask must have 32 elements \(batch 4 x seqLen 8\), got 31/);
  await rejects(go({ tokens: r.tokens.slice(0, 16) }), /tokens must have 32 elements/);
  const badTok = Int32Array.from(r.tokens); badTok[13] = 99;
  await rejects(go({ tokens: badTok }), /rollouts.tokens\[13\] = 99 is outside \[0, vocab_size=8\)/);
  await rejects(ppoStep(engine, { policy, ref: tinyModel({ lm_head: false }), rollouts: r }), /reference model needs an LM head/);
  const badMask = Uint8Array.from(r.responseMask); badMask[3] = 2;
  await rejects(go({ responseMask: badMask }), /rollouts.responseMask\[3\] = 2 is not 0 or 1/);
  const lastMasked = Uint8Array.from(r.responseMask); lastMasked[7] = 1;
  await rejects(go({ responseMask: lastMasked }), /last position of row 0/);
  const noResp = Uint8Array.from(r.responseMask); noResp.fill(0, 8, 16);
  await rejects(go({ responseMask: noResp }), /row 1 has no response position/);
  await rejects(go({ scores: new Float32Array([1, 2, NaN, 0]) }), /scores\[2\] is NaN/);
  await rejects(go({ scores: new Float32Array(3) }), /rollouts.scores must have 4 elements/);
  await rejects(go({ refLogp: new Float32Array(31) }), /rollouts.refLogp must have 32 elements/);
  await rejects(go({ batch: 0, tokens: new Int32Array(0), responseMask: new Uint8Array(0), scores: new Float32Array(0) }), /batch must be an integer >= 1/);
  await rejects(go({}, { config: { miniBatchSize: 5 } }), /miniBatchSize 5 is larger than the rollout batch 4/);
  await rejects(ppoStep(engine, { policy, rollouts: r }), /reference model/);
  await rejects(ppoStep(engine, { policy: tinyModel({ scalar_head: false }), ref, rollouts: r }), /needs a scalar head/);
  await rejects(go({}, { optimizer: new Optimizer(ref, { lr: 1 }) }), /optimizer belongs to another model/);
});

test.run();
