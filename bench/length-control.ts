// Length-controlled win-rate against the published AlpacaEval boards (issue 17's target: within 0.7 points
// on average and 1.5 at most, on models not used to build or test it), and against alpaca_eval's own code
// on the same inputs. One JSON line per figure, the reference beside it.
// Usage: npm run bench -- length-control [--annotations-dir DIR] [--quick]
//   DIR: alpaca_eval's AlpacaEval 2 annotation files, one per model (see bench/_lc.ts); without it only the
//   three test models under ../shared are there, and the held-out figures are skipped.
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  alpacaEval2, estimateDifficulty, gamedWithDifficulty, lengthControlledWinRate, lookupDifficulty, metricsFromAnnotations, readAnnotations,
  Leaderboard, type GamedRows, type ModelAnnotations,
} from '../ts/eval/index.ts';
import { ALPACA_EVAL_CODE_LC, annotationsDir, load, SHARED, split, TEST_MODELS } from './_lc.ts';
import { emit, median } from './_lib.ts';

const BENCH = 'length-control';
const quick = process.argv.includes('--quick');
if (!existsSync(`${SHARED}leaderboards/weighted_alpaca_eval_gpt4_turbo_leaderboard.csv`)) {
  console.error(`${BENCH}: skipped, ${SHARED} is absent (set FARM_ALPACA_EVAL_DATA)`);
  process.exit(0);
}
const dir = annotationsDir();
const { board, build, heldOut, files } = split(dir);
const ae = alpacaEval2();
const r3 = (x: number) => Math.round(x * 1000) / 1000;

function lc(a: ModelAnnotations, gamed: GamedRows, table = ae.difficulty, lookup: 'position' | 'instruction' = 'position'): number {
  const difficulty = lookupDifficulty(table, a.keys, lookup).values;
  return lengthControlledWinRate({ scores: a.scores, referenceLengths: a.referenceLengths, modelLengths: a.modelLengths, difficulty, gamed }).length_controlled_winrate;
}

function errors(models: string[], f: (a: ModelAnnotations) => number) {
  const per: Record<string, [number, number]> = {};
  const abs: number[] = [];
  for (const m of models) {
    const value = f(load(files.get(m)!, m));
    const published = board.get(m)!.length_controlled_winrate!;
    per[m] = [r3(value), r3(published)];
    abs.push(Math.abs(value - published));
  }
  return { mean: abs.reduce((s, v) => s + v, 0) / abs.length, max: Math.max(...abs), per };
}

// 1. the implementation against alpaca_eval's code on the same inputs (bundled surrogate, SOURCE.md)
for (const m of TEST_MODELS) {
  const file = files.get(m) ?? `${SHARED}annotations/${m}__weighted_alpaca_eval_gpt4_turbo.json`;
  const t0 = performance.now();
  const value = lc(load(file, m), ae.surrogate);
  emit({
    bench: BENCH, figure: `lc_vs_alpaca_eval_code:${m}`, value, unit: 'LC points',
    config: { variant: 'length_controlled_v1', gamed: 'bundled surrogate (uncalibrated)', difficulty: 'bundled reconstructed', ms: Math.round(performance.now() - t0) },
    reference: { name: 'alpaca_eval glm_winrate.py on the same inputs', value: ALPACA_EVAL_CODE_LC[m], source: '../shared/data/alpaca_eval/SOURCE.md (tests require |diff| < 0.05)' },
  });
}

// 2. AlpacaEval 1 board: alpaca_eval computes its LC with the same recipe (gamed rows and all)
const ae1 = Leaderboard.load(`${SHARED}leaderboards/alpaca_eval_gpt4_leaderboard.csv`);
for (const m of ['alpaca-7b', 'text_davinci_001']) {
  const r = metricsFromAnnotations(readAnnotations(`${SHARED}annotations/${m}__alpaca_eval_gpt4.json`));
  emit({
    bench: BENCH, figure: `lc_ae1_board:${m}`, value: r.metrics.length_controlled_winrate!, unit: 'LC points',
    config: { variant: r.metrics.length_control!.variant, gamed: 'bundled, calibrated (default)', annotator: 'alpaca_eval_gpt4', reference_model: 'text_davinci_003' },
    reference: { name: 'published AlpacaEval 1 length_controlled_winrate', value: ae1.get(m)!.length_controlled_winrate!, source: 'alpaca_eval_gpt4_leaderboard.csv' },
  });
}

