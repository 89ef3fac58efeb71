// RLP on a tiny farm policy: RLP-SPG's selection rules on hand-made groups; RLP-UML's multi-view loss with
// gradients that reach the reward model's backbone through the engine (finite differences on its weights),
// and that decreases while the reward model trains; the policy samples and both reward-model variants.
import { test } from 'uvu';
import * as assert from 'uvu/assert';

import { scalarModelFrom, seededUniform } from '../../ts/methods/common.ts';
import type { PreferenceRecord } from '../../ts/methods/reward-model.ts';
import {
  groupOutputs, normalizedTextEquivalence, resolveRlpConfig, rlpRewardModel, sampleRlpOutputs, spgChoose, syntheticPreferences, umlAuxiliary,
  type RLPSample,
} from '../../ts/methods/rlp.ts';
import { sampleIndices } from '../helpers/numeric.ts';
import { tinyFarm, type TinyFarm } from './helpers.ts';

let F: TinyFarm, samples: RLPSample[], prefs: PreferenceRecord[];

test.before(async () => {
  F = await tinyFarm(3, { unlabeled: 40 });
  samples = await sampleRlpOutputs(F.engine, F.policy, F.tok, F.splits.unlabeled, { n: 4, maxNewTokens: 20, seed: 2 });
  // human pairs: the demonstration over its first two words
  prefs = F.splits.sft.slice(0, 120).map((r, i) => {
    const bad = r.output.split(' ').slice(0, 2).join(' ');
    return i % 2 ? { instruction: r.instruction, input: r.input ?? '', output_1: r.output, output_2: bad, preference: 1 }
      : { instruction: r.instruction, input: r.input ?? '', output_1: bad, output_2: r.output, preference: 2 };
  }).filter((p) => p.output_1 !== p.output_2 && F.tok.encode(p.instruction + p.input + p.output_1 + p.output_2).length < 110).slice(0, 40);
});

test('defaults follow RLP (n 10, λ 0.5, confidence 0.5); bad settings are refused', () => {
  const c = resolveRlpConfig();
  assert.equal([c.n, c.lambda, c.minConfidence], [10, 0.5, 0.5]);
  assert.throws(() => resolveRlpConfig({ n: 1 }), /n must be an integer >= 2/);
  assert.throws(() => resolveRlpConfig({ minConfidence: 1.5 }), /minConfidence must be a number in \[0, 1\]/);
  assert.throws(() => resolveRlpConfig({ lamda: 1 } as never), /did you mean "lambda"/);
  assert.throws(() => resolveRlpConfig({ maxInstructions: 0 }), /maxInstructions/);
});

test('SPG: equivalence groups, confidence, chosen = best of the largest group, rejected = a random output outside it', () => {
  const outs = ['42', 'The answer is 43.', '42.', ' 42 ', 'forty', 'The answer is 43', '42!', 'x', 'y', 'z'];
  const groups = groupOutputs(outs, (a, b) => normalizedTextEquivalence('', '', a, b));
  assert.equal(groups, [[0, 2, 3, 6], [1, 5], [4], [7], [8], [9]]);
  const rewards = [0.1, 0.9, 0.5, 0.2, 0.3, 0.0, 0.4, 0.8, 0.7, 0.6];
  // 4 of 10 agree: below 0.5, no pair
  let c = spgChoose(rewards, groups, 0.5, () => 0);
  assert.is(c.confidence, 0.4);
  assert.equal([c.chosen, c.rejected, c.skipped], [null, null, 'low-confidence']);
  // at 0.4 the group qualifies: chosen = its highest reward (index 2), rejected outside it, every outside index reachable
  const seen = new Set<number>();
  for (let k = 0; k < 60; k++) {
    c = spgChoose(rewards, groups, 0.4, seededUniform(5, k));
    assert.is(c.chosen, 2);
    assert.ok(!groups[0].includes(c.rejected!), `rejected ${c.rejected} is outside the group`);
    seen.add(c.rejected!);
  }
  assert.equal([...seen].sort(), [1, 4, 5, 7, 8, 9]);
  assert.is(spgChoose(rewards, groups, 0.4, () => 0.999999).rejected, 9);
  // all equivalent: nothing outside, no pair
  c = spgChoose([1, 2, 3, 4], [[0, 1, 2, 3]], 0.5, () => 0);
  assert.equal([c.confidence, c.skipped], [1, 'all-equivalent']);
  // a tie for the largest group goes to the group holding the highest reward
  c = spgChoose([0.1, 0.2, 0.9, 0.3], [[0, 1], [2, 3]], 0.5, () => 0);
  assert.equal([c.confidence, c.chosen, c.rejected], [0.5, 2, 0]);
  assert.throws(() => spgChoose([1, 2], [[0]], 0.5, () => 0), /groups cover 1 outputs, 2 rewards/);
});

