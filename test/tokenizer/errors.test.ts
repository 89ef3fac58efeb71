// Bad input: unknown model types and stages, broken files, bad ids and arguments give clear errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '../../ts/tokenizer/index.ts';
import { llama2Json, llama3Json } from './fixtures.ts';

const withModel = (model: Record<string, unknown>) => ({ ...llama3Json(), model });

test('unknown or unsupported model types name the type', () => {
  assert.throws(() => new Tokenizer(withModel({ type: 'WordPiece', vocab: { a: 0 }, unk_token: '[UNK]' })), /unsupported model type "WordPiece"/);
  assert.throws(() => new Tokenizer(withModel({ type: 'Unigram', vocab: [['a', -1]], unk_id: 0 })), /unsupported model type "Unigram"/);
  assert.throws(() => new Tokenizer(withModel({ type: 'Foo', vocab: {} })), /unsupported model type "Foo" \(unknown\)/);
  assert.throws(() => new Tokenizer({ ...llama3Json(), model: null }), /model must be an object/);
});

test('unsupported pipeline stages name the stage and the type', () => {
  assert.throws(() => new Tokenizer({ ...llama3Json(), normalizer: { type: 'Precompiled', precompiled_charsmap: '' } }), /unsupported normalizer type "Precompiled"/);
  assert.throws(() => new Tokenizer({ ...llama3Json(), pre_tokenizer: { type: 'BertPreTokenizer' } }), /unsupported pre_tokenizer type "BertPreTokenizer"/);
  assert.throws(() => new Tokenizer({ ...llama3Json(), decoder: { type: 'WordPiece', prefix: '##' } }), /unsupported decoder type "WordPiece"/);
  assert.throws(() => new Tokenizer({ ...llama3Json(), post_processor: { type: 'Mystery' } }), /unsupported post_processor type "Mystery"/);
  assert.throws(() => new Tokenizer({ ...llama3Json(), pre_tokenizer: { type: 'Split', pattern: { Regex: '(' }, behavior: 'Isolated' } }), /cannot compile split pattern/);
  assert.throws(() => new Tokenizer({ ...llama3Json(), pre_tokenizer: { type: 'Split', pattern: { Regex: 'a' }, behavior: 'Sideways' } }), /unknown split behavior "Sideways"/);
});

test('inconsistent BPE files', () => {
  const j = llama3Json();
  const model = j.model as Record<string, unknown>;
  assert.throws(() => new Tokenizer({ ...j, model: { ...model, merges: [['Ġ', 'zz']] } }), /merge 0 .* not in the vocab/);
  assert.throws(() => new Tokenizer({ ...j, model: { ...model, merges: [['a', 'b']] } }), /makes "ab", which is not in the vocab/);
  assert.throws(() => new Tokenizer({ ...j, model: { ...model, merges: [42] } }), /merge 0 is neither/);
  assert.throws(() => new Tokenizer({ ...j, model: { ...model, merges: undefined } }), /merges must be an array/);
  assert.throws(() => new Tokenizer({ ...j, model: { ...model, unk_token: '<nope>' } }), /unk_token "<nope>" is not in the vocab/);
  assert.throws(() => new Tokenizer({ ...j, model: { ...model, vocab: { a: -1 } , merges: [] } }), /vocab id -1/);
  assert.throws(() => new Tokenizer({ ...j, model: { ...model, continuing_subword_prefix: '##' } }), /continuing_subword_prefix is not supported/);
  assert.throws(() => new Tokenizer({ ...j, added_tokens: [{ id: 'x', content: 'y' }] }), /added_tokens\[0\]/);
  assert.throws(() => new Tokenizer(llama2Json('legacy'), { bos: '<bos-missing>' }), /bos token "<bos-missing>" is not in the vocabulary/);
});

test('files: missing, not JSON, unknown type named with the path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokerr-'));
  assert.throws(() => Tokenizer.load(join(dir, 'none.json')), /cannot read .*none\.json/);
  writeFileSync(join(dir, 'bad.json'), '{ not json');
  assert.throws(() => Tokenizer.load(join(dir, 'bad.json')), /bad\.json is not valid JSON/);
  writeFileSync(join(dir, 'wp.json'), JSON.stringify(withModel({ type: 'WordPiece', vocab: {} })));
  assert.throws(() => Tokenizer.load(join(dir, 'wp.json')), /unsupported model type "WordPiece".*wp\.json/);
});

test('encode/decode arguments', () => {
  const t = new Tokenizer(llama3Json());
  assert.throws(() => t.encode(42 as unknown as string), TypeError);
  assert.throws(() => t.encode(null as unknown as string), /expected a string/);
  assert.throws(() => t.encodeBatch('abc' as unknown as string[]), /array of strings/);
  assert.throws(() => t.decode([5, 100000]), /id 100000 at position 1 is not in the vocabulary/);
  assert.throws(() => t.decode([-1]), RangeError);
  assert.throws(() => t.decode([1.5]), RangeError);
  assert.throws(() => t.decode([Number.NaN]), RangeError);
  assert.is(t.decode([104, 100000, 105], { unknownIds: 'skip' }), 'hi');
  const bare = new Tokenizer({ ...llama3Json(), added_tokens: [], post_processor: null });
  assert.is(bare.bosId, null);
  assert.throws(() => bare.encode('x', { addBos: true }), /addBos, but this tokenizer has no BOS token/);
  assert.throws(() => bare.encode('x', { addEos: true }), /addEos, but this tokenizer has no EOS token/);
  assert.equal(bare.encode('x', { addSpecialTokens: true }), [120]);
});

test.run();
