// `farm annotate` and `farm judges` as a user runs them: bad input, the pool, an HTTP judge killed midway and
// rerun (every pair labelled exactly once), and the analysis command.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorld } from '../../ts/world/index.ts';
import { farmPairs } from '../../ts/feedback/index.ts';
import { deadUrl, startFakeServer } from './fake-judge-server.ts';

const root = process.cwd();
const dir = mkdtempSync(join(tmpdir(), 'farm-cli-'));
const KEY = 'sk-cli-SECRET-0a1b2c3d';
test.after(() => rmSync(dir, { recursive: true, force: true }));

const env = { ...process.env, NO_COLOR: '1', FARM_CACHE_DIR: join(dir, 'default-cache'), OPENAI_API_KEY: KEY, FARM_JUDGE_API_KEY: '' };
function farm(args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin/farm.mjs'), ...args], { cwd: root, encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
function runAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const readJsonl = (p: string) => readFileSync(p, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

test('bad input: missing fields, bad JSON, unknown annotator, unreachable endpoint', async () => {
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, jsonl([{ instruction: 'a', input: '', output_1: 'x', output_2: 'y' }, { instruction: 'b', output_1: 'x' }]));
  let r = farm(['annotate', '--pairs', bad, '--annotator', 'longest', '--out', join(dir, 'o.jsonl')]);
  assert.is(r.code, 1);
  assert.match(r.err, /bad\.jsonl:2: missing field "output_2"/);
  writeFileSync(bad, '{"instruction": "a", "input": "", "output_1": "x", "output_2": 3}\n');
  r = farm(['annotate', '--pairs', bad, '--annotator', 'longest', '--out', join(dir, 'o.jsonl')]);
  assert.match(r.err, /bad\.jsonl:1: field "output_2" is number, expected a string/);
  writeFileSync(bad, '{"instruction": "a", "input": "", "output_1": "x", "outp');
  r = farm(['annotate', '--pairs', bad, '--annotator', 'longest', '--out', join(dir, 'o.jsonl')]);
  assert.match(r.err, /bad\.jsonl:1: invalid JSON \(the file ends mid-record: truncated\?\)/);
  r = farm(['annotate', '--pairs', join(dir, 'nope.jsonl'), '--annotator', 'longest', '--out', join(dir, 'o.jsonl')]);
  assert.match(r.err, /cannot read pairs file .*nope\.jsonl: ENOENT/);
  const good = join(dir, 'good.jsonl');
  writeFileSync(good, jsonl([{ instruction: 'a', input: '', output_1: 'x', output_2: 'y' }]));
  r = farm(['annotate', '--pairs', good, '--annotator', 'gpt7', '--out', join(dir, 'o.jsonl')]);
  assert.is(r.code, 1);
  assert.match(r.err, /unknown annotator "gpt7"; known: pool/);
  const url = await deadUrl();
  r = farm(['annotate', '--pairs', good, '--annotator', 'openai:judge', '--base-url', url, '--max-retries', '1', '--out', join(dir, 'o.jsonl'), '--no-cache']);
  assert.is(r.code, 1);
  assert.match(r.err, /cannot reach http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions: ECONNREFUSED/);
  assert.not.ok(r.err.includes(KEY));
  r = farm(['annotate', '--pairs', good, '--annotator', 'pool', '--out', join(dir, 'o.jsonl'), '--flip-p', 'lots']);
  assert.match(r.err, /--flip-p must be a number/);
  assert.not.ok(existsSync(join(dir, 'o.jsonl')), 'no output written on errors');
});

test('annotate with the farm pool: records, summary, noise', () => {
  const world = createWorld({ seed: 0 });
  const pairs = farmPairs(world, { n: 400, seed: 4 });
  const file = join(dir, 'farm.jsonl');
  writeFileSync(file, jsonl(pairs.map((p, i) => ({ ...p, id: i }))));
  const out = join(dir, 'prefs.jsonl');
  const r = farm(['annotate', '--pairs', file, '--annotator', 'pool:train', '--out', out, '--json', '--seed', '3', '--world-seed', '0']);
  assert.is(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  assert.is(s.pairs, 400);
  assert.is(s.failed, 0);
  assert.is(s.prefer_1 + s.prefer_2, 400);
  assert.ok(s.label_noise > 60 && s.label_noise < 140, `noise ${s.label_noise}`);
  const recs = readJsonl(out);
  assert.is(recs.length, 400);
  assert.equal(recs.map((x: { id: number }) => x.id), pairs.map((_, i) => i), 'order and extra fields kept');
  assert.ok(recs.every((x: { preference: number; annotator: string }) => (x.preference === 1 || x.preference === 2) && typeof x.annotator === 'string'));
  const again = farm(['annotate', '--pairs', file, '--annotator', 'pool:train', '--out', join(dir, 'prefs2.jsonl'), '--json', '--seed', '3', '--world-seed', '0']);
  const untimed = (f: string) => readJsonl(f).map(({ time_per_example: _t, ...x }: Record<string, unknown>) => x);
  assert.equal(untimed(join(dir, 'prefs2.jsonl')), untimed(out), 'same seed, same labels (only measured times differ)');
  assert.is(again.code, 0);
  const text = farm(['annotate', '--pairs', file, '--annotator', 'gpt4-careful', '--out', join(dir, 'prefs3.jsonl'), '--world-seed', '0']);
  assert.match(text.err, /annotated 400 pairs with gpt4-careful/);
  assert.match(text.err, /cost: \$0\.0000/);
});

test('an HTTP annotation killed midway, then rerun, labels every pair exactly once', async () => {
  const server = await startFakeServer();
  try {
    const n = 200;
    const pairs = Array.from({ length: n }, (_, i) => ({ instruction: `Question ${i}`, input: '', output_1: i % 2 ? `meh ${i}` : `GOOD ${i}`, output_2: i % 2 ? `GOOD ${i}` : `meh ${i}` }));
    const file = join(dir, 'http-pairs.jsonl');
    writeFileSync(file, jsonl(pairs));
    const out = join(dir, 'http-prefs.jsonl');
    const cachePath = join(dir, 'http-cache.jsonl');
    server.behave = () => ({ delayMs: 15 });
    const args = [join(root, 'bin/farm.mjs'), 'annotate', '--pairs', file, '--annotator', 'openai:gpt-4o-mini', '--base-url', server.url, '--cache-path', cachePath, '--out', out, '--batch-size', '5', '--concurrency', '2', '--seed', '1'];
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let logs = '';
    child.stdout.on('data', (d) => (logs += d));
    child.stderr.on('data', (d) => (logs += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    while (server.requests.length < 12) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    await exited;
    assert.not.ok(existsSync(out), 'a killed run writes no partial output');
    const firstRun = server.requests.length;
    assert.ok(firstRun < n / 5, 'killed before the end');
    const cachedLines = readFileSync(cachePath, 'utf8').split('\n').filter(Boolean).length;
    assert.ok(cachedLines >= 5 * (firstRun - 2) && cachedLines <= 5 * firstRun, `cache has ${cachedLines} labels after ${firstRun} requests`);
    server.behave = null;
    // The server lives in this process: the rerun must not block its event loop (no spawnSync).
    const r = await runAsync([...args, '--json']);
    assert.is(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.is(s.failed, 0);
    assert.is(s.cache_hits, cachedLines);
    const recs = readJsonl(out);
    assert.is(recs.length, n);
    assert.is(new Set(recs.map((x: { instruction: string }) => x.instruction)).size, n);
    assert.ok(recs.every((x: { output_1: string; preference: number }) => x.preference === (x.output_1.includes('GOOD') ? 1 : 2)), 'labels swapped back correctly');
    // Each pair went to the judge once, except those in flight at the kill (at most 2 requests x 5 pairs).
    const asked = new Map<string, number>();
    for (const q of server.requests) for (const [a, b] of q.pairs) {
      const k = [a, b].sort().join('|');
      asked.set(k, (asked.get(k) ?? 0) + 1);
    }
    assert.is(asked.size, n);
    const twice = [...asked.values()].filter((c) => c > 1).length;
    assert.ok(twice <= 10, `${twice} pairs asked twice`);
    assert.ok([...asked.values()].every((c) => c <= 2));
    const cacheText = readFileSync(cachePath, 'utf8');
    assert.is(cacheText.split('\n').filter(Boolean).length, n, 'the cache holds each pair once');
    for (const text of [logs, r.stdout, r.stderr, cacheText, readFileSync(out, 'utf8')]) assert.not.ok(text.includes(KEY), 'key leaked');
    assert.ok(server.requests.every((q) => q.authorization === `Bearer ${KEY}`));
  } finally {
    await server.close();
  }
});

test('judges list and judges analyze (panel references and a references file)', () => {
  let r = farm(['judges', 'list']);
  assert.is(r.code, 0);
  assert.match(r.out, /gpt4-careful/);
  r = farm(['judges', 'analyze', '--annotator', 'pool,longest', '--n', '300', '--json']);
  assert.is(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.rows.map((x: { annotator: string }) => x.annotator), ['panel', 'pool', 'longest']);
  assert.is(j.rows[2].p_prefer_longer, 1);
  assert.ok(j.rows[1].variance > 0);
  // A references file with three raters per pair and a precomputed annotations file with two runs.
  const refs = join(dir, 'refs.jsonl');
  const anns = join(dir, 'anns.jsonl');
  const rows: object[] = [];
  const annRows: object[] = [];
  for (let i = 0; i < 30; i++) {
    const p = { instruction: `q${i}`, input: '', output_1: `a${i}`, output_2: `b${i}` };
    for (const v of [1, 1, 2]) rows.push({ ...p, preference: v });
    annRows.push({ ...p, preference: 1, annotator: 'mine' }, { ...p, preference: i < 15 ? 1 : 2, annotator: 'mine' });
  }
  writeFileSync(refs, jsonl(rows));
  writeFileSync(anns, jsonl(annRows));
  const csv = join(dir, 'judges.csv');
  r = farm(['judges', 'analyze', '--references', refs, '--annotations', anns, '--csv', csv]);
  assert.is(r.code, 0, r.err);
  // Raters 1, 1, 2: each 1 faces a tie among the others (0.5), the 2 faces {1, 1} (0): 1/3.
  assert.match(r.out, /references\s+33\.3/);
  assert.match(r.out, /mine\s+75\.0/);
  const lines = readFileSync(csv, 'utf8').trim().split('\n');
  assert.match(lines[0], /^,Human agreement,Price \[\$\/1000 examples\],Time \[seconds\/1000 examples\],Bias,Variance,Proba\. prefer longer,Proba\. prefer lists,Proba\. prefer 1,# parsed$/);
  assert.is(lines.length, 3);
  r = farm(['judges', 'analyze']);
  assert.is(r.code, 1);
  assert.match(r.err, /give --annotator/);
});

test.run();
