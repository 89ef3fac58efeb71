// The quick pipeline (`npm start` = `farm run --preset quick`) end to end from an empty folder: wall time
// against DESIGN.md's 10-minute target, and its leaderboard (win-rates by the evaluation pool and the panel,
// gold) as figures, so runs can be compared. --preset NAME and --seed S pick another preset or world seed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../ts/engine/index.ts';
import { SILENT } from '../ts/methods/jobs.ts';
import { runFarm } from '../ts/experiments/run.ts';
import { emit, flag } from './_lib.ts';

const presetArg = process.argv.indexOf('--preset');
const preset = presetArg >= 0 ? process.argv[presetArg + 1] : 'quick';
const seed = flag('seed', 1);
const out = mkdtempSync(join(tmpdir(), 'farm-bench-pipeline-'));
try {
  const engine = await Engine.create({ threads: 2, seed });
  const r = await runFarm({ preset, seed, outputDir: out, engine, progress: SILENT });
  const config = { preset, seed, threads: 2, stages: r.stages.length };
  emit({ bench: 'pipeline', figure: `${preset}_pipeline_s`, value: r.seconds, unit: 's', config,
    reference: { name: 'target', value: 600, source: 'DESIGN.md section 7: the quick pipeline under 10 minutes on 2 cores' } });
  for (const s of r.stages) emit({ bench: 'pipeline', figure: `stage_s/${s.name}`, value: s.seconds, unit: 's', config });
  if (r.rewardModel) emit({ bench: 'pipeline', figure: 'reward_model_heldout_accuracy', value: Number(r.rewardModel.eval_accuracy), unit: 'fraction', config });
  for (const row of r.leaderboard.filter((x) => x.method !== 'reference')) {
    for (const ev of ['pool', 'panel'])
      emit({ bench: 'pipeline', figure: `win_rate_${row.method}_${ev}`, value: row.evaluations[ev].win_rate, unit: '%', config: { ...config, standard_error: row.evaluations[ev].standard_error, n: row.evaluations[ev].n },
        reference: row.paper[ev === 'pool' ? 'simulated' : 'human'] === null ? null : { name: `AlpacaFarm ${ev === 'pool' ? 'simulated' : 'human'} eval`, value: row.paper[ev === 'pool' ? 'simulated' : 'human']!, source: '../shared/reference/alpacafarm.md' } });
    emit({ bench: 'pipeline', figure: `gold_${row.method}`, value: row.gold.mean, unit: 'gold total', config: { ...config, standard_error: row.gold.standard_error } });
  }
} finally { rmSync(out, { recursive: true, force: true }); }
