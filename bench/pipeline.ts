// The quick pipeline (`npm start`) end to end: wall time against DESIGN.md's 10-minute target, and what it
// measures (win-rates by the simulated pool and the human panel, gold quality) so runs can be compared.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runQuickPipeline } from '../ts/methods/pipeline.ts';
import { emit } from './_lib.ts';

const out = mkdtempSync(join(tmpdir(), 'farm-bench-pipeline-'));
try {
  const r = await runQuickPipeline({ outDir: out, seed: 1, threads: 2 });
  const config = { preset: 'quick', seed: 1, threads: 2, sftSteps: r.sft.steps };
  emit({ bench: 'pipeline', figure: 'quick_pipeline_s', value: r.seconds, unit: 's', config,
    reference: { name: 'target', value: 600, source: 'DESIGN.md section 7: the quick pipeline under 10 minutes on 2 cores' } });
  emit({ bench: 'pipeline', figure: 'sft_s', value: r.sft.seconds, unit: 's', config });
  if (r.rewardModel) emit({ bench: 'pipeline', figure: 'reward_model_panel_agreement', value: r.rewardModel.heldOutAgreementWithPanel, unit: 'fraction', config,
    reference: { name: 'AlpacaFarm simulated pool vs human majority', value: 0.65, source: '../shared/reference/alpacafarm.md' } });
  for (const e of r.evaluations)
    emit({ bench: 'pipeline', figure: `win_rate_${e.method}_${e.annotator}`, value: e.win_rate, unit: '%', config: { ...config, standard_error: e.standard_error, n: e.n_total } });
  for (const [k, v] of Object.entries(r.gold)) emit({ bench: 'pipeline', figure: `gold_${k}`, value: v, unit: 'gold total', config });
} finally { rmSync(out, { recursive: true, force: true }); }
