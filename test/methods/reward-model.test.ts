// Reward modelling end to end: train on farm pairs whose preference follows a rule, score held-out pairs,
// and use the saved model as a judge through the annotator registry (`model:DIR`).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../ts/engine/index.ts';
import { createWorld } from '../../ts/world/index.ts';
import { generateSplits } from '../../ts/data/splits.ts';
import { trainBpe } from '../../ts/tokenizer/index.ts';
import { formatPrompt } from '../../ts/data/template.ts';
import { createAnnotator, registerScorerLoader } from '../../ts/feedback/index.ts';
import { loadRewardScorer, rewardScorer, trainRewardModel, type PreferenceRecord } from '../../ts/methods/reward-model.ts';

test('a reward model learns a preference rule (gold-better response wins) and judges through model:DIR', async () => {
  const world = createWorld({ seed: 4 });
  const splits = generateSplits(world, { sft: 0, preference: 900, unlabeled: 0, val: 150, eval: 0 }, { seed: 4 });
  const good = world.referencePolicy(1), bad = world.responder({ quality: 0.2, seed: 9 });
  const makePairs = (rows: typeof splits.preference, salt: number): PreferenceRecord[] => rows.map((r, i) => {
    const a = good.respond(r.instruction, r.input), b = bad.respond(r.instruction, r.input);
    const ga = world.grade(r.instruction, r.input, a).total, gb = world.grade(r.instruction, r.input, b).total;
    const flip = (i + salt) % 2 === 0;
    return { instruction: r.instruction, input: r.input, output_1: flip ? b : a, output_2: flip ? a : b, preference: (ga >= gb) !== flip ? 1 : 2, gap: Math.abs(ga - gb) };
  }).filter((p) => p.gap > 0.25);  // clear cases: a wrong item, a missing part, rambling
  const train = makePairs(splits.preference, 0), held = makePairs(splits.val, 1);
  const tok = trainBpe(train.flatMap((p) => [formatPrompt(p), p.output_1, p.output_2]), { vocabSize: 600 });
  const engine = await Engine.create({ threads: 2, seed: 2 });
  const model = engine.createModel({ vocab_size: tok.vocabSize, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
    num_attention_heads: 4, max_position_embeddings: 256, lm_head: false, scalar_head: true });
  const r = await trainRewardModel(engine, model, tok, train, { epochs: 3, batchSize: 16, lr: 1e-3, onStep: (s) => { if (process.env.DEBUG_RM && s.step % 10 === 0) console.log(s); } });
  assert.ok(r.steps >= 60);
  const scores = await rewardScorer(engine, model, tok).score(held);
  const acc = held.filter((p, i) => (scores[i][1] > scores[i][0]) === (p.preference === 2)).length / held.length;
  assert.ok(held.length >= 30 && acc >= 0.68, `held-out accuracy ${acc} on ${held.length} pairs (chance 0.5)`);
  const dir = mkdtempSync(join(tmpdir(), 'farm-rm-'));
  try {
    await engine.saveModel(model, dir);
    tok.save(join(dir, 'tokenizer.json'));
    registerScorerLoader((d) => loadRewardScorer(engine, d));
    const judge = await createAnnotator(`model:${dir}`, { seed: 3 });
    const labels = await judge.annotate(held);
    const agree = labels.filter((l, i) => l.preference === held[i].preference).length / held.length;
    assert.ok(Math.abs(agree - acc) < 0.05, `judge agreement ${agree} vs scorer accuracy ${acc}`);
    const notRm = engine.createModel({ vocab_size: tok.vocabSize, hidden_size: 16, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 64 });
    await engine.saveModel(notRm, join(dir, 'lm'));
    const err = await loadRewardScorer(engine, join(dir, 'lm')).then(() => null, (e) => e);
    assert.match(String(err), /not a reward model/);
  } finally { registerScorerLoader(null); rmSync(dir, { recursive: true, force: true }); }
});

test.run();
