// `farm run --preset quick|standard|paper`: the paper's pipeline with simulated feedback, cached by stage
// (ts/experiments/run.ts); `farm quickstart` is the same as `farm run --preset quick` (what `npm start` runs).
import { Command, InvalidArgumentError, Option } from 'commander';
import { Engine } from '../../engine/index.ts';
import { buildStages, METHODS, type MethodName } from '../../experiments/pipeline.ts';
import { presetByName } from '../../experiments/presets.ts';
import { listStages, runFarm } from '../../experiments/run.ts';
import { reportAtEnd } from './report.ts';
import { fmtTime as fmt, terminalProgress } from '../progress.ts';

const RUN_PRESETS = ['quick', 'standard', 'paper', 'smoke'];
const int = (flag: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${flag} must be an integer >= ${min}`);
  return n;
};
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/** The stage line: position, name, cached or not, and the pipeline's ETA. */
export function stageLine(s: { index: number; total: number; name: string; cached: boolean; etaSeconds: number }): void {
  process.stderr.write(`farm: [${s.index}/${s.total}] ${s.name}${s.cached ? ' (done, cached)' : `, pipeline ETA ${fmt(s.etaSeconds)}`}\n`);
}

function addRun(program: Command, name: string, description: string, fixedPreset?: string): void {
  const cmd = program.command(name).description(description);
  if (fixedPreset) cmd.addOption(new Option('--out <dir>', 'the old quickstart spelling of --output-dir').hideHelp());
  if (!fixedPreset) cmd.addOption(new Option('--preset <name>', 'size of everything (ts/experiments/presets.ts): quick (minutes), standard, paper (AlpacaFarm\'s split sizes); smoke is for tests').choices(RUN_PRESETS).default('quick'));
  cmd.option('--seed <n>', 'world seed; every other seed follows it (default: the preset\'s)', int('--seed', 0))
    .option('--output-dir <dir>', 'the run folder (default runs/<preset>)')
    .option('--methods <list>', `comma-separated subset of ${METHODS.join(', ')} (SFT always runs)`, list)
    .option('--only <stages>', 'run only these stages and what they need (names or prefixes, e.g. "reward-model" or "ppo"); see --list-stages', list)
    .option('--list-stages', 'print the stages, their cache keys and whether they are done, and exit')
    .option('--force', 'delete the run folder first (otherwise finished stages are reused)')
    .option('--threads <n>', 'native threads', int('--threads', 1), 2)
    .option('--json', 'print the results as JSON on stdout')
    .option('--no-progress', 'no progress bars (log lines only)')
    .option('--no-report', 'do not write the HTML report (report.html) at the end')
    .option('--logging-steps <n>', 'a progress line every n steps when output is not a terminal', int('--logging-steps', 1), 25)
    .action(async (f) => {
      const preset = presetByName(fixedPreset ?? f.preset, RUN_PRESETS);
      const methods = (f.methods as string[] | undefined)?.map((m) => {
        if (!(METHODS as readonly string[]).includes(m)) throw new InvalidArgumentError(`--methods: unknown method "${m}"; known: ${METHODS.join(', ')}`);
        return m as MethodName;
      });
      const outputDir: string = f.outputDir ?? f.out ?? `runs/${preset.name}`;
      const engine = await Engine.create({ threads: f.threads, seed: f.seed ?? preset.seed });
      const progress = terminalProgress({ bar: f.progress, every: f.loggingSteps });
      if (f.listStages) {
        const stages = buildStages({ preset, seed: f.seed ?? preset.seed, feedback: ['pool:train'], evaluators: ['pool', 'panel'], methods: methods ? ['sft', ...methods.filter((m) => m !== 'sft')] : METHODS, engine, progress });
        const rows = listStages(stages, outputDir, f.only);
        if (f.json) console.log(JSON.stringify(rows));
        else for (const r of rows) console.log(`${r.done ? 'done ' : 'to do'}  ${r.name.padEnd(40)} ${r.key}`);
        return;
      }
      if (name === 'quickstart') process.stderr.write(`farm: quickstart is \`farm run --preset quick\`; results go to ${outputDir}\n`);
      const r = await runFarm({ preset, seed: f.seed, outputDir, engine, progress, methods, only: f.only, force: f.force, onStage: stageLine });
      if (f.json) { console.log(JSON.stringify(r)); if (f.report) await reportAtEnd(outputDir, true); return; }
      console.log(`\nfarm run (${r.preset} preset, world seed ${r.seed}): win-rates vs the reference outputs, trained with simulated feedback (noisy pool)\n`);
      console.log(r.table);
      if (r.rewardModel) console.log(`\nreward model: held-out accuracy ${(Number(r.rewardModel.eval_accuracy) * 100).toFixed(1)}% on the pool's labels; pool labels agree with gold on ${(Number(r.annotation?.label_gold_agreement) * 100).toFixed(1)}% of pairs`);
      console.log(`\n${r.ran} of ${r.stages.length} stages ran (${r.stages.length - r.ran} cached) in ${fmt(r.seconds)}; results in ${outputDir}/results.json, leaderboard.md, pipeline.json`);
      if (f.report) await reportAtEnd(outputDir, false);
    });
}

export function register(program: Command): void {
  addRun(program, 'run', 'the whole AlpacaFarm pipeline on the farm world with simulated feedback: data, tokenizer, SFT, pairs, pool annotation, reward model, every method, evaluation by the evaluation pool, the human panel and gold; cached by stage');
  addRun(program, 'quickstart', 'same as `farm run --preset quick` (what `npm start` runs)', 'quick');
}