if (heldOut.length === 0) {
  console.error(`${BENCH}: no held-out models in ${dir}; pass --annotations-dir with alpaca_eval's AlpacaEval 2 annotation files for the board figures`);
} else {
  const common = { annotations_dir: dir, test_models_excluded: TEST_MODELS, build_models: build, held_out_models: heldOut };
  // 3. the default (bundled table, calibrated gamed rows) on models used for nothing else
  const held = errors(heldOut, (a) => lc(a, ae.gamed));
  const cfg = { ...common, gamed: `bundled surrogate calibrated on the build models (alpha ${ae.calibration.alpha})`, difficulty: 'bundled reconstructed', per_model: held.per };
  emit({ bench: BENCH, figure: 'lc_mean_abs_error_vs_board_held_out', value: held.mean, unit: 'LC points', config: cfg, reference: { name: 'issue 17 target (mean)', value: 0.7, source: 'issues show 17' } });
  emit({ bench: BENCH, figure: 'lc_max_abs_error_vs_board_held_out', value: held.max, unit: 'LC points', config: { n: heldOut.length }, reference: { name: 'issue 17 target (max)', value: 1.5, source: 'issues show 17' } });

  // 4. the same without the calibration (the surrogate as documented)
  const raw = errors(heldOut, (a) => lc(a, ae.surrogate));
  emit({ bench: BENCH, figure: 'lc_mean_abs_error_vs_board_held_out_uncalibrated', value: raw.mean, unit: 'LC points', config: { gamed: 'bundled surrogate, uncalibrated', per_model: raw.per }, reference: { name: 'issue 17 target (mean)', value: 0.7, source: 'issues show 17' } });
  emit({ bench: BENCH, figure: 'lc_max_abs_error_vs_board_held_out_uncalibrated', value: raw.max, unit: 'LC points', config: { n: heldOut.length }, reference: { name: 'issue 17 target (max)', value: 1.5, source: 'issues show 17' } });

  // 5. in-sample for the calibration: the build models
  const inSample = errors(build, (a) => lc(a, ae.gamed));
  emit({ bench: BENCH, figure: 'lc_mean_abs_error_vs_board_build', value: inSample.mean, unit: 'LC points', config: { note: 'models the calibration was chosen on (in-sample)', n: build.length }, reference: { name: 'issue 17 target (mean)', value: 0.7, source: 'issues show 17' } });

  // 6. a difficulty table of our own, estimated from the build models only (farm leaderboard path)
  if (!quick) {
    const t0 = performance.now();
    const est = estimateDifficulty(build.map((m) => load(files.get(m)!, m)));
    const seconds = (performance.now() - t0) / 1000;
    const gamed = gamedWithDifficulty(ae.gamed, est.table);
    const own = errors(heldOut, (a) => lc(a, gamed, est.table, 'position'));
    emit({
      bench: BENCH, figure: 'lc_mean_abs_error_vs_board_held_out_estimated_difficulty', value: own.mean, unit: 'LC points',
      config: { difficulty: `estimated by estimateDifficulty from the ${build.length} build models (ridge ${est.lambda})`, gamed: 'bundled calibrated, difficulty replaced', estimate_seconds: Math.round(seconds * 10) / 10, max: r3(own.max), per_model: own.per },
      reference: { name: 'the same models with the bundled (reconstructed) table', value: held.mean, source: 'figure lc_mean_abs_error_vs_board_held_out' },
    });
  }
}

// 7. speed of one LC (5-fold CV over 10 values of C, then the refit), 805 + 1,610 rows
const a7 = load(files.get('alpaca-7b') ?? `${SHARED}annotations/alpaca-7b__weighted_alpaca_eval_gpt4_turbo.json`, 'alpaca-7b');
lc(a7, ae.gamed);
const times: number[] = [];
for (let i = 0; i < (quick ? 3 : 7); i++) {
  const t0 = performance.now();
  lc(a7, ae.gamed);
  times.push(performance.now() - t0);
}
emit({ bench: BENCH, figure: 'lc_fit_ms', value: median(times), unit: 'ms', config: { rows: 805, gamed_rows: 1610, fits: 51, reps: times.length, machine: 'shared 2-core box, noisy' }, reference: null });
