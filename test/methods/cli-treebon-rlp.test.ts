// `farm treebon` and `farm rlp` end to end on tiny inputs: run folders, outputs, token counts, RLP's three
// steps (samples, reward model, PPO) in one folder; a kill inside RLP's PPO resumes bit for bit; bad inputs
// are refused before any work.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../ts/engine/index.ts';
import { runDpo, runPairs, runPpo, runRewardModel, runSft } from '../../ts/methods/jobs.ts';
import { createAnnotator } from '../../ts/feedback/index.ts';
import { createWorld } from '../../ts/world/index.ts';
import { farm, readJson, readLines, summary, timeless, TINY, writeSplits } from './cli-helpers.ts';

const D = mkdtempSync(join(tmpdir(), 'farm-treebon-rlp-'));
const F = writeSplits(join(D, 'data'));
const ok = (r: ReturnType<typeof farm>) => { assert.is(r.code, 0, `exit ${r.code}\n${r.err}`); return summary(r); };

test.before(async () => {
  const engine = await Engine.create({ threads: 2, seed: 3 });
  const o = (name: string) => ({ outputDir: join(D, name), seed: 3, engine });
  await runSft(o('sft'), { data: F.sft, architecture: TINY, vocabSize: 400, config: { epochs: 2, lr: 5e-3 } });
  await runPairs(o('pairs'), { model: join(D, 'sft'), data: F.preference, generation: { maxNewTokens: 12 } });
  const pairs = readJson(join(D, 'pairs', 'pairs.json'));
  const labels = await (await createAnnotator('pool:train', { world: createWorld({ seed: 3 }), seed: 3 })).annotate(pairs.map(({ instruction, input, output_1, output_2 }: Record<string, string>) => ({ instruction, input, output_1, output_2 })));
  writeFileSync(join(D, 'prefs.json'), JSON.stringify(labels));
  await runRewardModel(o('rm'), { model: join(D, 'sft'), preferences: join(D, 'prefs.json'), config: { epochs: 1, batchSize: 8 } });
  await runDpo(o('dpo'), { model: join(D, 'sft'), preferences: join(D, 'prefs.json'), config: { epochs: 1, batchSize: 8, lr: 3e-4 } });
  await runPpo(o('ppo'), { model: join(D, 'sft'), rewardModel: join(D, 'rm'), data: F.unlabeled, config: { steps: 2, rolloutBatchSize: 8, maxNewTokens: 12, learningRate: 1e-3 } });
});

test('farm treebon: implicit DPO reward from --dpo-model (reference: --model), outputs and token counts; reward-model partial reward; N_children 1 = best-of-n', () => {
  const t = ok(farm(['treebon', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--dpo-model', join(D, 'dpo'), '--data', F.eval, '--n', '4',
    '--branching-factor', '2', '--depth', '3', '--max-new-tokens', '12', '--keep-candidates', '--output-dir', join(D, 'tb'), '--json']));
  assert.equal([t['treebon/n'], t['treebon/branching_factor'], t['treebon/depth']], [4, 2, 3]);
  assert.ok(t['treebon/generated_tokens'] > 0 && t['treebon/partial_reward_tokens'] > 0);
  const outs = readJson(join(D, 'tb', 'model_outputs.json'));
  assert.is(outs.length, 8);
  assert.is(outs.reduce((a: number, o: { generated_tokens: number }) => a + o.generated_tokens, 0), t['treebon/generated_tokens']);
  assert.is(outs[0].generator, 'tb');
  const cands = readJson(join(D, 'tb', 'candidates.json'));
  assert.ok(cands[0].leaves.length >= 1 && typeof cands[0].leaves[0].layer === 'number');
  const run = readJson(join(D, 'tb', 'run.json'));
  assert.equal([run.command, run.config.method.partialReward, Object.keys(run.inputs).sort()], ['treebon', 'implicit-dpo', ['data', 'dpoModel', 'model', 'rewardModel']]);
  // N_children 1: best-of-n's outputs
  const a = ok(farm(['treebon', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.eval, '--n', '3', '--branching-factor', '1', '--depth', '2',
    '--partial-reward', 'reward-model', '--max-new-tokens', '12', '--output-dir', join(D, 'tb1'), '--json']));
  const b = ok(farm(['best-of-n', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.eval, '--n', '3', '--max-new-tokens', '12', '--output-dir', join(D, 'bon1'), '--json']));
  assert.equal(readJson(join(D, 'tb1', 'model_outputs.json')).map((o: { output: string }) => o.output), readJson(join(D, 'bon1', 'model_outputs.json')).map((o: { output: string }) => o.output));
  assert.is(a['treebon/generated_tokens'], b['bon/generated_tokens']);
});

test('farm treebon refuses bad settings before any work', () => {
  const base = ['treebon', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.eval];
  for (const [extra, pattern] of [
    [[], /needs --dpo-model/],
    [['--dpo-model', join(D, 'dpo'), '--n', '6', '--branching-factor', '4'], /n \(6\) must be divisible by branchingFactor \(4\)/],
    [['--partial-reward', 'reward-model', '--dpo-model', join(D, 'dpo')], /serve --partial-reward implicit-dpo only/],
    [['--dpo-model', join(D, 'rm')], /--dpo-model .*a reward model \(no LM head\)/],
  ] as [string[], RegExp][]) {
    const out = join(D, `tb-bad-${Math.random().toString(36).slice(2)}`);
    const r = farm([...base, ...extra, '--output-dir', out]);
    assert.is(r.code, 1, `expected a refusal, got exit ${r.code}\n${r.err}`);
    assert.match(r.err, pattern);
    assert.not.ok(existsSync(out));
  }
});

