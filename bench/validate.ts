// `farm validate` end to end from an empty folder: the figures of issue 10, each beside its target or the
// paper's number. --preset quick|standard|smoke (default quick), --seed S (world seed), --dir DIR to keep or
// reuse the run folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../ts/engine/index.ts';
import { SILENT } from '../ts/methods/jobs.ts';
import { runValidate } from '../ts/experiments/validate.ts';
import { emit, flag } from './_lib.ts';

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : undefined; };
const preset = arg('preset') ?? 'quick', seed = flag('seed', 1), keep = arg('dir');
const out = keep ?? mkdtempSync(join(tmpdir(), 'farm-bench-validate-'));
const SRC = '../shared/reference/alpacafarm.md';
const REFS: Record<string, { name: string; value: number; source: string }> = {
  rm_gold_agreement: { name: 'target', value: 0.65, source: 'issue 10: reward model vs gold on within-prompt pairs >= 65%' },
  ppo_panel_gain: { name: 'paper (55.1 vs 44.3); target >= 8', value: 10.8, source: SRC },
  bon_panel_gain: { name: 'paper (50.7 vs 44.3); target >= 4', value: 6.4, source: SRC },
  expiter_panel_gain: { name: 'paper (45.7 vs 44.3); target > 0', value: 1.4, source: SRC },
  spearman_sim_vs_human: { name: 'paper; target >= 0.9', value: 0.98, source: SRC },
  pool_panel_agreement: { name: 'AlpacaFarm simulated pool vs human majority', value: 0.65, source: SRC },
  panel_rater_agreement: { name: 'AlpacaFarm human vs human majority', value: 0.66, source: SRC },
  sft_panel_winrate: { name: 'paper SFT 10k, human eval', value: 44.3, source: SRC },
  validate_s: { name: 'target', value: preset === 'standard' ? 3600 : 900, source: 'issue 10: quick <= 15 min, standard <= 60 min' },
};
const UNITS: Record<string, string> = { validate_s: 's', overopt_peak_step: 'step', overopt_peak_step_noise_free: 'step', ppo_gold_gain: 'gold total', ppo_gold_gain_se: 'gold total' };
try {
  const r = await runValidate({ preset, seed, outputDir: out, engine: await Engine.create({ threads: 2, seed }), progress: SILENT });
  const config = { preset, seed, threads: 2, methods: r.ranking.methods.length, evalInstructions: r.leaderboard.simulated[0]?.evaluations.panel.n ?? 0 };
  for (const [k, v] of Object.entries(r.figures)) {
    if (v === null) continue;
    const unit = UNITS[k] ?? (/agreement|spearman|pearson/.test(k) ? 'fraction' : /gain/.test(k) ? 'win-rate points' : /winrate/.test(k) ? '%' : '');
    emit({ bench: 'validate', figure: k, value: v, unit, config: k === 'ppo_gold_gain' ? { ...config, standard_error: r.figures.ppo_gold_gain_se } : config, reference: REFS[k] ?? null });
  }
} finally { if (!keep) rmSync(out, { recursive: true, force: true }); }
