// Issue 14, item 7: an endpoint that echoes the API key inside a successful completion (or an unparsable one)
// must not get the key into any stored string: raw_completion and error in `farm annotate --out`, evaluate's
// annotations, the cache.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpJudge, redactSecret } from '../../ts/feedback/http.ts';
import { startFakeServer } from '../feedback/fake-judge-server.ts';

const KEY = 'sk-echo-"SECRET"/9f8e7d';
const dir = mkdtempSync(join(tmpdir(), 'farm-redact-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const pairs = Array.from({ length: 6 }, (_, i) => ({ instruction: `Q${i}`, input: '', output_1: `GOOD ${i}`, output_2: `meh ${i}` }));

test('redactSecret: plain, JSON-escaped and URL-encoded echoes', () => {
  assert.is(redactSecret(`a ${KEY} b`, KEY), 'a *** b');
  assert.is(redactSecret(`{"k": ${JSON.stringify(KEY)}}`, KEY), '{"k": "***"}');
  assert.is(redactSecret(`?key=${encodeURIComponent(KEY)}`, KEY), '?key=***');
  assert.is(redactSecret('short abc', 'abc'), 'short abc');
});

test('raw_completion and error never hold the key, in the library and in `farm annotate --out`', async () => {
  const server = await startFakeServer();
  try {
    // Every other request answers with the key echoed after a valid label, the others with only the key.
    server.behave = (req) => (req.n % 2 ? { answers: req.pairs.map((_, i) => `Request ${i + 1}: Output (a). Auth was ${req.authorization}`) }
      : { answers: [`I cannot judge; you sent ${JSON.stringify(req.authorization)}`] });
    const judge = new HttpJudge({ model: 'echo', baseUrl: server.url, apiKey: KEY, batchSize: 3, cache: null, maxRetries: 0 });
    const out = await judge.annotate(pairs);
    assert.ok(out.some((a) => a.preference === 1) && out.some((a) => a.preference === null), 'both a labelled and an unparsable batch');
    const stored = JSON.stringify(out);
    assert.not.ok(stored.includes('SECRET'), stored);
    assert.ok(stored.includes('***'));

    const file = join(dir, 'pairs.jsonl');
    writeFileSync(file, pairs.map((p) => JSON.stringify(p)).join('\n') + '\n');
    const outFile = join(dir, 'prefs.jsonl');
    const args = [join(process.cwd(), 'bin/farm.mjs'), 'annotate', '--pairs', file, '--annotator', 'openai:echo', '--base-url', server.url,
      '--batch-size', '3', '--no-cache', '--keep-failed', '--max-failed', '1', '--out', outFile];
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn(process.execPath, args, { env: { ...process.env, OPENAI_API_KEY: KEY, FARM_JUDGE_API_KEY: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      c.stderr.on('data', (d) => (err += d));
      c.stdout.on('data', (d) => (err += d));
      c.on('exit', (code) => resolve({ code, err }));
    });
    assert.is(r.code, 0, r.err);
    const text = readFileSync(outFile, 'utf8');
    assert.match(text, /raw_completion/);
    assert.not.ok(text.includes('SECRET'), text);
    assert.not.ok(r.err.includes('SECRET'), r.err);
  } finally {
    await server.close();
  }
});

test.run();
