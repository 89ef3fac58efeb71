// `farm run` on the smoke preset: every stage writes its files and the leaderboard has every method beside
// the paper's numbers; a second run does no work; changing one method's config reruns only that method, its
// outputs and its evaluation; a kill mid-stage resumes at that stage (earlier stages cached, the training
// continuing from its checkpoint); stage keys follow the dependency graph.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../ts/engine/index.ts';
import { SILENT } from '../../ts/methods/jobs.ts';
import { runFarm } from '../../ts/experiments/run.ts';
import { buildStages, METHODS } from '../../ts/experiments/pipeline.ts';
import { PRESETS, type Preset } from '../../ts/experiments/presets.ts';
import { stageKeys, selectStages } from '../../ts/experiments/stages.ts';
import { farm } from '../methods/cli-helpers.ts';

const D = mkdtempSync(join(tmpdir(), 'farm-run-'));
let engine: Engine;
test.before(async () => { engine = await Engine.create({ threads: 2, seed: 1 }); });

test('farm run (smoke): all stages, a leaderboard of every method with the paper beside, results.json and pipeline.json', async () => {
  const r = await runFarm({ preset: 'smoke', outputDir: join(D, 'a'), engine, progress: SILENT });
  assert.is(r.ran, r.stages.length);
  assert.equal(r.leaderboard.map((x) => x.method).sort(), [...METHODS, 'reference'].sort());
  for (const row of r.leaderboard.filter((x) => x.method !== 'reference')) {
    for (const ev of ['pool', 'panel']) {
      const w = row.evaluations[ev];
      assert.ok(w.win_rate >= 0 && w.win_rate <= 100 && w.standard_error >= 0 && w.n === 16, `${row.method} ${ev} ${JSON.stringify(w)}`);
    }
    assert.ok(row.gold.mean > 0 && row.gold.mean < 1);
  }
  assert.equal(r.leaderboard.find((x) => x.method === 'ppo')!.paper, { simulated: 46.8, human: 55.1 });
  assert.match(r.table, /\| PPO +\|.*\| +46\.8 \| +55\.1 \|/);
  const results = JSON.parse(readFileSync(join(D, 'a', 'results.json'), 'utf8'));
  assert.is(results.leaderboard.length, METHODS.length + 1);
  const pipeline = JSON.parse(readFileSync(join(D, 'a', 'pipeline.json'), 'utf8'));
  const ppo = pipeline.stages.find((s: { name: string }) => s.name === 'ppo/pool-train');
  assert.ok(existsSync(join(ppo.dir, 'run', 'run.json')) && existsSync(join(ppo.dir, 'run', 'model', 'model.safetensors')));
  assert.ok(existsSync(join(D, 'a', 'leaderboard.md')));
});

test('a second run does no work and gives the same leaderboard', async () => {
  const before = readFileSync(join(D, 'a', 'results.json'), 'utf8');
  const r = await runFarm({ preset: 'smoke', outputDir: join(D, 'a'), engine, progress: SILENT });
  assert.is(r.ran, 0);
  assert.equal(JSON.parse(JSON.stringify(r.leaderboard)), JSON.parse(before).leaderboard);
});

test('changing one method\'s config reruns only that method, its outputs and its evaluation (and what reads it: TreeBoN the DPO model)', async () => {
  const changed: Preset = { ...PRESETS.smoke, dpo: { ...PRESETS.smoke.dpo, beta: 0.5 } };
  const r = await runFarm({ preset: changed, outputDir: join(D, 'a'), engine, progress: SILENT });
  assert.equal(r.stages.filter((s) => !s.cached).map((s) => s.name),
    ['dpo/pool-train', 'outputs/dpo/pool-train', 'evaluate/dpo/pool-train', 'treebon/pool-train', 'evaluate/treebon/pool-train']);
  const sft: Preset = { ...PRESETS.smoke, sft: { ...PRESETS.smoke.sft, lr: 4e-3 } };
  const keys = (p: Preset) => stageKeys(buildStages({ preset: p, seed: 1, feedback: ['pool:train'], evaluators: ['pool', 'panel'], methods: METHODS, engine, progress: SILENT }));
  const a = keys(PRESETS.smoke), b = keys(sft);
  assert.equal([...a.keys()].filter((n) => a.get(n) === b.get(n)), ['data', 'tokenizer'], 'an SFT change reruns everything after SFT');
});

test('a moved run folder keeps its cache (stage results point into the new place)', async () => {
  const { renameSync } = await import('node:fs');
  renameSync(join(D, 'a'), join(D, 'moved'));
  const r = await runFarm({ preset: { ...PRESETS.smoke, dpo: { ...PRESETS.smoke.dpo, beta: 0.5 } }, outputDir: join(D, 'moved'), engine, progress: SILENT });
  assert.is(r.ran, 0);
  const pipeline = JSON.parse(readFileSync(join(D, 'moved', 'pipeline.json'), 'utf8'));
  const sft = pipeline.stages.find((s: { name: string }) => s.name === 'sft');
  assert.ok(sft.result.model.startsWith(join(D, 'moved')) && existsSync(sft.result.model), sft.result.model);
});

test('--only runs a stage and what it needs', () => {
  const stages = buildStages({ preset: PRESETS.smoke, seed: 1, feedback: ['pool:train'], evaluators: ['pool'], methods: METHODS, engine, progress: SILENT });
  assert.equal(selectStages(stages, ['reward-model']).map((s) => s.name), ['data', 'tokenizer', 'sft', 'pairs', 'annotate/pool-train', 'reward-model/pool-train']);
});

test('farm run killed inside the SFT stage resumes there: data and tokenizer cached, SFT continues from its checkpoint', () => {
  const out = join(D, 'killed');
  const args = ['run', '--preset', 'smoke', '--output-dir', out, '--methods', 'dpo', '--no-report'];
  const k = farm(args, { FARM_KILL_AFTER_STEP: '7' });
  assert.is(k.signal, 'SIGKILL', k.err);
  const r = farm([...args, '--json']);
  assert.is(r.code, 0, r.err);
  const res = JSON.parse(r.out.trim().split('\n').pop()!);
  assert.equal(res.stages.filter((s: { cached: boolean }) => s.cached).map((s: { name: string }) => s.name), ['data', 'tokenizer']);
  const pipeline = JSON.parse(readFileSync(join(out, 'pipeline.json'), 'utf8'));
  const sftRun = JSON.parse(readFileSync(join(pipeline.stages.find((s: { name: string }) => s.name === 'sft').dir, 'run', 'run.json'), 'utf8'));
  assert.equal(sftRun.resumes.map((x: { fromStep: number }) => x.fromStep), [6], 'SFT resumed once, from its checkpoint at step 6');
  assert.is(sftRun.status, 'completed');
  const again = farm([...args, '--json']);
  assert.is(JSON.parse(again.out.trim().split('\n').pop()!).ran, 0, 'and then nothing is left to do');
});

test.after(() => rmSync(D, { recursive: true, force: true }));
test.run();
