// BPE trainer: same merges as a naive recount-everything trainer, hand-checked merges, sizes, determinism.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { BYTE_TO_CHAR, countWords, GPT2_PATTERN, LLAMA3_PATTERN, trainBpe, trainBpeJson } from '../../ts/tokenizer/index.ts';
import { syntheticFarmText } from '../../ts/tokenizer/synthetic.ts';
import { formatPrompt, TEMPLATE_PHRASES } from '../../ts/data/template.ts';
import { randomString, rng } from './fixtures.ts';

type Merge = [string, string];
const mergesOf = (json: Record<string, unknown>): Merge[] => (json.model as { merges: Merge[] }).merges;

/** The textbook algorithm: recount every pair after every merge; ties go to the smaller (id, id) pair. */
function naiveMerges(text: string, pattern: string, numMerges: number, minFrequency = 2): Merge[] {
  const tokens = BYTE_TO_CHAR.slice();
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const words = [...countWords(text, pattern)].map(([w, c]) => ({ s: [...Buffer.from(w)], c }));
  const merges: Merge[] = [];
  while (tokens.length < 256 + numMerges) {
    const counts = new Map<string, number>();
    for (const { s, c } of words) for (let i = 0; i + 1 < s.length; i++) counts.set(`${s[i]},${s[i + 1]}`, (counts.get(`${s[i]},${s[i + 1]}`) ?? 0) + c);
    let best: [number, number] | null = null, bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number);
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) { best = [a, b]; bestCount = c; }
    }
    if (!best || bestCount < minFrequency) break;
    const [a, b] = best;
    const spelled = tokens[a] + tokens[b];
    let id = ids.get(spelled);
    if (id === undefined) { id = tokens.length; tokens.push(spelled); ids.set(spelled, id); }
    merges.push([tokens[a], tokens[b]]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.s.length;) {
        if (i + 1 < w.s.length && w.s[i] === a && w.s[i + 1] === b) { out.push(id); i += 2; } else out.push(w.s[i++]);
      }
      w.s = out;
    }
  }
  return merges;
}

test('incremental trainer learns exactly the merges of the naive trainer', () => {
  const farm = syntheticFarmText(60_000, 3);
  const r = rng(5);
  let noisy = '';
  for (let i = 0; i < 300; i++) noisy += randomString(r, 30, true) + ' aaaa abab ';
  for (const [text, pattern] of [[farm, LLAMA3_PATTERN], [noisy, LLAMA3_PATTERN], [farm, GPT2_PATTERN]] as const) {
    const json = trainBpeJson(text, { vocabSize: 256 + 3 + 150, pattern });
    assert.equal(mergesOf(json), naiveMerges(text, pattern, 150));
  }
});

test('hand-checked merges on a tiny corpus', () => {
  // words (GPT-2 split): "aaab" x3, " aaab" x2... counts: (a,a) = 2 per word
  const text = 'aaab aaab aaab';
  const merges = mergesOf(trainBpeJson(text, { vocabSize: 256 + 3 + 10, pattern: 'gpt2' }));
  // words: "aaab" x1, " aaab" x2. pairs: (a,a) 2+4=6, (a,b) 3, (Ġ,a) 2 -> first "a a"; then "aaab" -> [aa, a, b]:
  // (aa,a) 3, (a,b) 3, (Ġ,aa) 2 -> tie at 3: smaller ids first: aa=256 > a=97, so (a,b) = (97,98) wins
  assert.equal(merges.slice(0, 2), [['a', 'a'], ['a', 'b']]);
  // then (aa, ab) 3 -> "aaab"; then (Ġ, aaab) 2 -> "Ġaaab"; then nothing occurs twice
  assert.equal(merges.slice(2), [['aa', 'ab'], ['Ġ', 'aaab']]);
});

test('vocabulary size, special tokens at the end, early stop on a short corpus', () => {
  const farm = syntheticFarmText(200_000, 4);
  const tok = trainBpe(farm, { vocabSize: 800 });
  assert.is(tok.vocabSize, 800);
  assert.equal([tok.bosId, tok.eosId, tok.padId], [797, 798, 799]);
  assert.is(tok.idToToken(799), '<|pad|>');
  const small = trainBpe('abc abc', { vocabSize: 5000, extraSpecialTokens: ['<|user|>'] });
  assert.ok(small.vocabSize < 300, 'stops when no pair occurs twice');
  assert.is(small.tokenToId('<|user|>'), small.vocabSize - 1);
  const noPad = trainBpe('abc abc', { vocabSize: 300, pad: null });
  assert.is(noPad.padId, null);
});