const rlpArgs = (variant: string) => ['rlp', '--variant', variant, '--model', join(D, 'sft'), '--ppo-model', join(D, 'ppo'), '--reward-model', join(D, 'rm'),
  '--preferences', join(D, 'prefs.json'), '--data', F.unlabeled, '--n', '4', '--max-new-tokens', '12', '--uml-batch-size', '4', '--rm-epochs', '1', '--rm-batch-size', '8',
  '--ppo-steps', '4', '--ppo-rollout-batch-size', '8', '--ppo-max-new-tokens', '12', '--ppo-learning-rate', '1e-3'];

test('farm rlp --variant uml: samples.json, reward-model/ (the multi-view loss logged), model/ from PPO; metrics numbered across both trainings', () => {
  const s = ok(farm([...rlpArgs('uml'), '--output-dir', join(D, 'uml'), '--json']));
  assert.is(s.steps, 4);
  assert.is(s.instructions, 16);
  const samples = readJson(join(D, 'uml', 'samples.json'));
  assert.is(samples.length, 16);
  assert.ok(samples.every((x: { outputs: string[] }) => x.outputs.length === 4));
  for (const f of ['reward-model/model.safetensors', 'reward-model/rlp-reward-model.json', 'model/model.safetensors']) assert.ok(existsSync(join(D, 'uml', f)), f);
  const lines = readLines(join(D, 'uml', 'metrics.jsonl'));
  const rmLines = lines.filter((l) => l['rlp/stage'] === 1), ppoLines = lines.filter((l) => l['rlp/stage'] === 2);
  assert.ok(rmLines.length >= 3 && rmLines.every((l) => typeof l['uml/loss'] === 'number' && typeof l.loss === 'number'));
  assert.equal(lines.map((l) => l.step), Array.from({ length: lines.length }, (_, i) => i + 1));
  assert.equal(ppoLines.map((l) => l['ppo/step']), [1, 2, 3, 4]);
  assert.equal(readJson(join(D, 'uml', 'run.json')).config.variant, 'uml');
});

test('farm rlp --variant spg with the farm\'s checker, reusing the uml run\'s samples; synthetic pairs written', () => {
  const s = ok(farm([...rlpArgs('spg'), '--samples', join(D, 'uml', 'samples.json'), '--equivalence', 'farm', '--world-seed', '3', '--min-confidence', '0.25',
    '--output-dir', join(D, 'spg'), '--json']));
  assert.not.ok(existsSync(join(D, 'spg', 'samples.json')), 'sampling skipped');
  const rs = s.reward_model_summary;
  assert.ok(rs['spg/instructions'] === 16 && rs['spg/pairs'] >= 0 && rs['spg/confidence_mean'] >= 0.25, JSON.stringify(rs));
  if (rs['spg/pairs'] > 0) assert.is(readJson(join(D, 'spg', 'synthetic_preferences.json')).length, rs['spg/pairs']);
  assert.is(readJson(join(D, 'spg', 'run.json')).config.equivalence, 'farm:3');
  const r = farm([...rlpArgs('spg'), '--output-dir', join(D, 'spg-no-rm')].filter((x, i, a) => x !== '--reward-model' && a[i - 1] !== '--reward-model'));
  assert.is(r.code, 1);
  assert.match(r.err, /--variant spg needs --reward-model/);
  const u = farm([...rlpArgs('uml'), '--equivalence', 'farm', '--output-dir', join(D, 'uml-eq')]);
  assert.is(u.code, 1);
  assert.match(u.err, /--equivalence serves --variant spg only/);
});

test('farm rlp killed inside its PPO resumes there: samples and reward model kept, identical metrics and weights', () => {
  const args = [...rlpArgs('uml'), '--save-steps', '2'];
  const full = join(D, 'uml-full'), dir = join(D, 'uml-killed');
  ok(farm([...args, '--output-dir', full, '--json']));
  const rmSteps = readJson(join(full, 'reward-model', 'rlp-reward-model.json')).steps;
  const k = farm([...args, '--output-dir', dir], { FARM_KILL_AFTER_STEP: String(rmSteps + 3) });
  assert.is(k.signal, 'SIGKILL', k.err);
  const samplesBefore = readFileSync(join(dir, 'samples.json'));
  ok(farm([...args, '--output-dir', dir, '--resume', '--json']));
  const run = readJson(join(dir, 'run.json'));
  assert.equal(run.resumes.map((r: { fromStep: number }) => r.fromStep), [rmSteps + 2]);
  assert.ok(readFileSync(join(dir, 'samples.json')).equals(samplesBefore));
  assert.equal(timeless(readLines(join(dir, 'metrics.jsonl'))), timeless(readLines(join(full, 'metrics.jsonl'))));
  assert.ok(readFileSync(join(dir, 'model', 'model.safetensors')).equals(readFileSync(join(full, 'model', 'model.safetensors'))));
});

test.run();
