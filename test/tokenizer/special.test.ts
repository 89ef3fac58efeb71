// Special and added tokens: never split, never produced from ordinary text, strip flags, batching.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { padBatch, Tokenizer, trainBpe } from '../../ts/tokenizer/index.ts';
import { syntheticFarmText } from '../../ts/tokenizer/synthetic.ts';
import { llama2Json, llama3Json, randomString, rng } from './fixtures.ts';

// the corpus is full of special-token look-alikes, so merges that spell them would be learnt if allowed
const corpus = syntheticFarmText(150_000, 5) + ' <|eos|> <|bos|><|pad|> <|eos|>'.repeat(2000);
const tok = trainBpe(corpus, { vocabSize: 600, extraSpecialTokens: ['<|user|>'] });
const [BOS, EOS, PAD] = [tok.bosId!, tok.eosId!, tok.padId!];
const USER = tok.tokenToId('<|user|>')!;

test('special tokens in text become exactly one id, wherever they sit', () => {
  const cases: [string, (number | 'text')[]][] = [
    ['<|eos|>', [EOS]],
    ['<|bos|><|eos|><|pad|>', [BOS, EOS, PAD]],
    ['x<|eos|>y', ['text', EOS, 'text']],
    ['farmer<|user|>farmer', ['text', USER, 'text']],
    [' <|eos|> ', ['text', EOS, 'text']],
  ];
  for (const [text, shape] of cases) {
    const ids = tok.encode(text);
    const specials = ids.filter((id) => tok.isSpecial(id));
    assert.equal(specials, shape.filter((s) => s !== 'text'), text);
    assert.is(tok.decode(ids), text);
  }
  // no id of ordinary text spells a special token, even after training on many of them
  const seen = new Set(tok.encode(corpus.replaceAll('<|', '< |')));
  for (const id of [BOS, EOS, PAD, USER]) assert.not.ok(seen.has(id));
  for (let id = 0; id < tok.vocabSize; id++) if (!tok.isSpecial(id)) assert.not.ok(/^<\|(bos|eos|pad|user)\|>$/.test(tok.idToToken(id)!));
});

test('parseSpecial: false keeps control tokens out of untrusted text', () => {
  const ids = tok.encode('say <|eos|> now', { parseSpecial: false });
  assert.not.ok(ids.includes(EOS));
  assert.is(tok.decode(ids), 'say <|eos|> now');
  // partial and broken markers are plain text either way
  for (const s of ['<|eos', '|eos|>', '<|EOS|>', '<<|eos|>>']) {
    const a = tok.encode(s);
    assert.is(tok.decode(a), s);
    assert.is(a.filter((id) => id === EOS).length, s === '<<|eos|>>' ? 1 : 0, s);
  }
});

test('addBos / addEos / skipSpecialTokens', () => {
  const body = tok.encode('Mara feeds the goats.');
  assert.equal(tok.encode('Mara feeds the goats.', { addBos: true, addEos: true }), [BOS, ...body, EOS]);
  assert.equal(tok.encode('<|bos|>hi', { addBos: true })[0], BOS);
  assert.is(tok.encode('<|bos|>hi', { addBos: true }).filter((i) => i === BOS).length, 1, 'BOS not doubled');
  assert.equal(tok.encode('hi', { addSpecialTokens: true, addBos: true }), [BOS, ...tok.encode('hi')]);
  assert.is(tok.decode([BOS, ...body, EOS, PAD, PAD], { skipSpecialTokens: true }), 'Mara feeds the goats.');
});

test('lstrip / rstrip / single_word flags of added tokens', () => {
  const j = llama3Json();
  j.added_tokens = [
    ...(j.added_tokens as object[]),
    { id: 263, content: '<mask>', single_word: false, lstrip: true, rstrip: true, normalized: false, special: true },
    { id: 264, content: 'cow', single_word: true, lstrip: false, rstrip: false, normalized: false, special: false },
  ];
  const t = new Tokenizer(j);
  assert.equal(t.encode('a  <mask>  b'), [97, 263, 98]);
  assert.equal(t.encode('a cow b'), [97, 32, 264, 32, 98]);
  assert.equal(t.encode('cowboy'), [99, 111, 119, 98, 111, 121]); // not a single word: plain text
  assert.equal(t.encode('cow'), [264]);
});

test('added tokens with normalized: true match the normalized text (LLaMA-2 legacy normalizer)', () => {
  const make = (normalized: boolean) => {
    const j = llama2Json('legacy');
    j.added_tokens = [...(j.added_tokens as object[]), { id: 274, content: 'farm', single_word: false, lstrip: false, rstrip: false, normalized, special: false }];
    (j.model as { vocab: Record<string, number> }).vocab.farm = 274;
    return new Tokenizer(j);
  };
  // normalized: the content becomes "▁farm" and is found in "▁the▁farm"
  assert.equal(make(true).encode('the farm'), [268, 274]);
  assert.equal(make(true).encode('thefarm'), [268, 3 + 0x66, 3 + 0x61, 263, 3 + 0x6d]); // no "▁farm" here: t/h/e + bytes
  // raw: "farm" is cut out before normalization, the rest is "the " -> "▁the▁"
  assert.equal(make(false).encode('the farm'), [268, 259, 274]);
  assert.is(make(true).tokenToId('▁farm'), null);
});

test('encodeBatch equals encode per text; padBatch lays rows out', () => {
  const r = rng(3);
  const texts = Array.from({ length: 50 }, () => randomString(r, 40, true));
  assert.equal(tok.encodeBatch(texts, { addBos: true }), texts.map((t) => tok.encode(t, { addBos: true })));
  assert.equal(tok.decodeBatch(tok.encodeBatch(['ab', 'c'])), ['ab', 'c']);
  const right = padBatch([[1, 2, 3], [4]], PAD);
  assert.equal([...right.ids], [1, 2, 3, 4, PAD, PAD]);
  assert.equal([...right.lengths], [3, 1]);
  const left = padBatch([[1, 2, 3], [4]], PAD, { side: 'left', length: 4 });
  assert.equal([...left.ids], [PAD, 1, 2, 3, PAD, PAD, PAD, 4]);
  assert.throws(() => padBatch([[1, 2, 3]], PAD, { length: 2 }), /more than the width 2/);
});

test.run();
