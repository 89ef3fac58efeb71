// `farm generate` end to end on a tiny checkpoint folder built here (config.json, model.safetensors,
// tokenizer.json): text prompts, raw ids, JSONL in and out, reproducible with a seed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveModel } from '../../ts/engine/index.ts';
import { trainBpeJson } from '../../ts/tokenizer/index.ts';
import { tinyModel } from './helpers.ts';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'farm-gen-cli-'));
const text = 'the cow eats grass. the hen lays eggs. the farmer feeds the cow and the hen. '.repeat(20);
const tokJson = trainBpeJson(text, { vocabSize: 300 });
writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokJson));
await saveModel(tinyModel({ vocab_size: 300, max_position_embeddings: 256 }, 50), dir);

function farm(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'ts/cli/main.ts'), 'generate', '--model', dir, ...args],
    { cwd: root, encoding: 'utf8', env: process.env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('text prompts: JSON output with tokens, text and finish reasons; same seed, same output', () => {
  const a = farm('--prompt', 'the cow', '--prompt', 'the hen', '--n', '2', '--max-new-tokens', '6', '--seed', '3', '--json');
  assert.is(a.code, 0, a.err);
  const recs = JSON.parse(a.out);
  assert.is(recs.length, 4);
  for (const r of recs) {
    assert.ok(r.tokens.length >= 1 && r.tokens.length <= 6);
    assert.type(r.output, 'string');
    assert.ok(['stop', 'length'].includes(r.finish_reason));
    assert.ok(r.logprob < 0);
  }
  const b = farm('--prompt', 'the cow', '--prompt', 'the hen', '--n', '2', '--max-new-tokens', '6', '--seed', '3', '--json');
  assert.is(b.out, a.out);
});

test('JSONL in and out, Alpaca records and raw ids; greedy', () => {
  const input = join(dir, 'prompts.jsonl'), output = join(dir, 'out.jsonl');
  writeFileSync(input, [JSON.stringify({ instruction: 'feed the cow', input: '' }), JSON.stringify({ prompt_ids: [1, 5, 9] })].join('\n') + '\n');
  const r = farm('--input', input, '--output', output, '--temperature', '0', '--max-new-tokens', '5');
  assert.is(r.code, 0, r.err);
  const lines = readFileSync(output, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.is(lines.length, 2);
  assert.is(lines[0].instruction, 'feed the cow');
  assert.match(lines[0].prompt, /### Instruction:\nfeed the cow/);
  assert.equal(lines[1].prompt_ids, [1, 5, 9]);
});

test('clear errors: no prompts, bad options', () => {
  assert.match(farm().err, /no prompts/);
  assert.match(farm('--prompt', 'x', '--top-p', '0').err, /--top-p must be in \(0, 1\]/);
  assert.match(farm('--prompt', 'x', '--n', '0').err, /--n must be an integer >= 1/);
  assert.match(farm('--prompt-ids', '1,x').err, /comma-separated token ids/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
