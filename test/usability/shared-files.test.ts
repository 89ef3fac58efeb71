// Issue 14, item 9: shared files never lose data. Four `leaderboard add` processes on one CSV kept 3 rows;
// two annotators on one cache paid for the same pairs twice; --cache-path to a file that is not a cache was
// appended to. Now: board writes are read-modify-write under a lock, annotators claim the pairs they judge
// and pick up each other's labels, and a non-cache file is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Leaderboard } from '../../ts/eval/index.ts';
import { startFakeServer } from '../feedback/fake-judge-server.ts';
import { farm, writeJsonl } from './helpers.ts';

const root = process.cwd();
const dir = mkdtempSync(join(tmpdir(), 'farm-shared-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, NO_COLOR: '1', OPENAI_API_KEY: 'sk-test-shared', FARM_JUDGE_API_KEY: '', FARM_CACHE_DIR: join(dir, 'cache') };

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [join(root, 'bin/farm.mjs'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code) => resolve({ code, out, err }));
  });
}

test('four parallel `leaderboard add` to one CSV keep four rows', async () => {
  // annotations of four models against one reference; the length-controlled fit makes each add take a while
  const files = [0, 1, 2, 3].map((k) => writeJsonl(join(dir, `ann${k}.jsonl`), Array.from({ length: 300 }, (_, i) => ({
    instruction: `Task ${i}`, input: '', output_1: 'r'.repeat(20 + (i % 7)), output_2: 'm'.repeat(10 + ((i * (k + 3)) % 40)),
    preference: ((i * 7 + k) % 3) === 0 ? 2 : 1, generator_1: 'reference', generator_2: `model-${k}`, annotator: 'judge',
  }))));
  const csv = join(dir, 'board.csv');
  const rs = await Promise.all(files.map((f) => run(['leaderboard', 'add', csv, f])));
  for (const r of rs) assert.is(r.code, 0, r.err);
  assert.equal(Leaderboard.load(csv).sorted().map((x) => x.name).sort(), ['model-0', 'model-1', 'model-2', 'model-3']);
});

test('two annotators on one cache never pay twice and never lose an entry', async () => {
  const server = await startFakeServer();
  try {
    server.behave = () => ({ delayMs: 25 });
    const n = 150;
    const pairs = Array.from({ length: n }, (_, i) => ({ instruction: `Question ${i}`, input: '', output_1: i % 2 ? `meh ${i}` : `GOOD ${i}`, output_2: i % 2 ? `GOOD ${i}` : `meh ${i}` }));
    const file = writeJsonl(join(dir, 'pairs.jsonl'), pairs);
    const cache = join(dir, 'shared-cache.jsonl');
    const args = (out: string) => ['annotate', '--pairs', file, '--annotator', 'openai:gpt-4o-mini', '--base-url', server.url, '--cache-path', cache, '--out', out, '--batch-size', '5', '--concurrency', '2', '--json'];
    const [a, b] = await Promise.all([run(args(join(dir, 'a.jsonl'))), run(args(join(dir, 'b.jsonl')))]);
    assert.is(a.code, 0, a.err);
    assert.is(b.code, 0, b.err);
    const asked = new Map<string, number>();
    for (const q of server.requests) for (const [x, y] of q.pairs) { const k = [x, y].sort().join('|'); asked.set(k, (asked.get(k) ?? 0) + 1); }
    assert.is(asked.size, n);
    const twice = [...asked.values()].filter((c) => c > 1).length;
    assert.is(twice, 0, `${twice} pairs were paid for twice`);
    const lines = readFileSync(cache, 'utf8').trim().split('\n');
    assert.is(new Set(lines.map((l) => JSON.parse(l).key)).size, n, 'every pair in the cache');
    assert.is(lines.length, n, 'each once');
    for (const out of ['a.jsonl', 'b.jsonl']) assert.is(readFileSync(join(dir, out), 'utf8').trim().split('\n').length, n, `${out} has every pair`);
    // every pair labelled in both outputs: the pairs one process left to the other came from the cache
    const [sa, sb] = [JSON.parse(a.out), JSON.parse(b.out)];
    assert.equal([sa.failed, sb.failed, sa.labelled, sb.labelled], [0, 0, n, n]);
  } finally {
    await server.close();
  }
});

test('--cache-path to a file that is not a cache is refused, not appended to', async () => {
  const pairsFile = writeJsonl(join(dir, 'some.jsonl'), [{ instruction: 'a', input: '', output_1: 'x', output_2: 'y' }]);
  const before = readFileSync(pairsFile, 'utf8');
  const r = await farm(['annotate', '--pairs', pairsFile, '--annotator', 'openai:gpt-4o-mini', '--base-url', 'http://127.0.0.1:9', '--cache-path', pairsFile, '--out', join(dir, 'x.jsonl')]);
  assert.is(r.code, 1);
  assert.match(r.err, /some\.jsonl is not an annotation cache/);
  assert.is(readFileSync(pairsFile, 'utf8'), before);
  const r2 = await farm(['annotate', '--pairs', pairsFile, '--annotator', 'openai:gpt-4o-mini', '--cache-path', dir, '--out', join(dir, 'x.jsonl')]);
  assert.match(r2.err, /is a folder; give a file path/);
});

test.run();
