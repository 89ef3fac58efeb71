// Splits: sizes, disjointness, determinism (byte-identical files), every family generated and scored,
// and the `farm data` command.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createWorld, FAMILIES } from '../../ts/world/index.ts';
import { generateSplits, panelPreferencePairs, PRESETS, readRecords, resolveSizes, SPLIT_NAMES, verifyManifest, writeSplits } from '../../ts/data/index.ts';

const world = createWorld({ seed: 1 });
const splits = generateSplits(world, 'quick');
const tmp = mkdtempSync(join(tmpdir(), 'farm-splits-'));

test('presets: quick has the paper\'s 10k SFT and 805 eval instructions, paper has AlpacaFarm sizes', () => {
  const q = PRESETS.quick;
  assert.is(q.sft, 10000); assert.is(q.eval, 805);
  assert.ok(q.preference >= 10000, `quick preference ${q.preference}`);
  assert.equal(PRESETS.paper, { sft: 10000, preference: 20000, unlabeled: 20000, val: 2000, eval: 805 });
  for (const s of SPLIT_NAMES) assert.is(splits[s].length, q[s]);
  assert.throws(() => resolveSizes('huge'), /unknown preset "huge"/);
  assert.throws(() => resolveSizes({ sft: -1 }), /non-negative/);
});

test('splits are disjoint in (instruction, input) and every family appears in each large split', () => {
  const seen = new Map<string, string>();
  for (const s of SPLIT_NAMES) {
    for (const r of splits[s]) {
      const k = `${r.instruction}\u0000${r.input}`;
      assert.not.ok(seen.has(k), `${JSON.stringify(r.instruction)} in ${seen.get(k)} and ${s}`);
      seen.set(k, s);
      assert.is(r.datasplit, s);
    }
  }
  for (const s of ['sft', 'preference', 'unlabeled'] as const) {
    const fams = new Set(splits[s].map((r) => r.dataset));
    for (const f of FAMILIES) assert.ok(fams.has(f.name), `${f.name} missing from ${s}`);
  }
  assert.ok(splits.eval.every((r) => r.generator === 'farm-reference'));
  assert.ok(splits.sft.every((r) => r.generator === 'farm-demonstrator'));
  assert.ok(splits.sft.filter((r) => r.input).length > 300, 'Alpaca-style inputs');
});

test('every generated record is graded from its text; the reference (calibrated against trained models) sits below the demonstrator', () => {
  const mean = (rs: typeof splits.sft) => rs.reduce((a, r) => a + world.grade(r.instruction, r.input, r.output).total, 0) / rs.length;
  const sft = mean(splits.sft), ev = mean(splits.eval);
  assert.ok(sft > 0.8 && sft < 0.95, `sft ${sft}`);
  assert.ok(ev < sft && ev > 0.5, `eval reference ${ev} vs sft demonstrations ${sft}`);
  const other = createWorld({ seed: 1 });
  for (const r of splits.val) assert.ok(other.parse(r.instruction, r.input), r.instruction);
});

test('same seed gives byte-identical folders (JSONL and protobuf); another seed differs', () => {
  const a = join(tmp, 'a'), b = join(tmp, 'b'), c = join(tmp, 'c');
  writeSplits(a, splits, { seed: 1, preset: 'quick', formats: ['jsonl', 'pb'] });
  writeSplits(b, generateSplits(createWorld({ seed: 1 }), 'quick'), { seed: 1, preset: 'quick', formats: ['jsonl', 'pb'] });
  writeSplits(c, generateSplits(createWorld({ seed: 2 }), 'quick'), { seed: 2, preset: 'quick' });
  const files = readdirSync(a).sort();
  assert.equal(files, readdirSync(b).sort());
  for (const f of files) assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f);
  assert.not.ok(readFileSync(join(a, 'sft.jsonl')).equals(readFileSync(join(c, 'sft.jsonl'))));
  const m = verifyManifest(join(a, 'manifest.json'));
  assert.is(m.files.length, 10);
  assert.equal(readRecords(join(a, 'eval.pb'), 'instruction'), readRecords(join(a, 'eval.jsonl'), 'instruction'));
});

test('panel-labelled preference pairs', () => {
  const pairs = panelPreferencePairs(world, 200);
  assert.is(pairs.length, 200);
  assert.ok(pairs.every((p) => p.preference === 1 || p.preference === 2));
  const ones = pairs.filter((p) => p.preference === 1).length;
  assert.ok(ones > 60 && ones < 140, `position balance ${ones}`);
});

test('farm data generate / stats / validate', () => {
  const out = join(tmp, 'cli');
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'ts/cli/main.ts', 'data', ...args], { encoding: 'utf8' });
  const g = run('--preset', 'quick', '--seed', '1', '--output-dir', out, '--panel-pairs', '50');
  assert.is(g.status, 0, g.stderr);
  assert.match(g.stdout, /sft\s+10000 records/);
  assert.match(g.stdout, /task mix:/);
  assert.ok(readFileSync(join(out, 'sft.jsonl')).equals(readFileSync(join(tmp, 'a', 'sft.jsonl'))), 'CLI output equals the library output');
  const s = run('stats', join(out, 'eval.jsonl'), '--json');
  assert.is(s.status, 0, s.stderr);
  const st = JSON.parse(s.stdout.trim().split('\n')[0]);
  assert.is(st.records, 805);
  assert.is(st.unknown_instructions, 0);
  const v = run('validate', out);
  assert.is(v.status, 0, v.stderr);
  const bad = run('validate', join(tmp, 'nope.jsonl'));
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /no such file/);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
