// Binary FeedME and binary reward conditioning on a tiny farm policy: both lower their training loss and
// produce outputs; reward-conditioned generation follows the control token (the bad token brings back the
// rejected answers); control tokens are real special tokens of the tokenizer and rows of the model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { feedme, preferredRecords } from '../../ts/methods/feedme.ts';
import { rewardConditioning, GOOD_TOKEN, BAD_TOKEN } from '../../ts/methods/reward-conditioning.ts';
import { cloneModel, encodePrompt, decodeResponse, sampleResponses, type PromptControl } from '../../ts/methods/common.ts';
import type { PreferenceRecord } from '../../ts/methods/reward-model.ts';
import { tinyFarm, type TinyFarm } from './helpers.ts';

let F: TinyFarm;
const REJECTED = 'I do not know.';
let pairs: PreferenceRecord[];

test.before(async () => {
  F = await tinyFarm(3, { preference: 160, unlabeled: 24 });
  // the demonstration is preferred over a constant non-answer; sides alternate
  pairs = F.splits.preference.map((r, i) => i % 2
    ? { instruction: r.instruction, input: r.input, output_1: REJECTED, output_2: r.output, preference: 2 }
    : { instruction: r.instruction, input: r.input, output_1: r.output, output_2: REJECTED, preference: 1 });
});

test('FeedME trains on the preferred outputs only and lowers their loss', async () => {
  const { records, skipped } = preferredRecords([...pairs, { ...pairs[0], preference: 0 }, { ...pairs[1], output_1: 'x', output_2: 'x' }, { ...pairs[2], preference: 1.5 }]);
  assert.is(skipped, 3, 'draws, identical outputs and undecided soft labels are left out');
  assert.ok(records.every((r) => r.output !== REJECTED));
  const policy = cloneModel(F.engine, F.policy);
  const losses: number[] = [];
  const r = await feedme(F.engine, policy, F.tok, pairs, { epochs: 2, lr: 3e-3, batchSize: 16 }, { onStep: (l) => { losses.push(l.loss); } });
  assert.is(r.used, pairs.length);
  assert.ok(losses.slice(-3).reduce((a, b) => a + b) < losses.slice(0, 3).reduce((a, b) => a + b), `losses ${losses.map((x) => x.toFixed(2)).join(' ')}`);
  const out = await sampleResponses(F.engine, policy, F.tok, F.splits.unlabeled.map((x) => encodePrompt(F.tok, x)), F.splits.unlabeled.map((_, i) => i),
    { n: 1, seed: 1, temperature: 0.7, topP: 1, topK: 0, maxNewTokens: 24 });
  assert.ok(out.every((s) => decodeResponse(F.tok, s[0].tokens).length > 0), 'produces outputs');
});

test('FeedME refuses preference files without a usable pair', async () => {
  await feedme(F.engine, cloneModel(F.engine, F.policy), F.tok, pairs.map((p) => ({ ...p, preference: 0 })))
    .then(() => assert.unreachable('should refuse'), (e) => assert.match(e.message, /no usable preference among 160 pairs/));
});

test('reward conditioning adds two special tokens, trains on both sides, and generation follows the token', async () => {
  const losses: number[] = [];
  const r = await rewardConditioning(F.engine, F.policy, F.tok, pairs, { epochs: 6, lr: 3e-3, batchSize: 16 }, { onStep: (l) => { losses.push(l.loss); } });
  const good = r.tokenizer.tokenToId(GOOD_TOKEN)!, bad = r.tokenizer.tokenToId(BAD_TOKEN)!;
  assert.equal([good, bad], [F.tok.vocabSize, F.tok.vocabSize + 1]);
  assert.is(r.model.config.vocab_size, F.tok.vocabSize + 2);
  assert.is(F.policy.config.vocab_size, F.tok.vocabSize, 'the input model is left as it was');
  assert.ok(r.tokenizer.isSpecial(good) && r.tokenizer.isSpecial(bad));
  assert.equal(r.tokenizer.encode(`say ${GOOD_TOKEN}`, { parseSpecial: false }).includes(good), false, 'data text never yields the control token');
  assert.is(r.tokenizer.decode([good, ...r.tokenizer.encode('hi')], { skipSpecialTokens: true }), 'hi');
  assert.is(r.conditioning.generateWith, GOOD_TOKEN);
  assert.ok(losses.slice(-3).reduce((a, b) => a + b) < losses.slice(0, 3).reduce((a, b) => a + b), `losses ${losses.map((x) => x.toFixed(2)).join(' ')}`);
  const prompts = F.splits.unlabeled.map((x) => encodePrompt(r.tokenizer, x));
  const sample = async (c: PromptControl) => {
    const withTok = prompts.map((p) => [p[0], ...c.prefix, ...p.slice(1)]);
    const s = await sampleResponses(F.engine, r.model, r.tokenizer, withTok, prompts.map((_, i) => i), { n: 1, seed: 4, temperature: 0.7, topP: 1, topK: 0, maxNewTokens: 24 });
    return s.map((x) => decodeResponse(r.tokenizer, x[0].tokens));
  };
  const withGood = await sample({ prefix: [good], strip: [] }), withBad = await sample({ prefix: [bad], strip: [] });
  const nonAnswers = (xs: string[]) => xs.filter((x) => x === REJECTED).length;
  if (process.env.DEBUG_METHODS) console.log(withGood.slice(0, 4), withBad.slice(0, 4));
  assert.ok(nonAnswers(withBad) >= prompts.length / 2, `bad token: ${nonAnswers(withBad)} of ${prompts.length} non-answers`);
  assert.ok(nonAnswers(withGood) <= 2, `good token: ${nonAnswers(withGood)} of ${prompts.length} non-answers`);
});

test.run();
