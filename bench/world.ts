// Farm world figures: human-panel calibration (vs the published human figures), gold-grader and panel
// throughput, split generation time, and responder quality. One JSON line per figure.
// Usage: npm run bench -- world [--quick]
import { createWorld } from '../ts/world/index.ts';
import { REFERENCE } from '../ts/world/policy.ts';
import { measureCalibration, sampleMixedPairs } from '../ts/world/calibration.ts';
import { generateSplits } from '../ts/data/splits.ts';
import { Rng } from '../ts/world/rng.ts';

const quick = process.argv.includes('--quick');
const BENCH = 'world';
const HUMANS = 'alpaca_eval evaluators_leaderboard.csv, row "humans" (AlpacaFarm human annotations)';

function emit(figure: string, value: number, unit: string, config: Record<string, unknown>, reference?: { name: string; value: number; source: string }) {
  console.log(JSON.stringify({ bench: BENCH, figure, value: +value.toFixed(6), unit, config, ...(reference ? { reference } : {}) }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function timeIt(reps: number, fn: () => void): number {
  fn(); // warm-up
  const t: number[] = [];
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); fn(); t.push(performance.now() - t0); }
  return median(t);
}

// --- calibration: median over world seeds of each figure
const seeds = quick ? [1] : [1, 2, 3];
const nPairs = quick ? 1500 : 3000;
const reports = seeds.map((seed) => { const w = createWorld({ seed }); return measureCalibration(w, sampleMixedPairs(w, nPairs)); });
const cfg = { pairs: nPairs, world_seeds: seeds, panel: reports[0].panel, loo_raters: reports[0].looRaters };
emit('panel_loo_agreement', median(reports.map((r) => r.looAgreement)), 'fraction', cfg, { name: 'humans', value: 0.6566, source: HUMANS });
emit('panel_p_prefer_longer_majority', median(reports.map((r) => r.pLongerMajority)), 'fraction', cfg, { name: 'humans', value: 0.6360, source: HUMANS });
emit('panel_p_prefer_longer_rater', median(reports.map((r) => r.pLongerRater)), 'fraction', cfg, { name: 'humans', value: 0.6360, source: HUMANS });
emit('panel_p_prefer_first_rater', median(reports.map((r) => r.pFirstRater)), 'fraction', cfg, { name: 'humans', value: 0.5177, source: HUMANS });
emit('panel_majority_gold_agreement', median(reports.map((r) => r.majorityGoldAgreement)), 'fraction', cfg);
emit('panel_rater_gold_agreement', median(reports.map((r) => r.raterGoldAgreement)), 'fraction', cfg);
emit('gold_p_prefer_longer', median(reports.map((r) => r.pLongerGold)), 'fraction', cfg);

// --- throughput
const world = createWorld({ seed: 1 });
const pairs = sampleMixedPairs(world, quick ? 2000 : 5000, { seed: 9 });
const gradeMs = timeIt(quick ? 3 : 5, () => { for (const p of pairs) world.tryGrade(p.instruction, p.input, p.output_1); });
emit('gold_grades_per_s', (pairs.length / gradeMs) * 1000, 'grades/s', { outputs: pairs.length, note: 'parse + grade from text, parse cache warm' });
const fresh = () => createWorld({ seed: 1 });
const coldMs = timeIt(quick ? 3 : 5, () => { const w = fresh(); for (const p of pairs) w.tryGrade(p.instruction, p.input, p.output_1); });
emit('gold_grades_per_s_cold', (pairs.length / coldMs) * 1000, 'grades/s', { outputs: pairs.length, note: 'new world: every instruction parsed once' });
const panelMs = timeIt(quick ? 3 : 5, () => { const p = world.createPanel(); for (const x of pairs) p.majority(x); });
emit('panel_majority_pairs_per_s', (pairs.length / panelMs) * 1000, 'pairs/s', { pairs: pairs.length, size: world.panel.options.size });

// --- split generation
const quickMs = timeIt(quick ? 2 : 3, () => generateSplits(createWorld({ seed: 1 }), 'quick'));
emit('splits_quick_ms', quickMs, 'ms', { preset: 'quick' });
if (!quick) emit('splits_paper_ms', timeIt(1, () => generateSplits(createWorld({ seed: 1 }), 'paper')), 'ms', { preset: 'paper' });

// --- responder quality on fresh tasks
const rng = new Rng(77);
const tasks = Array.from({ length: quick ? 1000 : 4000 }, () => world.sampleTask(rng));
const meanGold = (r: ReturnType<typeof world.demonstrator>) => tasks.reduce((a, t) => a + world.gradeTask(t, r.respondTask(t)).total, 0) / tasks.length;
emit('demonstrator_mean_gold', meanGold(world.demonstrator(0)), 'gold total', { tasks: tasks.length, quality: 0.72 });
emit('reference_mean_gold', meanGold(world.referencePolicy(0)), 'gold total', { tasks: tasks.length, quality: REFERENCE.quality });
const ref = world.referencePolicy(0), demo = world.demonstrator(0), panel = world.panel;
let wins = 0;
for (let i = 0; i < tasks.length; i++) {
  const t = tasks[i];
  const pair = { instruction: t.instruction, input: t.input, output_1: ref.respondTask(t), output_2: demo.respondTask(t) };
  const m = panel.majority(pair);
  wins += m === 2 ? 1 : m === 0 ? 0.5 : 0;
}
emit('demonstrator_winrate_vs_reference_panel', (100 * wins) / tasks.length, '%', { tasks: tasks.length, judge: 'panel majority' });