test('training is deterministic and its output is a loadable HF file', () => {
  const farm = syntheticFarmText(100_000, 8);
  const a = JSON.stringify(trainBpeJson(farm, { vocabSize: 600 }));
  const b = JSON.stringify(trainBpeJson(farm, { vocabSize: 600 }));
  assert.is(a, b);
  // the maintained JS port reads our file and splits text into the same ids
  const json = JSON.parse(a);
  const theirs = new HfTokenizer(json, {});
  const ours = trainBpe(farm, { vocabSize: 600 });
  const r = rng(9);
  const texts = [syntheticFarmText(5_000, 10), "It's 2024: 1,234 goats!", ...Array.from({ length: 100 }, () => randomString(r, 40, false))];
  for (const t of texts) assert.equal(ours.encode(t), theirs.encode(t, { add_special_tokens: false }).ids, JSON.stringify(t));
  assert.equal(ours.encode('x', { addSpecialTokens: true }), [ours.bosId!, ...ours.encode('x')]);
});

test('compression on held-out farm text', () => {
  const tok = trainBpe(syntheticFarmText(300_000, 1), { vocabSize: 1000 });
  const held = syntheticFarmText(50_000, 2);
  const bytesPerToken = Buffer.byteLength(held) / tok.encode(held).length;
  assert.ok(bytesPerToken > 3, `bytes/token ${bytesPerToken.toFixed(2)}`);
});

test('special tokens are cut out of the training text', () => {
  assert.equal([...countWords('a<|eos|>b <|eos|>', GPT2_PATTERN, ['<|eos|>'])], [['a', 1], ['b', 1], [' ', 1]]);
  assert.equal([...countWords('a<|eos|>b', GPT2_PATTERN)], [['a', 1], ['<|', 1], ['eos', 1], ['|>', 1], ['b', 1]]);
});

test('template phrases become single non-special tokens that round-trip and also load in @huggingface/tokenizers', () => {
  const rows = Array.from({ length: 300 }, (_, i) => ({ instruction: `Name ${i % 7} birds.`, input: i % 3 ? '' : 'owl, crow', output: `Here are ${i % 7} birds.` }));
  const texts = rows.map((r) => `${formatPrompt(r)}${r.output}`);
  const tok = trainBpe(texts, { vocabSize: 400, phrases: [...TEMPLATE_PHRASES] });
  const plain = trainBpe(texts, { vocabSize: 400 });
  for (const p of TEMPLATE_PHRASES) {
    const ids = tok.encode(p, { parseSpecial: false });
    assert.is(ids.length, 1, `one token for ${JSON.stringify(p)}`);
    assert.is(tok.decode(ids, { skipSpecialTokens: true }), p, 'kept on decode: the phrase is text, not a control token');
  }
  for (const r of rows.slice(0, 20)) {
    const text = formatPrompt(r);
    assert.is(tok.decode(tok.encode(text, { parseSpecial: false })), text);
    assert.ok(tok.encode(text).length < plain.encode(text).length / 2, 'prompts cost their content');
  }
  const hf = new HfTokenizer(tok.json as never, {} as never);
  const probe = formatPrompt(rows[3]);
  assert.equal(hf.encode(probe, { add_special_tokens: false }).ids, tok.encode(probe, { parseSpecial: false }));
  assert.throws(() => trainBpe(texts, { vocabSize: 400, phrases: [''] }), /phrase is empty/);
  assert.throws(() => trainBpe(texts, { vocabSize: 400, phrases: ['<|eos|>'] }), /also a special token/);
});

test('bad options: clear errors', () => {
  assert.throws(() => trainBpe('abc', { vocabSize: 100 }), /vocabSize must be an integer in \[259/);
  assert.throws(() => trainBpe('abc', { vocabSize: 300.5 }), /vocabSize/);
  assert.throws(() => trainBpe('abc', { vocabSize: 300, bos: '<x>', eos: '<x>' }), /repeat/);
  assert.throws(() => trainBpe('abc', { vocabSize: 300, pattern: '(unclosed' }), /cannot compile split pattern/);
});

test.run();