test('SPG pairs from samples: preference 1 for the chosen output, counts of the skipped instructions', () => {
  const s: RLPSample[] = [
    { instruction: 'a', input: '', outputs: ['1', '1', '2', '1'] },   // 0.75: pair
    { instruction: 'b', input: '', outputs: ['1', '2', '3', '4'] },   // 0.25: skipped
    { instruction: 'c', input: '', outputs: ['x', 'x.', 'X', 'x'] },  // all equivalent
  ];
  const r = syntheticPreferences(s, [[0.5, 0.7, 0.9, 0.1], [1, 2, 3, 4], [1, 1, 1, 1]], normalizedTextEquivalence, { minConfidence: 0.5, seed: 1 });
  assert.equal(r.pairs, [{ instruction: 'a', input: '', output_1: '1', output_2: '2', preference: 1 }]);
  assert.equal([r.stats['spg/pairs'], r.stats['spg/low_confidence'], r.stats['spg/all_equivalent']], [1, 1, 1]);
  assert.ok(Math.abs(r.stats['spg/reward_margin'] - (0.7 - 0.9)) < 1e-9, 'the chosen output is the group\'s best by reward, even below the rejected one');
});

test('samples: n outputs per instruction from the policy, the same for the same seed', async () => {
  assert.ok(samples.length >= 38, `${samples.length} instructions`);
  samples.forEach((s) => assert.is(s.outputs.length, 4));
  const again = await sampleRlpOutputs(F.engine, F.policy, F.tok, F.splits.unlabeled.slice(0, 6), { n: 4, maxNewTokens: 20, seed: 2, sampleBatchSize: 5 });
  assert.equal(again.map((s) => s.outputs), samples.slice(0, 6).map((s) => s.outputs));
  assert.ok(samples.filter((s) => new Set(s.outputs).size >= 2).length > 20, 'most instructions give two distinct views');
});

test('UML: gradients of λ·L_M reach the reward model\'s backbone (finite differences on its weights)', async () => {
  const rm = scalarModelFrom(F.engine, F.policy);
  const aux = umlAuxiliary(F.engine, rm, F.tok, samples, { umlBatchSize: 6, latentDim: 4, encoderHidden: 8, lambda: 0.5, seed: 3 });
  rm.zeroGrad();
  await aux.gradients(2);
  const grads = rm.gradients().map((p) => ({ name: p.name, data: new Float32Array(p.data) }));
  const params = rm.parameters();
  let checked = 0;
  for (let pi = 0; pi < params.length; pi++) {
    const p = params[pi];
    if (p.name.startsWith('score.')) { assert.ok(grads[pi].data.every((x) => x === 0), 'the head gets no gradient from L_M'); continue; }
    const idx = sampleIndices(p.data.length, 3, pi + 1);
    const fd: number[] = [];
    for (const i of idx) {
      const orig = p.data[i], eps = 1e-2;
      p.data[i] = orig + eps; const lp = await aux.loss(2);
      p.data[i] = orig - eps; const lm = await aux.loss(2);
      p.data[i] = orig;
      fd.push((lp - lm) / (Math.fround(orig + eps) - Math.fround(orig - eps)));
    }
    const an = idx.map((i) => grads[pi].data[i]);
    let num = 0, den = 0;
    for (let k = 0; k < fd.length; k++) { num += (fd[k] - an[k]) ** 2; den += Math.max(fd[k] ** 2, an[k] ** 2); }
    const rel = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-6);
    assert.ok(rel < 3e-2, `${p.name}: relative error ${rel.toExponential(2)} (fd ${fd.map((x) => x.toExponential(3))} vs ${an.map((x) => x.toExponential(3))})`);
    checked++;
  }
  assert.ok(checked >= 10);
  const norm = Math.hypot(...grads.flatMap((g) => Array.from(g.data)));
  assert.ok(norm > 1e-4, `the backbone gradient is not trivially 0 (${norm})`);
});

