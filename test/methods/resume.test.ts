// Kill and resume: a run SIGKILLed after step k (FARM_KILL_AFTER_STEP, a real SIGKILL of the process) and
// continued with --resume ends with the same metrics.jsonl (time fields aside) and the same model bytes as an
// uninterrupted run, for SFT, the reward model, PPO and DPO. And a NaN reward stops PPO with a message naming
// the step and the quantity, leaving the last checkpoint loadable.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../ts/engine/index.ts';
import { runPairs, runRewardModel, runSft, loadModelFolder } from '../../ts/methods/jobs.ts';
import { ppo } from '../../ts/methods/ppo.ts';
import { Checkpointer, latestCheckpoint, checkpointPath } from '../../ts/methods/checkpoint.ts';
import { NonFiniteError } from '../../ts/methods/common.ts';
import { createAnnotator } from '../../ts/feedback/index.ts';
import { createWorld } from '../../ts/world/index.ts';
import { farm, readJson, readLines, timeless, TINY, writeSplits } from './cli-helpers.ts';

const D = mkdtempSync(join(tmpdir(), 'farm-resume-'));
const F = writeSplits(join(D, 'data'));
let engine: Engine;

test.before(async () => {
  // the base models, built in-process with the same jobs the commands call
  engine = await Engine.create({ threads: 2, seed: 3 });
  await runSft({ outputDir: join(D, 'sft'), seed: 3, engine }, { data: F.sft, architecture: TINY, vocabSize: 400, config: { epochs: 2, lr: 5e-3 } });
  await runPairs({ outputDir: join(D, 'pairs'), seed: 3, engine }, { model: join(D, 'sft'), data: F.preference, generation: { maxNewTokens: 12 } });
  const pairs = readJson(join(D, 'pairs', 'pairs.json'));
  const labels = await (await createAnnotator('pool:train', { world: createWorld({ seed: 3 }), seed: 3 })).annotate(pairs.map(({ instruction, input, output_1, output_2 }: Record<string, string>) => ({ instruction, input, output_1, output_2 })));
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(D, 'prefs.json'), JSON.stringify(labels));
  await runRewardModel({ outputDir: join(D, 'rm'), seed: 3, engine }, { model: join(D, 'sft'), preferences: join(D, 'prefs.json'), config: { epochs: 1, batchSize: 8 } });
});

/** Uninterrupted vs killed after step k then resumed: same metrics lines and the same final model bytes. */
function killAndResume(name: string, args: string[], k: number) {
  const full = farm([...args, '--save-steps', '2', '--output-dir', join(D, `${name}-full`)]);
  assert.is(full.code, 0, full.err);
  const dir = join(D, `${name}-killed`);
  const killed = farm([...args, '--save-steps', '2', '--output-dir', dir], { FARM_KILL_AFTER_STEP: String(k) });
  assert.is(killed.signal, 'SIGKILL', `${name}: the run should have been killed after step ${k} (exit ${killed.code})\n${killed.err}`);
  assert.is(readJson(join(dir, 'run.json')).status, 'running', 'killed mid-run');
  assert.is(latestCheckpoint(join(dir, 'checkpoints')), k - (k % 2), 'the last checkpoint before the kill');
  assert.not.ok(existsSync(join(dir, 'model')));
  const resumed = farm([...args, '--save-steps', '2', '--output-dir', dir, '--resume']);
  assert.is(resumed.code, 0, resumed.err);
  const run = readJson(join(dir, 'run.json'));
  assert.is(run.status, 'completed');
  assert.equal(run.resumes.map((r: { fromStep: number }) => r.fromStep), [k - (k % 2)]);
  const a = timeless(readLines(join(D, `${name}-full`, 'metrics.jsonl'))), b = timeless(readLines(join(dir, 'metrics.jsonl')));
  assert.ok(a.length > k, `${name}: ${a.length} steps, more than ${k}`);
  assert.equal(b, a, `${name}: metrics after resume differ from the uninterrupted run`);
  assert.ok(readFileSync(join(dir, 'model', 'model.safetensors')).equals(readFileSync(join(D, `${name}-full`, 'model', 'model.safetensors'))), `${name}: final weights differ`);
}

test('SFT: kill after step 5, resume from checkpoint 4, identical to the uninterrupted run', () => {
  killAndResume('sft', ['sft', '--model', join(D, 'sft'), '--data', F.sft, '--epochs', '1', '--batch-size', '16', '--lr', '1e-3', '--seed', '5'], 5);
});

test('reward model: kill after step 3, resume, identical', () => {
  killAndResume('rm', ['reward-model', '--model', join(D, 'sft'), '--preferences', join(D, 'prefs.json'), '--epochs', '2', '--batch-size', '8'], 3);
});

test('PPO (policy, value model, both optimizers, KL controller, prompt stream): kill after step 3, resume, identical', () => {
  killAndResume('ppo', ['ppo', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.unlabeled, '--steps', '6', '--rollout-batch-size', '6',
    '--max-new-tokens', '10', '--learning-rate', '1e-3', '--adaptive-kl', 'true', '--init-kl-coef', '0.05', '--kl-target', '0.5', '--kl-horizon', '20'], 3);
  const kl = readLines(join(D, 'ppo-full', 'metrics.jsonl')).map((l) => l['objective/kl_coef']);
  assert.ok(new Set(kl).size > 2, `the adaptive KL coefficient moved across the resume point: ${kl}`);
});

test('DPO: kill after step 3, resume, identical', () => {
  killAndResume('dpo', ['dpo', '--model', join(D, 'sft'), '--preferences', join(D, 'prefs.json'), '--epochs', '2', '--batch-size', '8', '--lr', '3e-4'], 3);
});

test('a NaN reward stops PPO naming the step and the quantity; the last checkpoint loads', async () => {
  const p = await loadModelFolder(engine, join(D, 'sft'), '--model', 'policy');
  const prompts = readLines(F.unlabeled);
  const dir = join(D, 'nan-ckpt');
  let calls = 0;
  const reward = (c: { response: number[] }[]) => { calls++; return c.map((x, i) => (calls === 3 && i === 2 ? NaN : x.response.length / 10)); };
  const err = await ppo(engine, { policy: p.model, reward, tokenizer: p.tokenizer, prompts, config: { steps: 5, rolloutBatchSize: 4, maxNewTokens: 8, learningRate: 1e-4, initKlCoef: 0.05 },
    value: engine.createModel({ ...p.model.config, lm_head: false, scalar_head: true }), checkpoint: { dir, every: 1 } }).then(() => null, (e) => e);
  assert.instance(err, NonFiniteError);
  assert.is(err.message, 'PPO step 3: reward is not a finite number (NaN, candidate 2); training stopped, the last checkpoint is kept');
  assert.equal([err.step, err.quantity], [3, 'reward']);
  assert.is(latestCheckpoint(dir), 2);
  const loaded = await engine.loadModel(join(checkpointPath(dir, 2), 'policy'));
  assert.ok(loaded.parameters().every((x) => x.data.every(Number.isFinite)));
  const restored = await new Checkpointer(engine, { dir, every: 1, resume: true }, 'PPO').restore({ models: { policy: loaded }, optimizers: {} });
  assert.is(restored?.step, 2);
});

test.after(() => rmSync(D, { recursive: true, force: true }));
test.run();
