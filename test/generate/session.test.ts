// GenerationSession, the typed cache API that TreeBoN-style methods drive: sample a segment, fork the
// best sequences, continue; slots are released and reused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GenerationSession, generate } from '../../ts/engine/generate.ts';
import { engine2, fullLogits, relErr, tinyModel } from './helpers.ts';

test('segments, forks and releases behave like one long generation', async () => {
  const model = tinyModel({}, 60);
  const s = new GenerationSession(engine2, model, { maxSequences: 6, maxLength: 40 });
  const slots = await s.addPrompts([[1, 2, 3], [4, 5]], { copies: 2 });
  assert.is(slots.length, 4);
  const a = await s.sample(slots, { steps: 5, maxNewTokens: 12, seed: 2 });
  assert.is(a.token.length, 20);
  assert.equal(a.finish, ['none', 'none', 'none', 'none']);
  // Keep the sequence with the best summed log-prob of prompt 0, drop the other; fork the best twice.
  const sum = (slot: number) => a.logprob.reduce((acc, x, i) => acc + (a.slot[i] === slot ? x : 0), 0);
  const [best, worst] = sum(slots[0]) >= sum(slots[1]) ? [slots[0], slots[1]] : [slots[1], slots[0]];
  s.release([worst]);
  const kids = s.fork(best, [s.info(best).stream, 999]);
  assert.is(kids.length, 2);
  const b = await s.sample([best, ...kids], { steps: 20, maxNewTokens: 12, seed: 2 });
  assert.equal(b.finish, ['length', 'length', 'length']);
  assert.equal(Array.from(s.info(kids[0]).tokens), Array.from(s.info(best).tokens), 'same stream, same continuation');
  assert.is(s.info(kids[1]).generated, 12);
  // The same stream in one go through generate(): prompt 0, sample j = stream - 0.
  const j = s.info(best).stream;
  const [[ref]] = await generate(engine2, model, [[1, 2, 3]], { n: 2, maxNewTokens: 12, seed: 2 }).then((r) => [[r[0][j]]]);
  assert.equal(Array.from(s.info(best).tokens).slice(3), ref.tokens);
  // Scoring continuations with extend: matches the forward pass.
  const ext = await s.extend(kids[1], [7, 8]);
  const { logits } = await fullLogits(model, Array.from(s.info(kids[1]).tokens));
  const next = await s.nextLogits(kids[1]);
  assert.ok(relErr(next.logits!, logits) < 1e-4);
  assert.is(ext.logprob.length, 2);
  s.dispose();
});

test('samples of a prompt share its prefilled cache: bit-identical to unshared copies, safe to release in any order', async () => {
  const model = tinyModel({ scalar_head: true }, 61);
  const p = [3, 1, 4, 1, 5, 9, 2, 6];
  const shared = new GenerationSession(engine2, model, { maxSequences: 5, maxLength: 40 });
  const plain = new GenerationSession(engine2, model, { maxSequences: 3, maxLength: 40 });
  const a = await shared.addPrompts([p], { copies: 3, streams: [0, 1, 2] });
  const b = await plain.addPrompts([p, p, p], { streams: [0, 1, 2] });
  const ra = await shared.sample(a, { steps: 6, maxNewTokens: 30, seed: 4 });
  const rb = await plain.sample(b, { steps: 6, maxNewTokens: 30, seed: 4 });
  assert.equal(Array.from(ra.token), Array.from(rb.token));
  assert.equal(Array.from(ra.logprob), Array.from(rb.logprob));
  assert.equal(Array.from(ra.value!), Array.from(rb.value!));
  // Release the prompt's owner (copy 0): the other copies still read the shared prompt.
  shared.release([a[0]]);
  const kid = shared.fork(a[1], [1]);  // a fork of a copy shares the same prompt owner
  const rc = await shared.sample([a[1], a[2], ...kid], { steps: 6, maxNewTokens: 30, seed: 4 });
  const rd = await plain.sample([b[1], b[2]], { steps: 6, maxNewTokens: 30, seed: 4 });
  const pick = (r: any, slot: number) => Array.from(r.token as Int32Array).filter((_, i) => r.slot[i] === slot);
  assert.equal(pick(rc, a[1]), pick(rd, b[1]));
  assert.equal(pick(rc, a[2]), pick(rd, b[2]));
  assert.equal(pick(rc, kid[0]), pick(rc, a[1]));
  for (const slot of [a[1], a[2], kid[0]]) {
    const { logits } = await fullLogits(model, Array.from(shared.info(slot).tokens));
    assert.ok(relErr((await shared.nextLogits(slot)).logits!, logits) < 1e-4);
  }
  // Once every sequence is released, all 5 slots are free again.
  shared.release([a[1], a[2], kid[0]]);
  assert.is((await shared.addPrompts([p, p, p, p, p])).length, 5);
  shared.dispose(); plain.dispose();
});

test.run();
