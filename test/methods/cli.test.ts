// Every method command end to end on tiny inputs (`farm sft`, `pairs`, `reward-model`, `score`, `best-of-n`,
// `expert-iteration`, `feedme`, `reward-conditioning`, `ppo`, `quark`, `dpo`), each writing one run folder
// (run.json, metrics.jsonl, model/, outputs); then bad inputs, each refused before any work starts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer, trainBpe } from '../../ts/tokenizer/index.ts';
import { farm, readJson, readLines, summary, TINY, writeSplits } from './cli-helpers.ts';

const D = mkdtempSync(join(tmpdir(), 'farm-methods-cli-'));
const F = writeSplits(join(D, 'data'));
const gen = ['--eval-max-new-tokens', '12'];
const ok = (r: ReturnType<typeof farm>) => { assert.is(r.code, 0, `exit ${r.code}\n${r.err}`); return summary(r); };

test('farm sft: a new model from demonstrations, run.json, metrics.jsonl, model/ and model_outputs.json', () => {
  const s = ok(farm(['sft', '--data', F.sft, '--architecture', JSON.stringify(TINY), '--vocab-size', '400', '--epochs', '2', '--lr', '5e-3',
    '--output-dir', join(D, 'sft'), '--eval-data', F.eval, ...gen, '--seed', '3', '--json']));
  assert.is(s.steps, 20);
  assert.ok(s.final_loss < 6);
  const run = readJson(join(D, 'sft', 'run.json'));
  assert.is(run.command, 'sft');
  assert.is(run.status, 'completed');
  assert.is(run.seed, 3);
  assert.equal([run.config.method.lr, run.config.method.epochs, run.config.method.seed], [5e-3, 2, 3]);
  assert.match(run.inputs.data.sha256, /^[0-9a-f]{64}$/);
  assert.ok(run.versions.node && run.versions['alpacafarm-ts'] && run.versions.engine);
  const lines = readLines(join(D, 'sft', 'metrics.jsonl'));
  assert.equal(lines.map((l) => l.step), Array.from({ length: 20 }, (_, i) => i + 1));
  for (const k of ['loss', 'grad_norm', 'learning_rate', 'epoch']) assert.type(lines[0][k], 'number', k);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(existsSync(join(D, 'sft', 'model', f)), f);
  const outs = readJson(join(D, 'sft', 'model_outputs.json'));
  assert.is(outs.length, 8);
  assert.equal(Object.keys(outs[0]).sort(), ['dataset', 'generator', 'input', 'instruction', 'output', 'world_seed']);
  assert.is(outs[0].generator, 'sft');
});

test('farm pairs, farm annotate, farm reward-model, farm score', () => {
  const p = ok(farm(['pairs', '--model', join(D, 'sft'), '--data', F.preference, '--max-new-tokens', '12', '--output-dir', join(D, 'pairs'), '--json']));
  assert.is(p.pairs, 40);
  const pairs = readJson(join(D, 'pairs', 'pairs.json'));
  assert.equal(Object.keys(pairs[0]).sort(), ['dataset', 'generator_1', 'generator_2', 'input', 'instruction', 'output_1', 'output_2', 'world_seed']);
  const a = farm(['annotate', '--pairs', join(D, 'pairs', 'pairs.json'), '--annotator', 'pool:train', '--world-seed', '3', '--out', join(D, 'prefs.jsonl'), '--json']);
  assert.is(a.code, 0, a.err);
  const rm = ok(farm(['reward-model', '--model', join(D, 'sft'), '--preferences', join(D, 'prefs.jsonl'), '--eval-preferences', join(D, 'prefs.jsonl'),
    '--epochs', '1', '--batch-size', '8', '--output-dir', join(D, 'rm'), '--json']));
  assert.ok(rm.steps >= 3 && rm.eval_accuracy >= 0 && rm.eval_accuracy <= 1);
  const line = readLines(join(D, 'rm', 'metrics.jsonl')).at(-1);
  for (const k of ['loss', 'accuracy', 'rewards/chosen', 'rewards/rejected', 'eval/accuracy']) assert.type(line[k], 'number', k);
  const s = ok(farm(['score', '--reward-model', join(D, 'rm'), '--data', join(D, 'prefs.jsonl'), '--output-dir', join(D, 'score'), '--json']));
  assert.ok(s.agreement_with_labels >= 0 && s.labelled > 0);
  const scored = readJson(join(D, 'score', 'scored.json'));
  assert.type(scored[0].reward_1, 'number');
});

