// Issue 14, item 10: CLI consistency with alpaca_eval and TRL habits. One spelling for output folders
// (--output-dir) and files (--out); the HTTP judge flags wherever a judge runs; evaluate --cache-path;
// --json on every command that prints; farm --version; annotate --out x.json writes a JSON array and .jsonl
// JSON Lines; progress lines on steps longer than 3 s when output is not a terminal.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command, Option } from 'commander';
import { buildProgram } from '../../ts/cli/main.ts';
import { startFakeServer } from '../feedback/fake-judge-server.ts';
import { farmPairs } from '../../ts/feedback/index.ts';
import { createWorld } from '../../ts/world/index.ts';
import { farm, writeJsonl } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'farm-cli14-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const env = { OPENAI_API_KEY: 'sk-consistency', FARM_JUDGE_API_KEY: '', FARM_CACHE_DIR: join(dir, 'cache') };

const program = await buildProgram();
const leaves: Array<{ path: string; cmd: Command }> = [];
(function walk(c: Command, path: string[]) {
  if (c.commands.length === 0 && path.length) leaves.push({ path: path.join(' '), cmd: c });
  for (const s of c.commands) walk(s, [...path, s.name()]);
})(program, []);
const visible = (c: Command) => (c.options as Option[]).filter((o) => !o.hidden).map((o) => o.long ?? '');
const HTTP = ['--base-url', '--template', '--batch-size', '--temperature', '--max-tokens', '--logit-bias', '--soft', '--concurrency', '--rpm', '--timeout-ms', '--max-retries', '--cache-path', '--no-cache', '--world-seed'];

test('one spelling for outputs: --output-dir for folders, --out for files', () => {
  for (const { path, cmd } of leaves) {
    const outs = visible(cmd).filter((o) => /^--(out|output|outdir|output-path|output_dir|output-file)\b/.test(o));
    for (const o of outs) assert.ok(o === '--out' || o === '--output-dir', `farm ${path} has ${o}`);
  }
  assert.ok(visible(leaves.find((l) => l.path === 'data generate')!.cmd).includes('--output-dir'));
});

test('HTTP judge flags wherever a judge runs; --json on every command', () => {
  for (const p of ['annotate', 'evaluate', 'leaderboard build', 'judges analyze']) {
    const have = visible(leaves.find((l) => l.path === p)!.cmd);
    const missing = HTTP.filter((f) => !have.includes(f));
    assert.equal(missing, [], `farm ${p} lacks ${missing.join(', ')}`);
  }
  const noJson = leaves.filter(({ cmd }) => !visible(cmd).includes('--json')).map((l) => l.path);
  assert.equal(noJson, [], `no --json: ${noJson.join(', ')}`);
});

test('farm --version prints the package version', async () => {
  const r = await farm(['--version']);
  assert.is(r.code, 0);
  assert.is(r.out.trim(), JSON.parse(readFileSync('package.json', 'utf8')).version);
});

test('annotate --out x.json writes a JSON array, .jsonl JSON Lines', async () => {
  const pairs = writeJsonl(join(dir, 'pairs.jsonl'), [0, 1, 2].map((i) => ({ instruction: `Q${i}`, input: '', output_1: 'a'.repeat(i + 1), output_2: 'bb' })));
  let r = await farm(['annotate', '--pairs', pairs, '--annotator', 'longest', '--out', join(dir, 'x.json')]);
  assert.is(r.code, 0, r.err);
  const arr = JSON.parse(readFileSync(join(dir, 'x.json'), 'utf8'));
  assert.ok(Array.isArray(arr) && arr.length === 3);
  r = await farm(['annotate', '--pairs', pairs, '--annotator', 'longest', '--out', join(dir, 'x.jsonl')]);
  assert.is(r.code, 0, r.err);
  assert.equal(readFileSync(join(dir, 'x.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)), arr);
});

test('progress lines on a step longer than 3 s (annotate and judges analyze with an HTTP judge)', async () => {
  const server = await startFakeServer();
  try {
    server.behave = () => ({ delayMs: 450 });
    const pairs = writeJsonl(join(dir, 'slow.jsonl'), farmPairs(createWorld({ seed: 1 }), { n: 9, seed: 2 }).map((p) => ({ ...p, world_seed: 1 })));
    const http = ['--annotator', 'openai:slow', '--base-url', server.url, '--batch-size', '1', '--concurrency', '1', '--no-cache'];
    let r = await farm(['annotate', '--pairs', pairs, ...http, '--out', join(dir, 'slow-out.jsonl')], env);
    assert.is(r.code, 0, r.err);
    assert.match(r.err, /farm: annotate \(openai:slow\) \d\/9 \(\d+%\), \ds elapsed, ETA/);
    assert.match(r.err, /farm: annotate \(openai:slow\) 9\/9 \(100%\)/);
    r = await farm(['judges', 'analyze', '--references', 'panel', '--pairs', pairs, ...http, '--runs', '1', '--world-seed', '1'], env);
    assert.is(r.code, 0, r.err);
    assert.match(r.err, /farm: openai:slow run 1\/1 \d\/9 \(\d+%\)/);
    // the panel as reference refuses instructions of another world, naming the flag
    const foreign = writeJsonl(join(dir, 'foreign.jsonl'), [{ instruction: 'Write a haiku about rain', input: '', output_1: 'a', output_2: 'b' }]);
    r = await farm(['judges', 'analyze', '--references', 'panel', '--pairs', foreign, '--annotator', 'longest'], env);
    assert.match(r.err, /the human panel judges only farm-world instructions, and 1 of 1 pairs .* --world-seed/);
  } finally {
    await server.close();
  }
});

test('quickstart\'s pipeline (farm run, smoke preset): every stage from SFT on prints progress lines', async () => {
  // --no-progress: log lines whatever the terminal, as when output is not one (quickstart is --preset quick)
  const r = await farm(['run', '--preset', 'smoke', '--output-dir', join(dir, 'run'), '--no-report', '--no-progress', '--json']);
  assert.is(r.code, 0, r.err);
  const stages: Array<{ name: string; lines: string[] }> = [];
  for (const line of r.err.split('\n')) {
    const m = /^farm: \[\d+\/\d+\] (\S+?),? /.exec(line);
    if (m) stages.push({ name: m[1], lines: [] });
    else if (stages.length) stages[stages.length - 1].lines.push(line);
  }
  const names = stages.map((s) => s.name);
  assert.ok(names.includes('sft') && names.includes('reward-model/pool-train') && names.some((n) => n.startsWith('ppo/')), names.join(', '));
  const silent = stages.slice(names.indexOf('sft')).filter((s) => !s.lines.some((l) => /^farm: .+ \d+\/\d+ \(100%\)/.test(l))).map((s) => s.name);
  assert.equal(silent, [], `stages without progress lines: ${silent.join(', ')}`);
});

test.run();
