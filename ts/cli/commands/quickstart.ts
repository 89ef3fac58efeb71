// `farm quickstart` (npm start): the quick pipeline on the embedded farm world, with progress.
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { runQuickPipeline } from '../../methods/pipeline.ts';

export function register(program: Command): void {
  program.command('quickstart')
    .description('Run the quick pipeline on the embedded farm world: data, tokenizer, SFT, a reward model on pool-labelled pairs, best-of-n, and evaluation by the simulated pool, the human panel and the gold standard')
    .option('--out <dir>', 'output directory', 'runs/quickstart')
    .option('--seed <n>', 'seed of the world, data, model and sampling', '1')
    .option('--threads <n>', 'native threads', '2')
    .option('--epochs <n>', 'SFT epochs', '6')
    .option('--eval-instances <n>', 'evaluation instructions', '200')
    .option('--pairs <n>', 'preference instructions labelled by the noisy simulated pool for the reward model (0: skip RM and best-of-n)', '1000')
    .option('--best-of <n>', 'n of best-of-n decoding with the reward model', '8')
    .option('--json', 'print the results as JSON on stdout')
    .action(async (opts) => {
      const json = Boolean(opts.json);
      const log = (line: string) => (json ? console.error : console.log)(`farm: ${line}`);
      const bar = new cliProgress.SingleBar({
        format: 'farm: sft [{bar}] {value}/{total} steps | loss {loss} | {tps} tokens/s', hideCursor: true,
        stream: process.stderr, noTTYOutput: false, notTTYSchedule: 5000,
      }, cliProgress.Presets.shades_classic);
      let started = false;
      const r = await runQuickPipeline({
        outDir: opts.out, seed: Number(opts.seed), threads: Number(opts.threads), sftEpochs: Number(opts.epochs),
        evalInstances: Number(opts.evalInstances), preferencePairs: Number(opts.pairs), bestOfN: Number(opts.bestOf), log: (l) => { if (started) { bar.stop(); started = false; } log(l); },
        onSftStep: (s) => {
          if (!started) { bar.start(s.totalSteps, 0, { loss: s.loss.toFixed(3), tps: 0 }); started = true; }
          bar.update(s.step, { loss: s.loss.toFixed(3), tps: Math.round(s.tokensPerSecond) });
        },
      });
      if (json) console.log(JSON.stringify(r));
      else {
        console.log('farm: sample outputs:');
        for (const s of r.samples) console.log(`  > ${s.instruction}${s.input ? ` [${s.input}]` : ''}\n    ${s.output.replace(/\n/g, '\n    ')}`);
        console.log(`farm: done in ${r.seconds.toFixed(0)} s; outputs in ${opts.out}`);
      }
    });
}
