// `farm profile <workload>`: runs a benchmark's workload (ts/engine/workloads.ts, the same as bench/) under the
// kernel profiler and prints the table: per kernel, call site and shape, calls, time, share, achieved GFLOP/s
// and GB/s against this machine's measured peaks. --trace writes a Chrome trace-event file as well.
import { Command, Option } from 'commander';
import { Engine } from '../../engine/index.ts';
import { formatProfileTable, machinePeaks, setProfiling } from '../../engine/profile.ts';
import { WORKLOADS } from '../../engine/workloads.ts';

const int = (flag: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
};

export function register(program: Command): void {
  const names = Object.keys(WORKLOADS);
  program.command('profile')
    .description('run a benchmark workload under the kernel profiler and print where the time goes')
    .addHelpText('after', `\nWorkloads:\n${names.map((n) => `  ${n.padEnd(12)} ${WORKLOADS[n].description}`).join('\n')}\n`)
    .argument('<workload>', `one of: ${names.join(', ')}`)
    .option('--reps <n>', 'profiled repetitions (after the warm-up)', int('--reps', 1), 3)
    .option('--warmup <n>', 'repetitions before profiling starts', int('--warmup', 0), 1)
    .option('--threads <n>', 'native threads', int('--threads', 1), 2)
    .option('--rows <n>', 'table rows shown (the rest are summed in one line)', int('--rows', 1), 40)
    .option('--trace <file>', 'also write a Chrome trace-event file (open in https://ui.perfetto.dev or chrome://tracing)')
    .option('--quick', 'a smaller variant where the workload has one (ppo-step)', false)
    .addOption(new Option('--sort <key>', 'row order').choices(['time', 'calls', 'name']).default('time'))
    .option('--json', 'print the table as JSON', false)
    .action(async (name: string, o: { reps: number; warmup: number; threads: number; rows: number; trace?: string; quick: boolean; sort: string; json: boolean }) => {
      const w = WORKLOADS[name];
      if (!w) throw new Error(`unknown workload "${name}"; known: ${names.join(', ')}`);
      const engine = await Engine.create({ threads: o.threads, seed: 1 });
      await machinePeaks(o.threads);  // measured first, outside the profiled window
      const run = await w.setup(engine, { quick: o.quick });
      for (let i = 0; i < o.warmup; i++) await run.run();
      setProfiling(o.trace ? 'trace' : 'aggregate');
      engine.resetProfile();
      const t0 = performance.now();
      for (let i = 0; i < o.reps; i++) await run.run();
      const wallMs = performance.now() - t0;
      const table = await engine.profile();
      if (o.sort === 'calls') table.rows.sort((a, b) => b.calls - a.calls);
      if (o.sort === 'name') table.rows.sort((a, b) => `${a.kernel} ${a.op}`.localeCompare(`${b.kernel} ${b.op}`));
      if (o.trace) engine.writeTrace(o.trace);
      setProfiling('off');
      const perRep = wallMs / o.reps;
      const summary = { workload: name, description: w.description, reps: o.reps, threads: o.threads, msPerRep: perRep,
        throughput: run.tokens / (perRep / 1e3), unit: `${run.unit}/s`, kernelShareOfWall: table.kernelMs / wallMs, config: run.config };
      if (o.json) {
        console.log(JSON.stringify({ ...summary, ...table }, null, 2));
      } else {
        console.log(`${name}: ${w.description}`);
        console.log(`${o.reps} repetitions, ${perRep.toFixed(1)} ms each (${Math.round(summary.throughput).toLocaleString('en-US')} ${summary.unit}), ` +
          `${o.threads} threads; kernels account for ${(100 * summary.kernelShareOfWall).toFixed(1)}% of the wall time\n`);
        console.log(formatProfileTable(table, { limit: o.rows }));
      }
      if (o.trace) console.error(`farm: trace written to ${o.trace} (open it in https://ui.perfetto.dev or chrome://tracing)`);
    });
}
