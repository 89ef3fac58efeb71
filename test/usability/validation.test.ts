// Issue 14, item 8: every option of every command is validated before any work. Each bad invocation below
// must fail with a message naming what was wrong, quickly, and without writing anything (no run folder,
// data or output file) in the folder it runs in.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { farm, farmData, writeJsonl } from './helpers.ts';

const base = mkdtempSync(join(tmpdir(), 'farm-validate-'));
test.after(() => rmSync(base, { recursive: true, force: true }));
const inputs = join(base, 'inputs');
const data = farmData(inputs, 1);
const prefs = writeJsonl(join(inputs, 'prefs.jsonl'), data.splits.preference.slice(0, 10).map((r) => ({ instruction: r.instruction, input: r.input, output_1: r.output, output_2: `${r.output}!`, preference: 1 })));
const pairs = writeJsonl(join(inputs, 'pairs.jsonl'), data.splits.preference.slice(0, 10).map((r) => ({ instruction: r.instruction, input: r.input, output_1: r.output, output_2: `${r.output}!` })));
const noModel = join(inputs, 'no-model');
mkdirSync(noModel);
const cwd = join(base, 'cwd');
mkdirSync(cwd);

const sft = data.file('sft'), evalSplit = data.file('eval');
// [command line, what the error must say]
const CASES: Array<[string[], RegExp]> = [
  [['run', '--seed', 'abc'], /--seed must be an integer >= 0/],
  [['run', '--preset', 'huge'], /--preset.*Allowed choices are quick, standard, paper, smoke/],
  [['run', '--methods', 'ppo,bogus'], /unknown method "bogus"/],
  [['run', '--only', 'no-such-stage'], /no stage "no-such-stage"; stages: data, tokenizer/],
  [['validate', '--preset', 'smoke', '--only', 'nope'], /no stage "nope"/],
  [['run', '--threads', '0'], /--threads must be an integer >= 1/],
  [['quickstart', '--logging-steps', '-1'], /--logging-steps must be an integer >= 1/],
  // the cases: quickstart is `farm run --preset quick` now, whose sizes come from the preset, so
  // these flags are refused before any data or tokenizer is written (they once failed late or were clamped)
  [['quickstart', '--epochs', 'abc'], /unknown option '--epochs'/],
  [['quickstart', '--pairs', '-1'], /unknown option '--pairs'/],
  [['quickstart', '--best-of', '0'], /unknown option '--best-of'/],
  [['validate', '--preset', 'paper'], /Allowed choices are quick, standard, smoke/],
  [['validate', '--methods', 'sft,nope'], /unknown method "nope"/],
  [['sft', '--data', join(inputs, 'missing.jsonl')], /--data .*missing\.jsonl: no such file/],
  [['sft', '--data', sft, '--epochs', 'abc'], /epochs expects a number/],
  [['sft', '--data', sft, '--epochs', '0'], /epochs must be an integer >= 1/],
  [['sft', '--data', sft, '--lr', '-1'], /lr must be a number in \[0/],
  [['sft', '--data', sft, '--architecture', 'huge'], /--architecture huge: not a known size/],
  [['sft', '--data', sft, '--vocab-size', '10'], /--vocab-size must be an integer >= 300/],
  [['sft', '--data', sft, '--eval-data', join(inputs, 'nope.jsonl')], /--eval-data .*nope\.jsonl: no such file/],
  [['sft', '--data', sft, '--eval-temperature', '-1'], /temperature must be a number in \[0/],
  [['sft', '--data', sft, '--config', join(inputs, 'nope.json')], /--config .*nope\.json: .*(ENOENT|no such file)/],
  [['sft', '--data', sft, '--output-dir', evalSplit], /--output-dir .*eval\.jsonl.* (is a file|not a folder)/],
  [['sft', '--data', sft, '--save-steps', '-3'], /--save-steps must be an integer >= 0/],
  [['pairs', '--model', noModel, '--data', evalSplit], /--model .*no-model: not a model folder/],
  [['pairs', '--model', noModel, '--data', evalSplit, '--temperature', 'hot'], /temperature expects a number/],
  [['reward-model', '--model', noModel, '--preferences', prefs, '--epochs', '-1'], /epochs must be an integer >= 1/],
  [['best-of-n', '--model', noModel, '--reward-model', noModel, '--data', evalSplit, '--n', '0'], /n must be an integer >= 1/],
  [['ppo', '--model', noModel, '--reward-model', noModel, '--data', evalSplit, '--init-kl-coef', '-1'], /initKlCoef must be/],
  [['dpo', '--model', noModel, '--preferences', prefs, '--beta', '0'], /beta must be/],
  [['quark', '--model', noModel, '--reward-model', noModel, '--data', evalSplit, '--num-quantiles', '0'], /numQuantiles must be/],
  [['treebon', '--model', noModel, '--reward-model', noModel, '--data', evalSplit], /--partial-reward implicit-dpo needs --dpo-model/],
  [['rlp', '--variant', 'xyz', '--model', noModel, '--ppo-model', noModel, '--preferences', prefs, '--data', evalSplit], /--variant must be uml or spg/],
  [['rlp', '--variant', 'spg', '--model', noModel, '--ppo-model', noModel, '--preferences', prefs, '--data', evalSplit, '--equivalence', 'farm', '--world-seed', '4'], /--world-seed 4 disagrees/],
  [['generate', '--model', noModel, '--prompt', 'x', '--n', '0'], /--n must be an integer >= 1/],
  [['generate', '--model', noModel, '--prompt', 'x', '--out', 'x.txt'], /--out x\.txt: give a \.json file/],
  [['data', 'generate', '--panel-pairs', '-1'], /--panel-pairs must be an integer >= 0/],
  [['data', 'generate', '--format', 'csv'], /Allowed choices are jsonl, pb, both/],
  [['data', 'sample', '--family', 'nope'], /unknown task family "nope"/],
  [['data', 'calibrate', '--pairs', '0'], /--pairs must be an integer >= 1/],
  [['data', 'stats', join(inputs, 'missing.jsonl')], /missing\.jsonl.*no such file/],
  [['annotate', '--pairs', pairs, '--annotator', 'pool', '--out', 'prefs.txt'], /--out prefs\.txt: give a \.json file/],
  [['annotate', '--pairs', pairs, '--annotator', 'pool', '--out', 'p.jsonl', '--seed', '-2'], /--seed must be an integer >= 0/],
  [['annotate', '--pairs', pairs, '--annotator', 'nope', '--out', 'p.jsonl'], /unknown annotator "nope"/],
  [['annotate', '--pairs', pairs, '--annotator', 'pool', '--out', join('no-such-dir', 'p.jsonl')], /folder .*no-such-dir does not exist/],
  [['evaluate', '--model-outputs', evalSplit, '--reference-outputs', evalSplit, '--annotator', 'pool', '--lc-variant', 'nope'], /--lc-variant must be auto or one of/],
  [['evaluate', '--model-outputs', join(inputs, 'missing.json'), '--annotator', 'pool'], /--model-outputs .*missing\.json: no such file/],
  [['evaluate', '--model-outputs', evalSplit, '--reference-outputs', evalSplit, '--annotator', 'pool', '--output-dir', 'o', '--max-instances', '0'], /--max-instances must be an integer >= 1/],
  [['judges', 'analyze', '--annotator', 'pool', '--runs', '0'], /--runs must be an integer >= 1/],
  [['judges', 'analyze', '--annotator', 'pool', '--references', join(inputs, 'refs-missing.json')], /refs-missing\.json.*ENOENT|no such file/],
  [['judges', 'analyze', '--annotator', 'pool', '--csv', join('nope', 'x.csv')], /folder .*nope does not exist/],
  [['leaderboard', 'show', 'missing.csv'], /leaderboard missing\.csv: no such file/],
  [['leaderboard', 'show', evalSplit, '--format', 'xml'], /--format must be markdown, csv or json/],
  [['leaderboard', 'build', 'board.csv', join(inputs, 'missing.json'), '--annotator', 'pool'], /missing\.json: no such file/],
  [['leaderboard', 'add', 'board.csv', join(inputs, 'missing.json')], /missing\.json: no such file/],
  [['leaderboard', 'compare', 'a.csv', 'b.csv'], /a\.csv: no such file/],
  [['profile', 'nope'], /unknown workload "nope"; known: train-step/],
  [['profile', 'train-step', '--reps', '0'], /--reps must be an integer >= 1/],
];

test('bad options fail before any work, naming the problem, writing nothing', async () => {
  const home = process.cwd();
  process.chdir(cwd);
  const problems: string[] = [];
  try {
    for (const [args, want] of CASES) {
      const t0 = performance.now();
      if (process.env.FARM_TEST_VERBOSE) process.stdout.write(`case: ${args.join(' ')}\n`);
      const r = await farm(args);
      const ms = performance.now() - t0;
      const left = readdirSync(cwd, { recursive: true }).map(String);
      if (r.code === 0) problems.push(`farm ${args.join(' ')}: exit 0`);
      else if (!want.test(r.err)) problems.push(`farm ${args.join(' ')}: error ${JSON.stringify(r.err.trim().split('\n').slice(-3).join(' | '))} does not match ${want}`);
      if (left.length) problems.push(`farm ${args.join(' ')}: wrote ${left.join(', ')}`);
      if (ms > 5000) problems.push(`farm ${args.join(' ')}: took ${Math.round(ms)} ms before failing`);
      for (const f of readdirSync(cwd)) rmSync(join(cwd, f), { recursive: true, force: true });  // (not cwd itself: the process is in it)
    }
  } finally {
    process.chdir(home);
  }
  assert.equal(problems, [], `\n${problems.join('\n')}`);
  void relative;
});

test.run();