test('farm best-of-n and farm expert-iteration', () => {
  const b = ok(farm(['best-of-n', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.eval, '--n', '3', '--max-new-tokens', '12', '--output-dir', join(D, 'bon'), '--json']));
  assert.is(b['bon/n'], 3);
  assert.ok(b['bon/reward_best'] >= b['bon/reward_mean']);
  assert.is(readJson(join(D, 'bon', 'model_outputs.json')).length, 8);
  const e = ok(farm(['expert-iteration', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.unlabeled, '--n', '2', '--max-new-tokens', '12',
    '--epochs', '1', '--batch-size', '8', '--output-dir', join(D, 'ei'), '--eval-data', F.eval, ...gen, '--json']));
  assert.is(e.rounds.length, 1);
  assert.is(e.rounds[0].kept, 16);
  assert.ok(existsSync(join(D, 'ei', 'model', 'model.safetensors')));
});

test('farm feedme and farm reward-conditioning (control tokens in the saved tokenizer, conditioning.json)', () => {
  const f = ok(farm(['feedme', '--model', join(D, 'sft'), '--preferences', join(D, 'prefs.jsonl'), '--epochs', '1', '--batch-size', '8', '--output-dir', join(D, 'feedme'),
    '--eval-data', F.eval, ...gen, '--json']));
  assert.ok(f.used_pairs > 20 && f.steps > 0);
  const r = ok(farm(['reward-conditioning', '--model', join(D, 'sft'), '--preferences', join(D, 'prefs.jsonl'), '--epochs', '1', '--batch-size', '8', '--output-dir', join(D, 'rc'),
    '--eval-data', F.eval, ...gen, '--json']));
  assert.ok(r.used_pairs > 20);
  const cond = readJson(join(D, 'rc', 'model', 'conditioning.json'));
  assert.equal(cond, { method: 'reward-conditioning', tokens: ['<|reward_good|>', '<|reward_bad|>'], generateWith: '<|reward_good|>' });
  const tok = readJson(join(D, 'rc', 'model', 'tokenizer.json'));
  const added = tok.added_tokens.filter((t: { content: string }) => t.content.startsWith('<|reward_'));
  assert.is(added.length, 2);
  assert.ok(added.every((t: { special: boolean }) => t.special));
  assert.is(readJson(join(D, 'rc', 'model', 'config.json')).vocab_size, readJson(join(D, 'sft', 'model', 'config.json')).vocab_size + 2);
  assert.is(readJson(join(D, 'rc', 'model_outputs.json')).length, 8);
});

test('farm ppo, farm quark (both variants) and farm dpo', () => {
  const p = ok(farm(['ppo', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.unlabeled, '--steps', '2', '--rollout-batch-size', '8', '--max-new-tokens', '12',
    '--learning-rate', '1e-4', '--init-kl-coef', '0.05', '--output-dir', join(D, 'ppo'), '--eval-data', F.eval, ...gen, '--json']));
  assert.is(p.steps, 2);
  for (const k of ['objective/kl', 'objective/scores', 'policy/clipfrac_avg', 'loss/value_avg', 'val/ratio']) assert.type(p.final[k], 'number', k);
  const q = ok(farm(['quark', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.unlabeled, '--steps', '2', '--rollout-batch-size', '8', '--batch-size', '8',
    '--max-new-tokens', '12', '--output-dir', join(D, 'quark'), '--json']));
  assert.is(q.pool, 16);
  assert.ok(!existsSync(join(D, 'quark', 'model', 'conditioning.json')), 'best quantile only: no tokens');
  ok(farm(['quark', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.unlabeled, '--steps', '2', '--rollout-batch-size', '8', '--batch-size', '8',
    '--max-new-tokens', '12', '--best-quantile-only', 'false', '--output-dir', join(D, 'quark-full'), '--eval-data', F.eval, ...gen, '--json']));
  assert.is(readJson(join(D, 'quark-full', 'model', 'conditioning.json')).generateWith, '<|quark_q0|>');
  const d = ok(farm(['dpo', '--model', join(D, 'sft'), '--preferences', join(D, 'prefs.jsonl'), '--eval-preferences', join(D, 'prefs.jsonl'), '--epochs', '1', '--batch-size', '8',
    '--lr', '3e-4', '--output-dir', join(D, 'dpo'), '--json']));
  assert.ok(d.steps > 0 && d.eval.before.loss > 0.69 && d.eval.before.loss < 0.7);
  const line = readLines(join(D, 'dpo', 'metrics.jsonl'))[0];
  for (const k of ['loss', 'rewards/chosen', 'rewards/accuracies', 'rewards/margins', 'logps/chosen', 'grad_norm', 'learning_rate']) assert.type(line[k], 'number', k);
});

// ---- bad input: clear errors, nothing written

function refused(args: string[], pattern: RegExp, outputDir: string) {
  const r = farm([...args, '--output-dir', outputDir]);
  assert.is(r.code, 1, `expected a refusal, got exit ${r.code}\n${r.out}${r.err}`);
  assert.match(r.err, pattern);
  assert.not.ok(existsSync(outputDir), `${outputDir} must not be created`);
}

