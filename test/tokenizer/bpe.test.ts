// The heap-based BPE merge loop against the textbook one (rescan for the lowest-rank pair, leftmost first).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BpeModel, trainBpe } from '../../ts/tokenizer/index.ts';
import { toByteChars } from '../../ts/tokenizer/bytes.ts';
import { syntheticFarmText } from '../../ts/tokenizer/synthetic.ts';
import { randomString, rng } from './fixtures.ts';

function naiveEncode(model: BpeModel, piece: string): number[] {
  const rank = new Map(model.merges.map(([a, b], i) => [`${a}\u0000${b}`, i]));
  let syms = [...piece];
  for (;;) {
    let best = -1, bestRank = Infinity;
    for (let i = 0; i + 1 < syms.length; i++) {
      const r = rank.get(`${syms[i]}\u0000${syms[i + 1]}`);
      if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
    }
    if (best < 0) break;
    syms = [...syms.slice(0, best), syms[best] + syms[best + 1], ...syms.slice(best + 2)];
  }
  return syms.map((s) => model.vocab.get(s)!);
}

test('long pieces (no pre-tokenization) merge exactly as the textbook loop', () => {
  const model = trainBpe(syntheticFarmText(200_000, 12), { vocabSize: 700 }).model;
  const r = rng(4);
  const farm = syntheticFarmText(40_000, 13);
  for (let i = 0; i < 60; i++) {
    const start = Math.floor(r() * (farm.length - 2000));
    const piece = toByteChars(farm.slice(start, start + 1 + Math.floor(r() * 1500)));
    assert.equal([...model.encodePiece(piece)], naiveEncode(model, piece));
  }
  for (let i = 0; i < 100; i++) {
    const piece = toByteChars(randomString(r, 200, true) + ' the the farmer');
    assert.equal([...model.encodePiece(piece)], naiveEncode(model, piece));
  }
  // repeated symbols: "aaaa..." merges pairs left to right
  const aa = new BpeModel(new Map([['a', 0], ['aa', 1], ['aaaa', 2]]), [['a', 'a'], ['aa', 'aa']]);
  assert.equal([...aa.encodePiece('aaaaaaa')], [2, 1, 0]);
  assert.equal([...aa.encodePiece('aaa')], [1, 0]);
});

test.run();
