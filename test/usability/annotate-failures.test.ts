// Issue 14, item 4: `farm annotate` exited 0 when 299 of 300 pairs failed. It now fails past --max-failed
// (default 10%), prints the counts, and still writes what was labelled.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeServer } from '../feedback/fake-judge-server.ts';
import { farm, writeJsonl } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'farm-annfail-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const pairs = Array.from({ length: 300 }, (_, i) => ({ instruction: `Question ${i}`, input: '', output_1: `GOOD ${i}`, output_2: `meh ${i}` }));
const file = writeJsonl(join(dir, 'pairs.jsonl'), pairs);
const env = { OPENAI_API_KEY: 'sk-test-xyz', FARM_JUDGE_API_KEY: '', FARM_CACHE_DIR: join(dir, 'cache') };

test('299 of 300 unparsable: exit 1 with the counts; --max-failed raises the bar', async () => {
  const server = await startFakeServer();
  try {
    // only the request holding "Question 0" gets a usable answer
    server.behave = (req) => (req.pairs.some(([a, b]) => /\b0$/.test(a) || /\b0$/.test(b)) ? undefined : { answers: ['I would rather not say.'] });
    const args = ['annotate', '--pairs', file, '--annotator', 'openai:flaky', '--base-url', server.url, '--batch-size', '1', '--no-swap', '--no-cache', '--max-retries', '0'];
    let r = await farm([...args, '--out', join(dir, 'a.jsonl')], env);
    assert.is(r.code, 1);
    assert.match(r.err, /1 prefer output_1, 0 prefer output_2, 0 draws, 299 failed/);
    assert.match(r.err, /299 of 300 pairs \(99\.7%\) were left unlabelled, more than --max-failed 0\.1 \(unparsable answer: .*\); 1 records written/);
    assert.is(readFileSync(join(dir, 'a.jsonl'), 'utf8').trim().split('\n').length, 1, 'what was labelled is written');
    r = await farm([...args, '--out', join(dir, 'b.jsonl'), '--max-failed', '1', '--json'], env);
    assert.is(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.equal([s.pairs, s.labelled, s.failed, s.max_failed], [300, 1, 299, 1]);
    assert.ok(s.failed_fraction > 0.99);
    r = await farm([...args, '--out', join(dir, 'c.jsonl'), '--max-failed', '1.5'], env);
    assert.is(r.code, 1);
    assert.match(r.err, /--max-failed must be a number in \[0, 1\]/);
    assert.not.ok(existsSync(join(dir, 'c.jsonl')));
  } finally {
    await server.close();
  }
});

test('a few failures under the threshold pass', async () => {
  const server = await startFakeServer();
  try {
    server.behave = (req) => (req.n <= 2 ? { answers: ['?'] } : undefined);  // 2 of 30 requests unparsable
    const few = writeJsonl(join(dir, 'few.jsonl'), pairs.slice(0, 30));
    const r = await farm(['annotate', '--pairs', few, '--annotator', 'openai:flaky', '--base-url', server.url, '--batch-size', '1', '--no-cache', '--max-retries', '0', '--concurrency', '1', '--out', join(dir, 'few-out.jsonl'), '--json'], env);
    assert.is(r.code, 0, r.err);
    assert.is(JSON.parse(r.out).failed, 2);
  } finally {
    await server.close();
  }
});

test.run();
