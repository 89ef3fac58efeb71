// `farm validate --preset quick|standard|smoke`: AlpacaFarm's validation on the farm (ts/experiments/validate.ts):
// every method trained with simulated and with human feedback, evaluated by the pool and the panel, the two
// rankings correlated, annotator and reward-model agreement, over-optimization curves; results.json.
import { Command, InvalidArgumentError, Option } from 'commander';
import { Engine } from '../../engine/index.ts';
import { METHODS, type MethodName } from '../../experiments/pipeline.ts';
import { presetByName } from '../../experiments/presets.ts';
import { runValidate, VALIDATE_METHODS } from '../../experiments/validate.ts';
import { reportAtEnd } from './report.ts';
import { fmtTime, terminalProgress } from '../progress.ts';
import { stageLine } from './run.ts';

const PRESETS = ['quick', 'standard', 'smoke'];
const int = (flag: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${flag} must be an integer >= ${min}`);
  return n;
};
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
const f3 = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

export function register(program: Command): void {
  program.command('validate')
    .description('AlpacaFarm\'s validation: train every method with simulated (noisy pool) and with human (panel) feedback, evaluate each by the pool and the panel, correlate the rankings; agreement figures and over-optimization curves (results.json)')
    .addOption(new Option('--preset <name>', 'quick (about 15 minutes), standard (about an hour), smoke (seconds, for tests)').choices(PRESETS).default('quick'))
    .option('--seed <n>', 'world seed; every other seed follows it (default: the preset\'s)', int('--seed', 0))
    .option('--output-dir <dir>', 'the run folder (default runs/validate-<preset>)')
    .option('--methods <list>', `comma-separated subset of ${METHODS.join(', ')} (SFT always runs; default: the paper's ${VALIDATE_METHODS.length - 1} methods and SFT)`, list)
    .option('--only <stages>', 'run only these stages and what they need (names or prefixes)', list)
    .option('--force', 'delete the run folder first')
    .option('--threads <n>', 'native threads', int('--threads', 1), 2)
    .option('--json', 'print results.json on stdout')
    .option('--no-progress', 'no progress bars (log lines only)')
    .option('--no-report', 'do not write the HTML report (report.html) at the end')
    .option('--logging-steps <n>', 'a progress line every n steps when output is not a terminal', int('--logging-steps', 1), 25)
    .action(async (f) => {
      const preset = presetByName(f.preset, PRESETS);
      const methods = (f.methods as string[] | undefined)?.map((m) => {
        if (!(METHODS as readonly string[]).includes(m)) throw new InvalidArgumentError(`--methods: unknown method "${m}"; known: ${METHODS.join(', ')}`);
        return m as MethodName;
      });
      const outputDir: string = f.outputDir ?? `runs/validate-${preset.name}`;
      const engine = await Engine.create({ threads: f.threads, seed: f.seed ?? preset.seed });
      const r = await runValidate({ preset, seed: f.seed, outputDir, engine, progress: terminalProgress({ bar: f.progress, every: f.loggingSteps }),
        methods, only: f.only, force: f.force, onStage: stageLine });
      if (f.json) { console.log(JSON.stringify(r)); if (f.report) await reportAtEnd(outputDir, true); return; }
      console.log(`\nfarm validate (${r.preset} preset, world seed ${r.seed}): win-rates vs the reference outputs\n`);
      if (r.table) console.log(r.table);
      const F = r.figures;
      console.log(`\nranking, simulated vs human: Spearman ${f3(F.spearman_sim_vs_human, 2)}, Pearson ${f3(F.pearson_sim_vs_human, 2)} over ${r.ranking.methods.length} methods (paper: Spearman 0.98)`);
      console.log(`annotators vs the panel majority: pool ${f3(F.pool_panel_agreement)}, a panel rater ${f3(F.panel_rater_agreement)} (paper: 0.65 vs 0.66)`);
      for (const [fb, a] of Object.entries(r.rewardModels)) console.log(`reward model (${fb} feedback) on held-out pairs: agrees with gold ${f3(a.gold_agreement)}, with the panel ${f3(a.panel_agreement)}`);
      for (const [fb, c] of Object.entries(r.overoptimization)) {
        console.log(`over-optimization (${fb} feedback): PPO panel win-rate by step ${c.ppo.map((p) => `${p.step}:${p.panel.win_rate.toFixed(1)}`).join(' ')}; peak at step ${c.peak_step_panel} (gold peak ${c.peak_step_gold})`);
        console.log(`  best-of-n panel win-rate by n ${c.bestOfN.map((p) => `${p.n}:${p.panel.win_rate.toFixed(1)}`).join(' ')}`);
      }
      console.log(`\n${r.ran} of ${r.stages.length} stages ran in ${fmtTime(r.seconds)}; results in ${outputDir}/results.json`);
      if (f.report) await reportAtEnd(outputDir, false);
    });
}
