// Issue 14, item 1: the farm world seed is recorded with the data (manifest and every record), read back by
// every command that judges, and a mismatch is refused instead of judging instructions of world 1 in world
// 0 on surface cues. Unknown annotator option keys (world_seed for worldSeed) are errors, and the panel's
// error names the CLI flag.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readManifest, readRecords } from '../../ts/data/index.ts';
import { createAnnotator } from '../../ts/feedback/index.ts';
import { farm, farmData, writeJsonl } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'farm-worldseed-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const data = farmData(join(dir, 'data'), 1);
const evalRows = data.splits.eval;
// pairs of each eval instruction: the reference output against a shortened one (farm pairs of world 1)
const pairs = evalRows.map((r) => ({ instruction: r.instruction, input: r.input, output_1: r.output, output_2: r.output.slice(0, Math.max(1, r.output.length >> 1)), world_seed: r.world_seed }));
const pairsFile = writeJsonl(join(dir, 'pairs.jsonl'), pairs);
const bare = writeJsonl(join(dir, 'bare.jsonl'), pairs.map(({ world_seed: _w, ...p }) => p));

test('the manifest and every record carry the world seed', () => {
  assert.is(readManifest(join(dir, 'data', 'manifest.json')).world_seed, 1);
  for (const s of ['sft', 'preference', 'eval']) assert.ok(readRecords(data.file(s), 'instruction').every((r) => r.world_seed === 1), s);
});

test('annotate reads the world seed from the records and refuses another one', async () => {
  let r = await farm(['annotate', '--pairs', pairsFile, '--annotator', 'pool', '--out', join(dir, 'p.jsonl'), '--json']);
  assert.is(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  assert.equal([s.world_seed, s.world_seed_from, s.unknown_instructions], [1, 'records', 0]);
  r = await farm(['annotate', '--pairs', pairsFile, '--annotator', 'pool', '--out', join(dir, 'p0.jsonl'), '--world-seed', '0']);
  assert.is(r.code, 1);
  assert.match(r.err, /--world-seed 0 disagrees with .*pairs\.jsonl, whose records were written by farm world 1/);
  // records without a seed: the default is the one `farm data generate` uses (1), and a wrong flag is caught
  r = await farm(['annotate', '--pairs', bare, '--annotator', 'pool', '--out', join(dir, 'pb.jsonl'), '--json']);
  assert.is(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).world_seed, 1);
  r = await farm(['annotate', '--pairs', bare, '--annotator', 'pool', '--out', join(dir, 'pw.jsonl'), '--world-seed', '0', '--json']);
  assert.match(r.err, /of 30 instructions are not tasks of farm world 0 \(--world-seed\)/);
  assert.ok(JSON.parse(r.out).unknown_instructions > 0);
});

test('data of another world without a recorded seed is refused under the default seed', async () => {
  const other = farmData(join(dir, 'w3'), 3);
  const rows = other.splits.eval.map((x) => ({ instruction: x.instruction, input: x.input, output_1: x.output, output_2: `${x.output} ok` }));
  const r = await farm(['annotate', '--pairs', writeJsonl(join(dir, 'w3.jsonl'), rows), '--annotator', 'pool', '--out', join(dir, 'w3p.jsonl')]);
  assert.is(r.code, 1);
  assert.match(r.err, /instructions are not tasks of farm world 1 \(the default world seed 1; the records carry none\).*Pass it with --world-seed/);
});

test('evaluate uses the outputs\' world seed; unknown --annotator-options keys are refused', async () => {
  const outputs = writeJsonl(join(dir, 'outputs.jsonl'), evalRows.map((x) => ({ instruction: x.instruction, input: x.input, output: x.output.slice(0, 20), generator: 'short', world_seed: 1 })));
  let r = await farm(['evaluate', '--model-outputs', outputs, '--reference-outputs', data.file('eval'), '--annotator', 'pool', '--no-length-control', '--json']);
  assert.is(r.code, 0, r.err);
  assert.is(JSON.parse(r.out).world_seed, 1);
  r = await farm(['evaluate', '--model-outputs', outputs, '--reference-outputs', data.file('eval'), '--annotator', 'pool', '--annotator-options', '{"world_seed":1}']);
  assert.is(r.code, 1);
  assert.match(r.err, /--annotator-options: annotator options: unknown option "world_seed"; did you mean "worldSeed"\?/);
  r = await farm(['evaluate', '--model-outputs', outputs, '--reference-outputs', data.file('eval'), '--annotator', 'pool', '--annotator-options', '{"worldSeed":0}']);
  assert.match(r.err, /--world-seed 0 disagrees with .*outputs\.jsonl/);
});

test('judges analyze reads the seed from --pairs; the panel names the flag for foreign instructions', async () => {
  let r = await farm(['judges', 'analyze', '--annotator', 'pool', '--pairs', pairsFile, '--runs', '1', '--json']);
  assert.is(r.code, 0, r.err);
  r = await farm(['judges', 'analyze', '--annotator', 'pool', '--pairs', pairsFile, '--runs', '1', '--world-seed', '2']);
  assert.match(r.err, /--world-seed 2 disagrees/);
  const panel = await createAnnotator('panel', { worldSeed: 0 });
  await panel.annotate(pairs.map(({ world_seed: _w, ...p }) => p)).then(
    () => assert.unreachable('the panel judged another world\'s instructions'),
    (e: Error) => {
      assert.match(e.message, /are not tasks of farm world 0/);
      assert.match(e.message, /--world-seed/);
      assert.not.match(e.message, /world\.grade|tryGrade/);
    },
  );
  await createAnnotator('pool', {}).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /needs the seed of the world that wrote them: --world-seed/));
  await createAnnotator('pool', { world_seed: 1 } as never).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /unknown option "world_seed"; did you mean "worldSeed"/));
});

test('pairs and outputs written by the methods keep the seed', () => {
  // `farm pairs` and model_outputs.json copy data tags (dataset, world_seed) from their input records
  const text = readFileSync(data.file('eval'), 'utf8');
  assert.match(text, /"world_seed":1/);
});

test.run();
