// Round trip encode -> decode on arbitrary text, including emoji, CJK, combining marks and lone surrogates.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BYTE_TO_CHAR, Tokenizer, trainBpe, wellFormed } from '../../ts/tokenizer/index.ts';
import { syntheticFarmText } from '../../ts/tokenizer/synthetic.ts';
import { llama2Json, randomString, rng } from './fixtures.ts';

const corpus = syntheticFarmText(300_000, 7) + ' 日本の農場 🐄🐄 café naïve e\u0301 \u{1F468}\u200D\u{1F33E}\n';
const tok = trainBpe(corpus, { vocabSize: 700 });

const FIXED = [
  '', ' ', '  ', '\n', '\r\n\r\n', '\t\tx', 'Mara feeds the hungry goats.', 'hello   world  ',
  '🐄', '👩‍🌾 farmer', '🏳️‍🌈', '👍🏽', '日本語のテキスト', '한국어', 'ферма', 'مزرعة', 'שלום',
  'e\u0301\u0302\u0303', 'a\u0308o\u0308u\u0308', '\u0000\u0001\u001f', '\u00a0\u2003\u3000', '\uFEFFbom',
  '\u{10FFFF}\u{E0001}', "it's 1,234,567 kg!", 'x'.repeat(1000), '🎉'.repeat(300), 'ab'.repeat(2000),
  '<|eos|> inside <|bos|>text<|pad|>', '<|eos', '|>', '\uFFFD',
];

test('well-formed text: decode(encode(s)) === s exactly', () => {
  for (const s of FIXED) assert.is(tok.decode(tok.encode(s)), s, JSON.stringify(s));
  const r = rng(11);
  for (let i = 0; i < 400; i++) {
    const s = randomString(r, 80, false);
    assert.is(tok.decode(tok.encode(s)), s, JSON.stringify(s));
  }
});

test('lone surrogates encode as U+FFFD (WHATWG UTF-8) and decode to the well-formed string', () => {
  const cases: [string, string][] = [
    ['a\uD800b', 'a\uFFFDb'],          // lone high
    ['a\uDC00b', 'a\uFFFDb'],          // lone low
    ['\uDC00\uD800', '\uFFFD\uFFFD'],  // reversed pair: two lone halves
    ['\uD800', '\uFFFD'],
    ['x\uD83D', 'x\uFFFD'],            // high at the end
    ['\uD83D\uDE00\uD83D', '\uD83D\uDE00\uFFFD'], // a valid pair kept, the trailing half replaced
    ['\uD800\uD800\uDC00', '\uFFFD\uD800\uDC00'], // the second high pairs with the low
  ];
  for (const [input, expected] of cases) {
    assert.is(wellFormed(input), expected);
    assert.equal(tok.encode(input), tok.encode(expected), JSON.stringify(input));
    assert.is(tok.decode(tok.encode(input)), expected, JSON.stringify(input));
  }
  const r = rng(12);
  const native = (String.prototype as unknown as { toWellFormed?: () => string }).toWellFormed;
  for (let i = 0; i < 400; i++) {
    const s = randomString(r, 60, true);
    const w = wellFormed(s);
    if (native) assert.is(w, native.call(s), 'wellFormed matches String.prototype.toWellFormed');
    assert.is(tok.decode(tok.encode(s)), w, JSON.stringify(s));
    assert.equal(tok.encode(s), tok.encode(w));
  }
});

test('decoding a cut inside a character gives U+FFFD, never throws', () => {
  const lead = tok.tokenToId(BYTE_TO_CHAR[0xf0])!; // first byte of a 4-byte sequence
  const cont = tok.tokenToId(BYTE_TO_CHAR[0x9f])!;
  assert.is(tok.decode([lead]), '\uFFFD');
  assert.is(tok.decode([lead, cont, ...tok.encode('a')]), '\uFFFDa');
  assert.is(tok.decode([cont]), '\uFFFD');
  assert.is(tok.decode([]), '');
});

test('saved tokenizer.json loads back and encodes identically', async () => {
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  tok.save(join(dir, 'tokenizer.json'));
  const back = Tokenizer.load(dir);
  assert.is(back.vocabSize, tok.vocabSize);
  assert.is(back.bosId, tok.bosId); assert.is(back.eosId, tok.eosId); assert.is(back.padId, tok.padId);
  const heldOut = syntheticFarmText(50_000, 99);
  assert.equal(back.encode(heldOut), tok.encode(heldOut));
  const r = rng(13);
  for (let i = 0; i < 200; i++) { const s = randomString(r, 60, true); assert.equal(back.encode(s), tok.encode(s)); }
  const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  assert.is(cfg.eos_token, '<|eos|>');
  // saving the loaded one reproduces the file byte for byte
  back.save(join(dir, 'again.json'));
  assert.is(readFileSync(join(dir, 'again.json'), 'utf8'), readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
});

test('SentencePiece-style (LLaMA-2) round trip with byte fallback', () => {
  const sp = new Tokenizer(llama2Json('legacy'));
  const r = rng(14);
  for (let i = 0; i < 300; i++) {
    const s = randomString(r, 50, true).replaceAll('\u2581', ''); // the metaspace character itself decodes as a space
    assert.is(sp.decode(sp.encode(s)), wellFormed(s), JSON.stringify(s));
    assert.is(sp.decode(sp.encode(s, { addSpecialTokens: true }), { skipSpecialTokens: true }), wellFormed(s));
  }
});

test.run();
