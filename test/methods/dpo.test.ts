// DPO on farm preference records: the rejected output is the chosen one followed by an off-topic tail, shown in a
// random position with the matching preference label. DPO must raise the chosen-vs-rejected margin and the
// preference accuracy on held-out pairs, starting from zero (policy = reference).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type Model } from '../../ts/engine/index.ts';
import { createWorld } from '../../ts/world/index.ts';
import { generateSplits } from '../../ts/data/splits.ts';
import { trainBpe, type Tokenizer } from '../../ts/tokenizer/index.ts';
import { formatPrompt } from '../../ts/data/template.ts';
import { sft } from '../../ts/methods/sft.ts';
import { dpo, preferencePairs, DPO_FARM, DPO_METHOD_DEFAULTS, type DPOLog } from '../../ts/methods/dpo.ts';
import { cloneModel } from '../../ts/methods/common.ts';
import type { PreferenceRecord } from '../../ts/methods/reward-model.ts';

const world = createWorld({ seed: 8 });
const splits = generateSplits(world, { sft: 300, preference: 240, unlabeled: 0, val: 80, eval: 0 }, { seed: 8 });
const TAILS = [' Anyway, I like turtles.', ' By the way, the sky is green.', ' Also, I forgot the question.'];
const toPairs = (rows: typeof splits.preference): PreferenceRecord[] => rows.map((r, i) => {
  const good = r.output, bad = `${r.output}${TAILS[i % TAILS.length]}`;
  return i % 2 === 0 ? { instruction: r.instruction, input: r.input, output_1: good, output_2: bad, preference: 1 }
    : { instruction: r.instruction, input: r.input, output_1: bad, output_2: good, preference: 2 };
});
const train = toPairs(splits.preference), held = toPairs(splits.val);
let engine: Engine, tok: Tokenizer, sftPolicy: Model;

test.before(async () => {
  tok = trainBpe(splits.sft.map((r) => formatPrompt(r) + r.output), { vocabSize: 400 });
  engine = await Engine.create({ threads: 2, seed: 1 });
  sftPolicy = engine.createModel({ vocab_size: tok.vocabSize, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 192 });
  await sft(engine, sftPolicy, tok, splits.sft, { epochs: 2, lr: 5e-3, batchSize: 16 });
});

test('defaults: β 0.1, 2 epochs, batch 64, lr 1e-6 (AlpacaFarm)', () => {
  const d = DPO_METHOD_DEFAULTS;
  assert.equal([d.beta, d.epochs, d.batchSize, d.lr, d.lossType], [0.1, 2, 64, 1e-6, 'sigmoid']);
});

test('preference records become (chosen, rejected) token pairs; draws and identical outputs are left out', () => {
  const r = train[1];  // preference 2: output_2 is the good one
  const { pairs, skipped } = preferencePairs(tok, [r, { ...r, preference: 0 }, { ...r, output_2: r.output_1 }, { ...r, preference: 1.2 }], 192);
  assert.is(skipped, 2);
  assert.is(tok.decode(pairs[0].chosen, { skipSpecialTokens: true }), r.output_2);
  assert.is(pairs[0].chosen[pairs[0].chosen.length - 1], tok.eosId);
  assert.is(tok.decode(pairs[1].chosen, { skipSpecialTokens: true }), r.output_1, 'a soft preference picks the side of 1.5');
  const cut = preferencePairs(tok, [r], pairs[0].prompt.length + 3).pairs[0];
  assert.is(cut.chosen.length, 3);
});

test('DPO raises the held-out margin and preference accuracy from zero', async () => {
  const policy = cloneModel(engine, sftPolicy);
  const logs: DPOLog[] = [];
  const r = await dpo(engine, { policy, tokenizer: tok, pairs: train, evalPairs: held, config: { ...DPO_FARM, evalEvery: 10 }, onStep: (l) => { logs.push(l); } });
  const { before, after } = r.eval!;
  if (process.env.DEBUG_METHODS) console.log({ before, after, steps: r.steps, acc: logs.map((l) => l['rewards/accuracies']) });
  assert.is(r.used, 240);
  assert.is(r.steps, 2 * Math.ceil(240 / 16));
  assert.is(before['rewards/margins'], 0, 'the policy starts as the reference');
  assert.is(before['rewards/accuracies'], 0);
  assert.ok(Math.abs(before.loss - Math.LN2) < 1e-9);
  assert.ok(after['rewards/accuracies'] >= 0.9, `held-out accuracy ${after['rewards/accuracies']}`);
  assert.ok(after['rewards/margins'] > 0.5, `held-out margin ${after['rewards/margins']}`);
  assert.ok(after.loss < 0.5 * Math.LN2, `held-out loss ${after.loss}`);
  assert.ok(logs[3]['eval/rewards/margins'] === undefined && logs[9]['eval/rewards/margins']! > 0);
  const first = logs[0], last = logs[logs.length - 1];
  assert.ok(last['rewards/margins'] > first['rewards/margins'] && last.loss < first.loss);
  // The reference was left untouched by training: a new run from the trained policy starts at margin 0 again.
  const again = await dpo(engine, { policy, tokenizer: tok, pairs: train.slice(0, 8), evalPairs: held, config: { ...DPO_FARM, maxSteps: 1 } });
  assert.is(again.eval!.before['rewards/margins'], 0);
});

test('an explicit reference, IPO, early stop and bad arguments', async () => {
  const policy = cloneModel(engine, sftPolicy);
  const ref = cloneModel(engine, sftPolicy);
  const r = await dpo(engine, { policy, ref, tokenizer: tok, pairs: train, evalPairs: held, config: { ...DPO_FARM, lossType: 'ipo' }, onStep: (l) => l.step < 5 });
  assert.is(r.steps, 5);
  assert.ok(r.eval!.after['rewards/margins'] > 0);
  await rejects(dpo(engine, { policy, tokenizer: tok, pairs: train.map((p) => ({ ...p, preference: 0 })) }), /no usable preference pairs among 240/);
  await rejects(dpo(engine, { policy, tokenizer: tok, pairs: train, config: { beta: 0 } }), /beta must be a number/);
  await rejects(dpo(engine, { policy, tokenizer: tok, pairs: train, config: { epochs: 1.5 } }), /epochs must be an integer/);
});

async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Error, `expected a rejection matching ${re}`);
  assert.match((err as Error).message, re);
}

test.run();
