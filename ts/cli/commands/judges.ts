// `farm judges`: the simulated judges of the farm pool, and judge analysis in the manner of alpaca_eval's
// evaluator table (agreement with the reference majority, bias, variance, length/list/position preferences,
// price and time per 1000 pairs).
import { Command, InvalidArgumentError, Option } from 'commander';
import { writeFileSync } from 'node:fs';
import {
  AnnotationCache, analyzeJudge, BASELINES, createAnnotator, createFarmJudge, FARM_JUDGES, farmPairs, groupReferences,
  metricsToLeaderboardRow, panelReferences, readPairsFile, unknownInstructions, type Annotation, type JudgeMetrics, type Pair, type ReferencePair,
} from '../../feedback/index.ts';
import { createWorld } from '../../world/index.ts';
import { terminalProgress } from '../progress.ts';
import { addJudgeOptions, annotatorOptions, checkWorldCoverage, intArg as int, numArg as num, resolveWorldSeed, type JudgeFlags } from '../judge-options.ts';
import { checkOutputFile } from './annotate.ts';

interface AnalyzeFlags extends JudgeFlags {
  annotator?: string[];
  annotations?: string[];
  references: string;
  pairs?: string;
  n: number;
  runs: number;
  seed: number;
  members?: boolean;
  lengthDelta: number;
  json?: boolean;
  csv?: string;
  progress: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** Splits flat annotation records into runs: the k-th record of a pair goes to run k. */
export function runsFromRecords(records: Annotation[]): Annotation[][] {
  const seen = new Map<string, number>();
  const runs: Annotation[][] = [];
  for (const r of records) {
    const k = JSON.stringify([r.instruction, r.input ?? '', r.output_1, r.output_2]);
    const i = seen.get(k) ?? 0;
    seen.set(k, i + 1);
    (runs[i] ??= []).push(r);
  }
  return runs;
}

function fmt(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

function table(rows: JudgeMetrics[]): string {
  const head = ['annotator', 'agree%', 'agree-loo%', 'bias', 'variance', 'P(longer)', 'P(lists)', 'P(first)', '$/1000', 's/1000', 'parsed'];
  const body = rows.map((m) => [m.annotator, fmt(m.human_agreement, 1), fmt(m.agreement_loo, 1), fmt(m.bias, 1), fmt(m.variance, 1), fmt(m.p_prefer_longer, 3), fmt(m.p_prefer_lists, 3), fmt(m.p_prefer_first, 3), fmt(m.price_per_1000, 2), fmt(m.seconds_per_1000, 1), String(m.n_parsed)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

function csv(rows: JudgeMetrics[]): string {
  const recs = rows.map(metricsToLeaderboardRow);
  const cols = Object.keys(recs[0]);
  const cell = (v: unknown) => (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v)) ? '' : typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v));
  return [cols.map(cell).join(','), ...recs.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

export function register(program: Command): void {
  const judges = program.command('judges').description('simulated judges of the farm pool and judge analysis');

  judges
    .command('list')
    .description('list the simulated judges of the farm pool and the baseline judges')
    .option('--json', 'print as JSON')
    .action((f: { json?: boolean }) => {
      if (f.json) {
        console.log(JSON.stringify({ farm: FARM_JUDGES, baselines: BASELINES }));
        return;
      }
      const w = Math.max(...FARM_JUDGES.map((j) => j.name.length));
      console.log('farm pool (spec "pool"; "pool:train" adds flip noise p = 0.25):');
      for (const j of FARM_JUDGES) console.log(`  ${j.name.padEnd(w)}  ${j.description}`);
      console.log(`baselines: ${BASELINES.join(', ')}`);
      console.log('also: panel (the human panel), openai:MODEL (HTTP judge), model:DIR (reward model)');
    });

  const analyze = judges
    .command('analyze')
    .description('agreement with the reference majority, bias, variance, P(prefer longer/lists/first), price and time per 1000 (alpaca_eval evaluator table)')
    .option('--annotator <specs>', 'annotator spec(s) to run, comma-separated or repeated (pool, a judge name, openai:MODEL, ...)', collect)
    .option('--annotations <files>', 'precomputed annotations (JSON/JSONL); several records of one pair count as repeated runs', collect)
    .option('--references <panel|file>', 'reference labels: "panel" (the farm human panel) or a file of records with preference (several records of a pair = several raters) or preferences[]', 'panel')
    .option('--pairs <file>', 'pairs to judge with --references panel (default: pairs sampled from an SFT-like farm policy)')
    .addOption(new Option('--n <n>', 'number of farm pairs to sample when --pairs is not given').default(2000).argParser(int('--n', 1)))
    .addOption(new Option('--runs <n>', 'repeated runs with seeds seed..seed+runs-1 (variance and bias need at least 2)').default(2).argParser(int('--runs', 1)))
    .addOption(new Option('--seed <n>', 'first seed of the runs (and of the sampled pairs)').default(0).argParser(int('--seed', 0)))
    .option('--members', 'also analyze each simulated judge of the farm pool on its own')
    .addOption(new Option('--length-delta <chars>', 'characters by which one output must be longer to count for P(prefer longer)').default(30).argParser(num('--length-delta', 0)))
    .option('--json', 'print the metrics as JSON')
    .option('--csv <file>', 'also write the rows in the column layout of alpaca_eval evaluators_leaderboard.csv')
    .option('--no-progress', 'no progress bar (log lines only)');
  addJudgeOptions(analyze)
    .action(async (f: AnalyzeFlags) => {
      const specs = f.annotator ?? [];
      const files = f.annotations ?? [];
      if (specs.length === 0 && files.length === 0 && !f.members) throw new InvalidArgumentError('give --annotator SPEC and/or --annotations FILE (or --members)');
      if (f.csv) checkOutputFile(f.csv, '--csv');
      if (f.references !== 'panel' && f.pairs) throw new InvalidArgumentError('--pairs goes with --references panel; a references file brings its own pairs');
      // inputs first (their world_seed decides the world), then the world
      const given = f.references === 'panel' ? (f.pairs ? readPairsFile(f.pairs) : null) : readPairsFile(f.references);
      const ws = resolveWorldSeed(f.worldSeed, given ? [{ what: f.references === 'panel' ? f.pairs! : f.references, records: given }] : []);
      const world = createWorld({ seed: ws.seed });
      let refs: ReferencePair[];
      let pairs: Pair[];
      if (f.references === 'panel') {
        pairs = given ?? farmPairs(world, { n: f.n, seed: f.seed });
        const unknown = unknownInstructions(world, pairs);
        if (unknown.count > 0) {
          throw new InvalidArgumentError(`--references panel: the human panel judges only farm-world instructions, and ${unknown.count} of ${pairs.length} pairs in ${f.pairs} are not tasks of farm world ${ws.seed}` +
            ` (first: pair ${unknown.first + 1}); pass the world seed that wrote them with --world-seed, or give --references FILE`);
        }
        refs = panelReferences(world, pairs);
      } else {
        refs = groupReferences(given as Parameters<typeof groupReferences>[0]);
        if (refs.every((r) => r.preferences.length === 0)) throw new Error(`${f.references}: no record carries "preference" or "preferences"`);
        pairs = refs.map(({ preferences: _p, ...p }) => p);
      }
      for (const spec of specs) {
        const c = checkWorldCoverage(spec, ws.seed, ws.from, pairs);
        if (c.warning) process.stderr.write(`farm: warning: ${spec}: ${c.warning}\n`);
      }
      const progress = terminalProgress({ bar: f.progress && !f.json, tty: process.stderr.isTTY && !f.json });
      const rows: JudgeMetrics[] = [];
      // The references' own row when they are several raters (alpaca_eval's "humans" row).
      if (refs.some((r) => r.preferences.length >= 2)) {
        const perRater: Annotation[][] = [];
        const name = f.references === 'panel' ? 'panel' : 'references';
        for (const r of refs) r.preferences.forEach((v, i) => (perRater[i] ??= []).push({ instruction: r.instruction, input: r.input, output_1: r.output_1, output_2: r.output_2, preference: v, annotator: name, ...(name === 'panel' ? { price_per_example: 0.3, time_per_example: 36.8 } : {}) }));
        rows.push(analyzeJudge(perRater, refs, { annotator: name, isReference: true, lengthDelta: f.lengthDelta }));
      }
      for (const spec of specs) {
        const runs: Annotation[][] = [];
        for (let r = 0; r < f.runs; r++) {
          const { worldSeed: _w, ...opts } = annotatorOptions(f, spec, { seed: f.seed + r, worldSeed: ws.seed });
          if (opts.http && f.runs > 1) opts.http.cacheSalt = `run${r}`;
          const a = await createAnnotator(spec, { ...opts, world });
          progress.start(`${spec} run ${r + 1}/${f.runs}`, pairs.length);
          try {
            runs.push(await a.annotate(pairs, { noCache: !f.cache, onProgress: (d) => progress.update(d) }));
          } finally {
            progress.stop();
            if (opts.cache instanceof AnnotationCache) opts.cache.close();
          }
        }
        rows.push(analyzeJudge(runs, refs, { annotator: spec, lengthDelta: f.lengthDelta }));
      }
      for (const file of files) {
        const runs = runsFromRecords(readPairsFile(file) as unknown as Annotation[]);
        rows.push(analyzeJudge(runs, refs, { annotator: runs[0]?.[0]?.annotator ?? file, lengthDelta: f.lengthDelta }));
      }
      if (f.members) {
        for (const j of FARM_JUDGES) {
          const runs: Annotation[][] = [];
          for (let r = 0; r < f.runs; r++) runs.push(await createFarmJudge(world, j.name, f.seed + r).annotate(pairs));
          rows.push(analyzeJudge(runs, refs, { annotator: j.name, lengthDelta: f.lengthDelta }));
        }
      }
      if (f.csv) writeFileSync(f.csv, csv(rows));
      if (f.json) {
        console.log(JSON.stringify({ pairs: pairs.length, references: f.references, runs: f.runs, rows }));
        return;
      }
      console.log(`${pairs.length} pairs, references: ${f.references} (${rows[0]?.n_references ?? 0} per pair), ${f.runs} run(s) per annotator`);
      console.log(table(rows));
      console.log('agree%: each run vs the majority of all references (alpaca_eval "Human agreement"); agree-loo%: vs the majority of each leave-one-out subset, the footing of a reference rater vs the others (the references\' own row).');
      if (f.csv) console.log(`wrote ${f.csv}`);
    });
}
