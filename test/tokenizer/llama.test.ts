// Hand-built LLaMA-style tokenizer.json files: ids derived by hand from the merge ranks (see fixtures.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { compilePattern, Tokenizer } from '../../ts/tokenizer/index.ts';
import { llama2Json, llama3Json, randomString, rng } from './fixtures.ts';

// LLaMA-2 fixture ids: ▁=259 t=260 h=261 e=262 r=263 H=264 i=265 ▁t=266 he=267 ▁the=268 ▁H=269 ▁Hi=270
// re=271 ▁there=272 er=273; <0xXX> = 3 + XX.
const legacy = new Tokenizer(llama2Json('legacy'));
const meta = new Tokenizer(llama2Json('metaspace'));

test('LLaMA-2 legacy: merges by rank, leftmost first', () => {
  // ▁Hi▁there: ▁t(0) he(1) ▁the(2) ▁H(3) ▁Hi(4) re(5) ▁there(6)
  assert.equal(legacy.encode('Hi there'), [270, 272]);
  assert.equal(legacy.encode('Hi there', { addSpecialTokens: true }), [1, 270, 272]);
  // "h e" (rank 1) wins over "e r" (rank 7): ▁the r
  assert.equal(legacy.encode('ther'), [268, 263]);
  assert.equal(legacy.encode('her'), [259, 267, 263]);
  assert.equal(legacy.encode('  the'), [259, 259, 268]); // ▁▁▁the
  assert.equal(legacy.encode(''), []);
  assert.is(legacy.bosId, 1); assert.is(legacy.eosId, 2); assert.is(legacy.unkId, 0); assert.is(legacy.padId, null);
});

test('LLaMA-2: byte fallback for characters outside the vocabulary', () => {
  assert.equal(legacy.encode('Hé'), [269, 3 + 0xc3, 3 + 0xa9]);
  assert.equal(legacy.encode('😀'), [259, 3 + 0xf0, 3 + 0x9f, 3 + 0x98, 3 + 0x80]);
  assert.equal(legacy.encode('a\uD800'), [259, 3 + 0x61, 3 + 0xef, 3 + 0xbf, 3 + 0xbd]); // lone surrogate -> U+FFFD
  assert.is(legacy.decode([1, 270, 272]), '<s> Hi there'); // as the Rust crate: Strip only sees the fused text
  assert.is(legacy.decode([1, 270, 272], { skipSpecialTokens: true }), 'Hi there');
  assert.is(legacy.decode([269, 3 + 0xc3, 3 + 0xa9]), 'Hé');
  // an invalid byte run decodes to one U+FFFD per byte (ByteFallback decoder)
  assert.is(legacy.decode([269, 3 + 0xc3]), 'H\uFFFD');
  assert.is(legacy.decode([269, 3 + 0xf0, 3 + 0x9f, 269]), 'H\uFFFD\uFFFD H');
});

test('LLaMA-2 without byte fallback: <unk>, fused or not', () => {
  const fused = new Tokenizer(llama2Json('legacy', { byteFallback: false, fuseUnk: true }));
  const plain = new Tokenizer(llama2Json('legacy', { byteFallback: false, fuseUnk: false }));
  assert.equal(fused.encode('Héé'), [269, 0]);
  assert.equal(plain.encode('Héé'), [269, 0, 0]);
});

test('special tokens: legacy prepends ▁ after them, Metaspace "first" does not', () => {
  assert.equal(legacy.encode('Hi</s>there'), [270, 2, 272]);
  // Metaspace first: "there" is not at the start of the input -> t he re
  assert.equal(meta.encode('Hi</s>there'), [270, 2, 260, 267, 271]);
  assert.equal(meta.encode('Hi there'), [270, 272]);
  assert.equal(meta.encode('</s>'), [2]);
  assert.equal(meta.encode('Hi </s>', { parseSpecial: false }),
    [270, 259, 3 + 0x3c, 3 + 0x2f, 3 + 0x73, 3 + 0x3e]); // ▁Hi ▁ < / s >
});

