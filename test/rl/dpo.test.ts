// dpoStep and the reward model (rewardStep, scoring) on tiny models.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Optimizer } from '../../ts/engine/engine.ts';
import { dpoStep, precomputeReferenceLogps, sequenceLogps, type DPOPair } from '../../ts/engine/dpo.ts';
import { evaluateRewardModel, rewardStep, scoreResponses, type PreferencePair } from '../../ts/engine/reward.ts';
import { engine, rng, tinyModel } from './helpers.ts';

const GOOD = 5;
function makePairs(rand: () => number, n: number): DPOPair[] {
  const tok = () => { let t; do t = Math.floor(rand() * 8); while (t === GOOD); return t; };
  return Array.from({ length: n }, () => {
    const len = 3 + Math.floor(rand() * 3);
    const rejected = Array.from({ length: len }, tok);
    const chosen = rejected.map((t, i) => (i % 2 === 0 ? GOOD : t));
    return { prompt: [1, tok()], chosen, rejected };
  });
}
const rejects = async (p: Promise<unknown>, re: RegExp) => {
  try { await p; } catch (e) { assert.match((e as Error).message, re); return; }
  assert.unreachable(`expected an error matching ${re}`);
};

test('DPO step raises the chosen/rejected margin; precomputed reference log-probs give the same step', async () => {
  const pairs = makePairs(rng(1), 16);
  const run = async (precompute: boolean) => {
    const policy = tinyModel({ scalar_head: false }, 4, 0.1), ref = tinyModel({ scalar_head: false }, 4, 0.1);
    const optimizer = new Optimizer(policy, { lr: 1e-2, maxGradNorm: 1 });
    const data = precompute ? await precomputeReferenceLogps(engine, ref, pairs) : pairs;
    const stats = [];
    for (let s = 0; s < 6; s++) stats.push(await dpoStep(engine, { policy, ref: precompute ? undefined : ref, pairs: data, optimizer, config: { beta: 0.1, microBatchSize: 8 } }));
    return stats;
  };
  const a = await run(false), b = await run(true);
  assert.ok(Math.abs(a[0]['rewards/margins']) < 1e-6, 'policy = reference at the start');
  assert.ok(Math.abs(a[0].loss - Math.log(2)) < 1e-6);
  assert.ok(a[5]['rewards/margins'] > 0.1, `margins ${a.map((s) => s['rewards/margins'])}`);
  assert.ok(a[5]['rewards/accuracies'] > 0.9 && a[5].loss < a[0].loss);
  assert.ok(a[5]['logps/chosen'] > a[0]['logps/chosen']);
  for (let s = 0; s < 6; s++) assert.ok(Math.abs(a[s].loss - b[s].loss) < 1e-5, `step ${s}: ${a[s].loss} vs ${b[s].loss}`);
});

test('cDPO and IPO losses train too; micro-batches accumulate to the full-batch gradient', async () => {
  const pairs = await precomputeReferenceLogps(engine, tinyModel({ scalar_head: false }, 4, 0.1), makePairs(rng(2), 12));
  for (const cfg of [{ lossType: 'sigmoid' as const, labelSmoothing: 0.1 }, { lossType: 'ipo' as const, beta: 0.5 }]) {
    const policy = tinyModel({ scalar_head: false }, 4, 0.1);
    const optimizer = new Optimizer(policy, { lr: 1e-2, maxGradNorm: 1 });
    const first = await dpoStep(engine, { policy, pairs, optimizer, config: cfg });
    let last = first;
    for (let s = 0; s < 4; s++) last = await dpoStep(engine, { policy, pairs, optimizer, config: cfg });
    assert.ok(last.loss < first.loss && last['rewards/margins'] > 0, `${cfg.lossType}: ${first.loss} -> ${last.loss}`);
  }
  const norms = [];
  for (const micro of [12, 5, 1]) {
    const policy = tinyModel({ scalar_head: false }, 4, 0.1);
    norms.push((await dpoStep(engine, { policy, pairs, optimizer: new Optimizer(policy, { lr: 0 }), config: { microBatchSize: micro } })).gradNorm);
  }
  assert.ok(Math.abs(norms[1] - norms[0]) < 1e-4 * norms[0] && Math.abs(norms[2] - norms[0]) < 1e-4 * norms[0], String(norms));
});

test('sequenceLogps sums response tokens only, independent of batching', async () => {
  const m = tinyModel({ scalar_head: false }, 4, 0.1);
  const seqs = [{ prompt: [1, 2], response: [3] }, { prompt: [1], response: [3, 4, 5, 6] }, { prompt: [2, 2, 2], response: [7, 0] }];
  const all = await sequenceLogps(engine, m, seqs), one = await sequenceLogps(engine, m, seqs, { batchSize: 1 });
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(all[i] - one[i]) < 1e-5 && all[i] < 0);
  const r = await m.raw.forward({ tokens: new Int32Array([1, 2, 3]), targets: new Int32Array([-1, 3, -1]), batch: 1, seqLen: 3, threads: 1 });
  assert.ok(Math.abs(all[0] - r.logp[1]) < 1e-6);
});

