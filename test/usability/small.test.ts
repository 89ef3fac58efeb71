// Issue 14, item 11 (the CLI's smaller ones; the engine's are in engine-inputs.test.ts): --rpm -5,
// --timeout-ms 0 and --max-retries -1 were accepted; `evaluate --difficulty missing.json` gave a raw ENOENT;
// `farm data generate` overwrote an existing folder without --force.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpJudge } from '../../ts/feedback/http.ts';
import { farm, writeJsonl } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'farm-small14-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const pairs = writeJsonl(join(dir, 'pairs.jsonl'), [{ instruction: 'Q', input: '', output_1: 'a', output_2: 'bb' }]);

test('HTTP limits that would hang or hammer are refused, on the CLI and in the library', async () => {
  for (const [flag, value, msg] of [['--rpm', '-5', /--rpm must be a number > 0/], ['--timeout-ms', '0', /--timeout-ms must be an integer >= 1/], ['--max-retries', '-1', /--max-retries must be an integer >= 0/],
    ['--concurrency', '0', /--concurrency must be an integer >= 1/], ['--temperature', '9', /--temperature must be a number in \[0, 2\]/]] as const) {
    const r = await farm(['annotate', '--pairs', pairs, '--annotator', 'openai:m', '--out', join(dir, 'o.jsonl'), flag, value]);
    assert.is(r.code, 1, flag);
    assert.match(r.err, msg);
  }
  assert.not.ok(existsSync(join(dir, 'o.jsonl')));
  assert.throws(() => new HttpJudge({ model: 'm', rpm: -5, cache: null }), /rpm must be a number > 0/);
  assert.throws(() => new HttpJudge({ model: 'm', timeoutMs: 0, cache: null }), /timeoutMs must be an integer >= 1/);
  assert.throws(() => new HttpJudge({ model: 'm', maxRetries: -1, cache: null }), /maxRetries must be an integer >= 0/);
});

test('evaluate --difficulty missing.json names the flag and the file', async () => {
  const outputs = writeJsonl(join(dir, 'outputs.jsonl'), [{ instruction: 'Q', input: '', output: 'x', generator: 'm' }]);
  const r = await farm(['evaluate', '--model-outputs', outputs, '--reference-outputs', outputs, '--annotator', 'longest', '--difficulty', join(dir, 'missing.json')]);
  assert.is(r.code, 1);
  assert.match(r.err, /--difficulty .*missing\.json: no such file/);
  assert.not.match(r.err, /ENOENT/);
});

test('data generate refuses a folder that already holds data unless --force', async () => {
  const out = join(dir, 'data');
  let r = await farm(['data', 'generate', '--output-dir', out, '--seed', '2', '--json']);
  assert.is(r.code, 0, r.err);
  const first = readFileSync(join(out, 'sft.jsonl'), 'utf8');
  r = await farm(['data', 'generate', '--output-dir', out, '--seed', '3']);
  assert.is(r.code, 1);
  assert.match(r.err, /already holds a data set \(manifest\.json\); pass --force/);
  assert.is(readFileSync(join(out, 'sft.jsonl'), 'utf8'), first, 'untouched');
  r = await farm(['data', 'generate', '--output-dir', out, '--seed', '3', '--force', '--json']);
  assert.is(r.code, 0, r.err);
  assert.is.not(readFileSync(join(out, 'sft.jsonl'), 'utf8'), first);
  assert.is(JSON.parse(r.out).world_seed, 3);
});

test.run();
