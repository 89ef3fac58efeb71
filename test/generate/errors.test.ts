// Bad input gives clear errors, never a crash: generate(), logprobs() and the native session.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../ts/engine/native.ts';
import { generate, logprobs } from '../../ts/engine/generate.ts';
import { engine2, tinyModel } from './helpers.ts';

const model = tinyModel({ max_position_embeddings: 16 }, 40);

async function rejects(p: Promise<unknown> | (() => unknown), re: RegExp) {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected an error matching ${re}`);
}

test('generate() argument checks', async () => {
  await rejects(generate(engine2, model, []), /non-empty/);
  await rejects(generate(engine2, model, [[]]), /prompts\[0\] is empty/);
  await rejects(generate(engine2, model, [Array(16).fill(1)]), /prompt 0 has 16 tokens.*context.*16/);
  await rejects(generate(engine2, model, [Array(30).fill(1)]), /prompt 0 has 30 tokens/);
  await rejects(generate(engine2, model, [[1]], { n: 0 }), /n must be an integer in \[1/);
  await rejects(generate(engine2, model, [[1]], { topP: 0 }), /topP must be in \(0, 1\]/);
  await rejects(generate(engine2, model, [[1]], { topP: 1.5 }), /topP must be in \(0, 1\]/);
  await rejects(generate(engine2, model, [[1]], { temperature: -1 }), /temperature must be >= 0/);
  await rejects(generate(engine2, model, [[1]], { temperature: NaN }), /temperature/);
  await rejects(generate(engine2, model, [[1, 48]]), /prompts\[0\]\[1\] = 48 is not a token id in \[0, vocab_size=48\)/);
  await rejects(generate(engine2, model, [[1, -1]]), /not a token id/);
  await rejects(generate(engine2, model, [[1.5]]), /not a token id/);
  await rejects(generate(engine2, model, [[1]], { stopTokens: [99] }), /stop token 99/);
  await rejects(generate(engine2, model, [[1]], { eosTokenId: -2 }), /stop token -2/);
  await rejects(generate(engine2, model, [[1]], { maxNewTokens: 0 }), /maxNewTokens/);
  await rejects(generate(engine2, model, [[1]], { topK: -1 }), /topK/);
  await rejects(generate(engine2, model, [[1]], { promptIds: [1, 2] }), /promptIds has 2 ids for 1 prompts/);
  const rm = tinyModel({ lm_head: false, scalar_head: true }, 41);
  await rejects(generate(engine2, rm, [[1]]), /no LM head/);
});

test('logprobs() argument checks', async () => {
  await rejects(logprobs(engine2, model, [[1]], []), /one response per prompt/);
  await rejects(logprobs(engine2, model, [[1]], [[99]]), /responses\[0\]\[0\] = 99/);
  await rejects(logprobs(engine2, model, [[1, 2]], [Array(15).fill(1)]), /more than max_position_embeddings 16/);
  const [r] = await logprobs(engine2, model, [[1]], [[]]);
  assert.is(r.sum, 0);
  assert.is(r.tokens.length, 0);
});

test('native DecodeSession checks its arguments and state', async () => {
  assert.throws(() => new native.DecodeSession({}, { maxSequences: 1 }), /native Model/);
  assert.throws(() => new native.DecodeSession(model.raw, { maxSequences: 0 }), /maxSequences must be in \[1/);
  assert.throws(() => new native.DecodeSession(model.raw, { maxSequences: 1, maxLength: 17 }), /maxLength must be in \[1, 16\]/);
  const long = tinyModel({ max_position_embeddings: 4096 }, 42);
  assert.throws(() => new native.DecodeSession(long.raw, { maxSequences: 1 << 20 }), /KV cache would take \d+ GiB .* generate fewer sequences/);
  const s = new native.DecodeSession(model.raw, { maxSequences: 2, maxLength: 16 });
  const add = (o: object) => s.addPrompts({ tokens: Int32Array.from([1, 2]), lengths: Int32Array.from([2]), copies: 1, streams: Float64Array.from([0]), ...o });
  await rejects(() => add({ lengths: new Int32Array(0), tokens: new Int32Array(0), streams: new Float64Array(0) }), /no prompts/);
  await rejects(() => add({ lengths: Int32Array.from([3]) }), /lengths do not match tokens/);
  await rejects(() => add({ streams: Float64Array.from([0.5]) }), /streams\[0\] must be an integer/);
  await rejects(() => add({ streams: [0] }), /streams must be a Float64Array/);
  await rejects(() => add({ tokens: Int32Array.from([1, 60]) }), /token 1 = 60 is outside/);
  await rejects(() => add({ copies: 3, streams: new Float64Array(3) }), /2 free sequence slots, 3 needed/);
  await rejects(() => add({ tokens: new Int32Array(16).fill(1), lengths: Int32Array.from([16]) }), /leaving no room to generate/);
  const [a] = await add({});
  const p = s.sample({ slots: Int32Array.from([a]), steps: 1, maxNewTokens: 4 });
  assert.throws(() => s.sample({ slots: Int32Array.from([a]), steps: 1, maxNewTokens: 4 }), /busy/);
  await p;
  await rejects(() => s.sample({ slots: Int32Array.from([5]), steps: 1, maxNewTokens: 4 }), /slots\[0\] = 5 is not a live sequence/);
  await rejects(() => s.sample({ slots: Int32Array.from([a]), steps: 1, maxNewTokens: 4, topP: 2 }), /top_p must be in \(0, 1\]/);
  await rejects(() => s.sample({ slots: Int32Array.from([a]), steps: 1, maxNewTokens: 4, temperature: -0.5 }), /temperature must be >= 0/);
  await rejects(() => s.sample({ slots: Int32Array.from([a]), steps: 1, maxNewTokens: 4, stopTokens: Int32Array.from([48]) }), /stop token id 48/);
  await rejects(() => s.extend({ slot: a, tokens: Int32Array.from([48]) }), /outside \[0, vocab_size=48\)/);
  await rejects(() => s.extend({ slot: a, tokens: new Int32Array(20) }), /exceed the cache length 16/);
  assert.throws(() => s.fork({ parent: a, streams: new Float64Array(2) }), /1 free sequence slots, 2 needed/);
  assert.throws(() => s.fork({ parent: 7, streams: new Float64Array(1) }), /parent = 7 is not a live sequence/);
  s.release(Int32Array.from([a]));
  assert.throws(() => s.info(a), /is not a live sequence/);
  s.dispose();
  await rejects(() => add({}), /disposed/);
});

test('non-finite weights give a clear error; a tiny temperature acts greedily', async () => {
  const m = tinyModel({}, 43);
  const greedy = await generate(engine2, m, [[1, 2]], { temperature: 0, maxNewTokens: 8 });
  const tiny = await generate(engine2, m, [[1, 2]], { temperature: 1e-42, maxNewTokens: 8 });
  assert.equal(tiny[0][0].tokens, greedy[0][0].tokens);
  m.parameters()[1].data[0] = NaN;
  await rejects(generate(engine2, m, [[1, 2]]), /non-finite logits/);
});

test.run();