test('UML: the multi-view loss decreases while the reward model trains; SPG trains on human + synthetic pairs', async () => {
  const logs: Record<string, number>[] = [];
  const uml = await rlpRewardModel(F.engine, {
    variant: 'uml', init: F.policy, tokenizer: F.tok, preferences: prefs, samples,
    config: { umlBatchSize: 8, latentDim: 8, encoderHidden: 16, encoderLr: 3e-3, seed: 4, rewardModel: { lr: 1e-3, epochs: 8, batchSize: 8 } },
    onStep: (l) => { logs.push(l as Record<string, number>); },
  });
  const m = (xs: Record<string, number>[]) => xs.reduce((a, l) => a + l['uml/loss'], 0) / xs.length;
  const first = m(logs.slice(0, 6)), last = m(logs.slice(-6));
  if (process.env.DEBUG_METHODS) console.log('uml/loss', first, '->', last, 'steps', logs.length, 'bt loss', logs[0].loss, '->', logs[logs.length - 1].loss);
  assert.ok(last < first - 0.05, `uml/loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  assert.ok(uml.umlInstructions! > 20);
  assert.ok(logs.every((l) => Number.isFinite(l['uml/mi_jsd']) && l['uml/skl'] >= 0));
  assert.ok(uml.training.lastEpochAccuracy > 0.6, `the Bradley-Terry part still learns (${uml.training.lastEpochAccuracy})`);
  // SPG with a reward that prefers longer outputs and exact-text equivalence on outputs made to agree
  const agreeing = samples.map((s, i) => ({ ...s, outputs: i % 2 ? [s.outputs[0], s.outputs[0], s.outputs[0], s.outputs[1]] : s.outputs }));
  const lengthReward = (c: { output: string }[]) => c.map((x) => x.output.length);
  const spg = await rlpRewardModel(F.engine, {
    variant: 'spg', init: F.policy, tokenizer: F.tok, preferences: prefs, samples: agreeing, reward: lengthReward,
    config: { seed: 4, rewardModel: { lr: 1e-3, epochs: 1, batchSize: 8 } },
  });
  assert.ok(spg.synthetic!.length >= 15 && spg.synthetic!.length <= agreeing.length, `${spg.synthetic!.length} synthetic pairs`);
  assert.ok(spg.spg!['spg/confidence_mean'] > 0.4);
  assert.is(spg.training.steps, Math.ceil((prefs.length + spg.synthetic!.length) / 8));
  const err = await rlpRewardModel(F.engine, { variant: 'spg', init: F.policy, tokenizer: F.tok, preferences: prefs, samples }).then(() => null, (e) => e);
  assert.match(String(err), /RLP-SPG needs the reward model/);
});

test('UML resumes bit for bit: the encoder and critic are part of the reward model\'s checkpoint', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'rlp-uml-'));
  try {
    const cfg = { umlBatchSize: 6, latentDim: 4, encoderHidden: 8, seed: 5, rewardModel: { lr: 1e-3, epochs: 1, batchSize: 8 } };
    const run = async (stopAt: number | null, resume: boolean) => {
      const losses: number[] = [];
      const r = await rlpRewardModel(F.engine, { variant: 'uml', init: F.policy, tokenizer: F.tok, preferences: prefs, samples, config: cfg,
        checkpoint: { dir, every: 2, resume }, onStep: (l) => { losses.push(l['uml/loss']!); return stopAt === null || l.step < stopAt; } });
      return { r, losses };
    };
    const whole = await (async () => {
      const d2 = mkdtempSync(join(tmpdir(), 'rlp-uml-b-'));
      try {
        const losses: number[] = [];
        const r = await rlpRewardModel(F.engine, { variant: 'uml', init: F.policy, tokenizer: F.tok, preferences: prefs, samples, config: cfg,
          checkpoint: { dir: d2, every: 2 }, onStep: (l) => { losses.push(l['uml/loss']!); } });
        return { r, losses };
      } finally { rmSync(d2, { recursive: true, force: true }); }
    })();
    await run(2, false);
    const rest = await run(null, true);
    assert.equal(rest.losses, whole.losses.slice(2));
    const a = rest.r.model.parameters(), b = whole.r.model.parameters();
    a.forEach((p, i) => assert.equal(Array.from(p.data), Array.from(b[i].data), p.name));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});


test.run();