test('Metaspace decoder drops every ▁ of the first token (Rust behaviour)', () => {
  const j = llama2Json('metaspace');
  j.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };
  const t = new Tokenizer(j);
  assert.is(t.decode([270, 272]), 'Hi there');
  assert.is(t.decode([259, 259, 268]), '  the'); // '' + ' ' + ' the'
  assert.is(t.decode([266, 259]), 't ');
});

// LLaMA-3 fixture: byte b has id b; Ġt=256 he=257 Ġthe=258 in=259 Ġfarm=260 (no merge path);
// <|begin_of_text|>=261 <|end_of_text|>=262.
const l3 = new Tokenizer(llama3Json(true));
const l3NoIgnore = new Tokenizer(llama3Json(false));

test('LLaMA-3: split pattern, ignore_merges, template', () => {
  assert.equal(l3.encode(' the farm in'), [258, 260, 32, 259]);
  assert.equal(l3NoIgnore.encode(' the farm in'), [258, 32, 102, 97, 114, 109, 32, 259]);
  assert.equal(l3.encode('the', { addSpecialTokens: true }), [261, 116, 257]);
  assert.equal(l3.encode("it'S"), [105, 116, 39, 83]); // (?i:'s) splits "'S" off
  assert.equal(l3.encode('12345'), [49, 50, 51, 52, 53]);
  assert.equal(l3.encode('a<|end_of_text|>b'), [97, 262, 98]);
  assert.is(l3.bosId, 261); assert.is(l3.eosId, 262);
  assert.is(l3.decode([261, 258, 260]), '<|begin_of_text|> the farm');
  assert.is(l3.decode([261, 258, 260], { skipSpecialTokens: true }), ' the farm');
});

test('agrees with @huggingface/tokenizers on these files (ids)', () => {
  const r = rng(21);
  const texts = ['Hi there', 'the farm in the barn', "it's 12345 kg", 'Hi</s>there', 'héllo wörld 😀 日本', '  leading', 'trailing  '];
  for (let i = 0; i < 150; i++) texts.push(randomString(r, 40, false).replaceAll('\u2581', ''));
  for (const [name, json] of [['llama2-legacy', llama2Json('legacy')], ['llama3', llama3Json(true)], ['llama3-no-ignore', llama3Json(false)]] as const) {
    const ours = new Tokenizer(json);
    const theirs = new HfTokenizer(json as never, {} as never);
    for (const t of texts) {
      assert.equal(ours.encode(t), theirs.encode(t, { add_special_tokens: false }).ids, `${name}: ${JSON.stringify(t)}`);
    }
  }
});

test('Oniguruma patterns: case-insensitive groups, possessive quantifiers, Unicode shorthands', () => {
  const all = (p: string, t: string) => [...t.matchAll(compilePattern(p))].map((m) => m[0]);
  assert.equal(all("(?i:'s|'ll)", "it'S we'LL x's"), ["'S", "'LL", "'s"]);
  assert.equal(all('[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++', ' ab,cd'), [' ab', ',cd']);
  assert.equal(all('\\s+', 'a\u0085b\uFEFFc\u3000d'), ['\u0085', '\u3000']); // White_Space, as Oniguruma
  assert.equal(all('\\d+', 'x١٢3y'), ['١٢3']);
  assert.equal(all('\\w+', 'é_ü-x'), ['é_ü', 'x']);
  assert.equal(all('\\Aab', 'abab'), ['ab']);
  assert.equal(all('(?:ab)+c', 'ababc'), ['ababc']);
  assert.throws(() => compilePattern('(?<=a+'), /cannot compile split pattern/);
});

test('legacy "a b" merges and pair-array merges load the same', () => {
  const j = llama3Json(true);
  const model = j.model as { merges: [string, string][] };
  const asStrings = { ...j, model: { ...model, merges: model.merges.map(([a, b]) => `${a} ${b}`) } };
  const t = new Tokenizer(asStrings);
  for (const s of [' the farm in', 'then in', 'thethe']) assert.equal(t.encode(s), l3.encode(s));
});

test.run();