function preferencePairs(rand: () => number, n: number): PreferencePair[] {
  return makePairs(rand, n).map((p, i) => (i % 2 ? { prompt: p.prompt, output1: p.chosen, output2: p.rejected, preference: 1 } : { prompt: p.prompt, output1: p.rejected, output2: p.chosen, preference: 2 }));
}

test('reward model: Bradley-Terry steps learn the preference; scoring is batched and order-preserving', async () => {
  const rm = tinyModel({ lm_head: false }, 6, 0.1);
  const optimizer = new Optimizer(rm, { lr: 3e-3, maxGradNorm: 1 });
  const train = preferencePairs(rng(3), 32), held = preferencePairs(rng(4), 32);
  const before = await evaluateRewardModel(engine, rm, held);
  assert.ok(Math.abs(before.loss - Math.log(2)) < 1e-6, 'the fresh (zero) head scores everything 0');
  let s = await rewardStep(engine, { model: rm, pairs: train, optimizer, config: { microBatchSize: 10 } });
  for (let k = 0; k < 25; k++) s = await rewardStep(engine, { model: rm, pairs: train, optimizer });
  const after = await evaluateRewardModel(engine, rm, held, { batchSize: 7 });
  assert.ok(s.accuracy > 0.9 && s.margin > 0 && s['rewards/chosen'] > s['rewards/rejected'], JSON.stringify(s));
  assert.ok(after.accuracy > 0.8 && after.loss < before.loss, JSON.stringify(after));
  const seqs = held.map((p) => ({ prompt: p.prompt, response: p.output2 }));
  const big = await scoreResponses(engine, rm, seqs, { batchSize: 32 }), small = await scoreResponses(engine, rm, seqs, { batchSize: 3 });
  for (let i = 0; i < seqs.length; i++) assert.ok(Math.abs(big[i] - small[i]) < 1e-5);
  const good = held.map((p, i) => (p.preference === 2 ? big[i] : NaN)).filter((x) => !Number.isNaN(x));
  const bad = held.map((p, i) => (p.preference === 1 ? big[i] : NaN)).filter((x) => !Number.isNaN(x));
  assert.ok(good.reduce((a, b) => a + b, 0) / good.length > bad.reduce((a, b) => a + b, 0) / bad.length);
});

test('bad input of the DPO and reward steps', async () => {
  const policy = tinyModel({ scalar_head: false }, 4, 0.1), rm = tinyModel({ lm_head: false }, 6, 0.1);
  const optimizer = new Optimizer(policy, { lr: 1e-3 }), rmOpt = new Optimizer(rm, { lr: 1e-3 });
  const pairs = makePairs(rng(5), 4);
  await rejects(dpoStep(engine, { policy, pairs: [], optimizer }), /empty batch/);
  await rejects(dpoStep(engine, { policy, pairs, optimizer }), /pair 0 has no precomputed reference log-probs and no ref model/);
  await rejects(dpoStep(engine, { policy, ref: policy, pairs, optimizer, config: { microBatchSize: 5 } }), /microBatchSize 5 is larger than the batch 4/);
  await rejects(dpoStep(engine, { policy, pairs: pairs.map((p) => ({ ...p, refChosenLogp: NaN, refRejectedLogp: 0 })), optimizer }), /pairs\[0\]: reference log-probs must be finite/);
  await rejects(dpoStep(engine, { policy, ref: policy, pairs, optimizer, config: { beta: 0 } }), /beta must be > 0/);
  await rejects(dpoStep(engine, { policy, ref: policy, pairs: [{ ...pairs[0], chosen: [] }], optimizer }), /empty response/);
  const pp = preferencePairs(rng(6), 4);
  await rejects(rewardStep(engine, { model: rm, pairs: [], optimizer: rmOpt }), /empty batch/);
  await rejects(rewardStep(engine, { model: rm, pairs: [{ ...pp[0], preference: 3 }], optimizer: rmOpt }), /pairs\[0\].preference must be 1, 2/);
  await rejects(rewardStep(engine, { model: policy, pairs: pp, optimizer }), /needs a scalar head/);
  await rejects(rewardStep(engine, { model: rm, pairs: pp, optimizer }), /optimizer belongs to another model/);
  await rejects(scoreResponses(engine, rm, [{ prompt: [1], response: Array(40).fill(1) }]), /more than the model's 24 positions/);
});

test.run();
