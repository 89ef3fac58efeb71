// The Alpaca prompt template (ts/data/template.ts) and SFT examples with the prompt masked out of the loss.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  buildSftExample, formatPrompt, IGNORE_INDEX, parsePrompt, PROMPT_NO_INPUT, PROMPT_WITH_INPUT, splitPromptResponse,
} from '../../ts/data/template.ts';
import { trainBpe } from '../../ts/tokenizer/index.ts';
import { syntheticFarmText } from '../../ts/tokenizer/synthetic.ts';

test('exact Alpaca wording, with and without input', () => {
  assert.is(formatPrompt({ instruction: 'Name a farm animal.' }),
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
    '### Instruction:\nName a farm animal.\n\n### Response:');
  assert.is(formatPrompt({ instruction: 'Count the cows.', input: '3 cows, 2 goats' }),
    'Below is an instruction that describes a task, paired with an input that provides further context. ' +
    'Write a response that appropriately completes the request.\n\n' +
    '### Instruction:\nCount the cows.\n\n### Input:\n3 cows, 2 goats\n\n### Response:');
  assert.is(formatPrompt({ instruction: 'x', input: '' }), PROMPT_NO_INPUT.replace('{instruction}', 'x'));
  assert.is(formatPrompt({ instruction: 'x', input: null }), PROMPT_NO_INPUT.replace('{instruction}', 'x'));
  assert.ok(PROMPT_WITH_INPUT.includes('{input}'));
});

test('user text is inserted literally (no $-patterns, no placeholder re-expansion)', () => {
  const p = formatPrompt({ instruction: "cost $& and $1 {input}", input: '{instruction} $$' });
  assert.ok(p.includes('### Instruction:\ncost $& and $1 {input}\n\n### Input:\n{instruction} $$\n\n'));
});

test('split and parse prompts back', () => {
  const ex = { instruction: 'Count the cows.\n\n### Input:\nnot really', input: 'two\n\nlines' };
  const prompt = formatPrompt(ex);
  assert.equal(parsePrompt(prompt), ex);
  assert.equal(parsePrompt(formatPrompt({ instruction: 'a' })), { instruction: 'a', input: '' });
  assert.is(parsePrompt('hello'), null);
  assert.equal(splitPromptResponse(prompt + ' Two cows.'), { prompt, response: ' Two cows.' });
  assert.throws(() => splitPromptResponse('no marker'), /no "### Response:"/);
  assert.throws(() => formatPrompt({ instruction: 3 as unknown as string }), /instruction/);
});

const tok = trainBpe(syntheticFarmText(100_000, 6), { vocabSize: 500 });

test('SFT example: prompt masked, response + EOS supervised, boundary exact', () => {
  const rec = { instruction: 'Count the cows.', input: '3 cows', output: 'There are 3 cows. <|eos|> stays text' };
  const ex = buildSftExample(tok, rec);
  const prompt = formatPrompt(rec);
  assert.equal(ex.inputIds.slice(0, ex.promptLength), tok.encode(prompt, { addBos: true }));
  assert.is(ex.inputIds[0], tok.bosId);
  assert.is(ex.inputIds[ex.inputIds.length - 1], tok.eosId);
  assert.is(ex.inputIds.filter((i) => i === tok.eosId).length, 1, 'EOS written in the response stays text');
  assert.ok(ex.labels.slice(0, ex.promptLength).every((l) => l === IGNORE_INDEX));
  assert.equal(ex.labels.slice(ex.promptLength), ex.inputIds.slice(ex.promptLength));
  assert.is(tok.decode(ex.inputIds, { skipSpecialTokens: true }), prompt + rec.output);
  assert.not.ok(ex.truncated);
});

test('SFT example: maxLength cuts the response, never the prompt', () => {
  const rec = { instruction: 'Write a long note.', output: 'Mara feeds the goats. '.repeat(50) };
  const full = buildSftExample(tok, rec);
  const cut = buildSftExample(tok, rec, { maxLength: full.promptLength + 5 });
  assert.is(cut.inputIds.length, full.promptLength + 5);
  assert.ok(cut.truncated);
  assert.equal(cut.inputIds, full.inputIds.slice(0, cut.inputIds.length));
  assert.throws(() => buildSftExample(tok, rec, { maxLength: full.promptLength }), /prompt alone has/);
  assert.throws(() => buildSftExample(tok, rec, { maxLength: 0 }), /positive integer/);
  const noEos = buildSftExample(tok, rec, { addEos: false, addBos: false });
  assert.is(noEos.inputIds.length, full.inputIds.length - 2);
});

test.run();