test('a reward model whose tokenizer differs from the policy\'s is refused', () => {
  cpSync(join(D, 'rm', 'model'), join(D, 'rm-other'), { recursive: true });
  trainBpe(['a completely different corpus of words and more words'.repeat(40)], { vocabSize: 300 }).save(join(D, 'rm-other', 'tokenizer.json'));
  for (const cmd of ['ppo', 'best-of-n', 'quark'])
    refused([cmd, '--model', join(D, 'sft'), '--reward-model', join(D, 'rm-other'), '--data', F.unlabeled], /different tokenizer/, join(D, `x-${cmd}`));
});

test('a preference file without a usable pair is refused', () => {
  const prefs = readLines(join(D, 'prefs.jsonl')).map((p) => ({ ...p, preference: 0 }));
  writeFileSync(join(D, 'draws.jsonl'), prefs.map((p) => JSON.stringify(p)).join('\n'));
  for (const cmd of ['dpo', 'reward-model', 'feedme', 'reward-conditioning'])
    refused([cmd, '--model', join(D, 'sft'), '--preferences', join(D, 'draws.jsonl')], /no usable pair among 40 records \(40 draws/, join(D, `x-${cmd}`));
});

test('a missing or mismatched model folder is refused', () => {
  refused(['dpo', '--model', join(D, 'nope'), '--preferences', join(D, 'prefs.jsonl')], /--model .*nope: no such folder/, join(D, 'x1'));
  cpSync(join(D, 'sft', 'model'), join(D, 'half'), { recursive: true });
  rmSync(join(D, 'half', 'model.safetensors'));
  refused(['dpo', '--model', join(D, 'half'), '--preferences', join(D, 'prefs.jsonl')], /not a model folder, missing model.safetensors/, join(D, 'x2'));
  cpSync(join(D, 'sft', 'model'), join(D, 'big-tok'), { recursive: true });
  Tokenizer.load(join(D, 'sft', 'model')).withAddedTokens(Array.from({ length: 20 }, (_, i) => `<|extra${i}|>`)).save(join(D, 'big-tok', 'tokenizer.json'));
  refused(['dpo', '--model', join(D, 'big-tok'), '--preferences', join(D, 'prefs.jsonl')], /tokenizer has \d+ tokens but the model's vocab_size is \d+/, join(D, 'x3'));
  refused(['ppo', '--model', join(D, 'sft'), '--reward-model', join(D, 'sft'), '--data', F.unlabeled], /not a reward model/, join(D, 'x4'));
});

test('unknown config keys are errors, with a suggestion; TRL-style snake_case keys are accepted', () => {
  writeFileSync(join(D, 'typo.json'), JSON.stringify({ learning_rat: 1e-4 }));
  refused(['ppo', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.unlabeled, '--config', join(D, 'typo.json')],
    /PPO config has no key "learning_rat"; did you mean "learningRate"\?/, join(D, 'x5'));
  writeFileSync(join(D, 'snake.json'), JSON.stringify({ init_kl_coef: 0.1, steps: 1, rollout_batch_size: 4, max_new_tokens: 8 }));
  const s = ok(farm(['ppo', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.unlabeled, '--config', join(D, 'snake.json'), '--output-dir', join(D, 'snake'), '--json']));
  assert.is(s.steps, 1);
  assert.is(readJson(join(D, 'snake', 'run.json')).config.method.initKlCoef, 0.1);
  refused(['ppo', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.unlabeled, '--steps', 'abc'], /--steps <value>.*abc.*invalid|expects a number/, join(D, 'x6'));
  refused(['ppo', '--model', join(D, 'sft'), '--reward-model', join(D, 'rm'), '--data', F.unlabeled, '--steps', '0'], /PPO config steps must be an integer >= 1, got 0/, join(D, 'x7'));
});

test('an existing run folder needs --resume (same settings) or --force', () => {
  const args = ['dpo', '--model', join(D, 'sft'), '--preferences', join(D, 'prefs.jsonl'), '--eval-preferences', join(D, 'prefs.jsonl'), '--epochs', '1', '--batch-size', '8',
    '--lr', '3e-4', '--output-dir', join(D, 'dpo')];
  const again = farm(args);
  assert.is(again.code, 1);
  assert.match(again.err, /already holds a dpo run; pass --resume to continue it or --force to start over/);
  const changed = farm([...args, '--resume', '--beta', '0.5']);
  assert.is(changed.code, 1);
  assert.match(changed.err, /cannot resume .*config\.method\.beta: 0\.1 -> 0\.5/s);
  const same = farm([...args, '--resume', '--json']);
  assert.is(same.code, 0, same.err);
  assert.ok(readdirSync(join(D, 'dpo')).includes('run.json'));
});

test.after(() => rmSync(D, { recursive: true, force: true }));
test.run();
