// `farm validate` on the smoke preset (seconds): the structure of results.json and its invariants. The same
// stages serve both feedback sources (data, tokenizer, SFT and pairs run once), every method is evaluated by
// the pool and the panel, the over-optimization curves start at SFT (KL 0) and best-of-n's reward-model score
// never falls with n; every figure of issue 10 is present.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../ts/engine/index.ts';
import { SILENT } from '../../ts/methods/jobs.ts';
import { METHODS } from '../../ts/experiments/pipeline.ts';
import { runValidate, type ValidateResult } from '../../ts/experiments/validate.ts';

const D = mkdtempSync(join(tmpdir(), 'farm-validate-'));
let r: ValidateResult;

test.before(async () => {
  // every method, TreeBoN and RLP too (the default is the paper's eight)
  r = await runValidate({ preset: 'smoke', methods: [...METHODS], outputDir: D, engine: await Engine.create({ threads: 2, seed: 1 }), progress: SILENT });
});

test('both feedback sources share the stages before annotation; every method trained twice and evaluated by pool and panel', () => {
  const names = r.stages.map((s) => s.name);
  for (const shared of ['data', 'tokenizer', 'sft', 'pairs', 'outputs/sft', 'evaluate/sft']) assert.is(names.filter((n) => n === shared).length, 1, shared);
  for (const fb of ['pool-train', 'panel', 'gpt4-careful']) assert.ok(names.includes(`annotate/${fb}`) && names.includes(`reward-model/${fb}`), fb);
  for (const [side, rows] of Object.entries(r.leaderboard)) {
    assert.equal(rows.map((x) => x.method).sort(), [...METHODS, 'reference'].sort(), side);
    for (const row of rows.filter((x) => x.method !== 'reference'))
      for (const ev of ['pool', 'panel']) assert.ok(row.evaluations[ev].win_rate >= 0 && row.evaluations[ev].win_rate <= 100 && row.evaluations[ev].n === 16);
  }
  const sft = (side: 'simulated' | 'human') => r.leaderboard[side].find((x) => x.method === 'sft');
  assert.equal(sft('simulated'), sft('human'), 'SFT learns from no feedback: one row serves both');
  assert.match(r.table, /\| PPO +\|/);
});

test('ranking, agreement and reward-model figures are well-formed', () => {
  assert.equal(r.ranking.methods.length, METHODS.length);
  assert.ok(Number.isNaN(r.ranking.spearman) || (r.ranking.spearman >= -1 && r.ranking.spearman <= 1));
  assert.ok(r.agreement!.pool_panel_agreement > 0 && r.agreement!.pool_panel_agreement <= 1 && r.agreement!.panel_rater_agreement > 0);
  assert.equal(Object.keys(r.rewardModels).sort(), ['gpt4-careful', 'panel', 'pool-train']);
  for (const a of Object.values(r.rewardModels)) assert.ok(a.gold_agreement >= 0 && a.gold_agreement <= 1 && a.pairs_gold > 0);
});

test('over-optimization curves: PPO from step 0 (the SFT model, KL 0) every k steps; best-of-n for each n, its reward-model score non-decreasing', () => {
  for (const fb of ['pool-train', 'gpt4-careful']) {
    const c = r.overoptimization[fb];
    assert.equal(c.ppo.map((p) => p.step), [0, 2, 4]);
    assert.is(c.ppo[0].kl, 0);
    assert.ok(c.ppo.every((p) => p.kl >= 0 && p.pool.n === 8 && p.gold.mean > 0));
    assert.equal(c.bestOfN.map((p) => p.n), [1, 2, 4]);
    for (let i = 1; i < c.bestOfN.length; i++) assert.ok(c.bestOfN[i].rm_score >= c.bestOfN[i - 1].rm_score - 1e-6, `${fb}: ${c.bestOfN.map((p) => p.rm_score)}`);
  }
});

test('results.json holds every figure of issue 10', () => {
  const saved = JSON.parse(readFileSync(join(D, 'results.json'), 'utf8'));
  for (const k of ['rm_gold_agreement', 'rm_panel_agreement', 'sft_panel_winrate', 'ppo_panel_gain', 'bon_panel_gain', 'expiter_panel_gain', 'dpo_panel_gain',
    'ppo_gold_gain', 'spearman_sim_vs_human', 'overopt_peak_step', 'pool_panel_agreement', 'panel_rater_agreement', 'validate_s']) assert.ok(k in saved.figures, k);
  assert.ok(existsSync(join(D, 'leaderboard.md')) && existsSync(join(D, 'pipeline.json')));
});

test.after(() => rmSync(D, { recursive: true, force: true }));
test.run();
